"""Fixtures for the quota engine: a fake clock, every store, a real loopback redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from quota_support import FakeClock

from coinguard._quota import MemoryStore, QuotaStore, RedisStore, SQLiteStore


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed epoch time."""
    return FakeClock()


@pytest.fixture(autouse=True)
def _no_real_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to the user's cache directory: persistence is opt-in per test."""
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("COINGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is required (COINGUARD_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("redis-server not installed")
    redis = pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not answer PING")
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    """A Redis store on an empty database, using the caller's (fake) clock."""
    store = RedisStore(redis_url, server_clock=False)
    store.client.flushdb()
    yield store
    store.close()


StoreFactory = Callable[[], QuotaStore]


class FakeTimeSQLiteStore(SQLiteStore):
    """The SQLite store for tests on a fake clock: a real wait for its write lock (a loaded
    machine) is not time passed on that clock, so its correction for lock waits is off."""

    def fresh(self, now: float) -> float:
        return now


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Each store kind; calling the factory twice gives two handles on the same state."""
    opened: list[Any] = []
    if request.param == "memory":
        shared = MemoryStore()

        def factory() -> QuotaStore:
            return shared

    elif request.param == "sqlite":

        def factory() -> QuotaStore:
            store = FakeTimeSQLiteStore(tmp_path / "quota.db")
            opened.append(store)
            return store

    else:
        url = request.getfixturevalue("redis_url")
        RedisStore(url).client.flushdb()

        def factory() -> QuotaStore:
            store = RedisStore(url, server_clock=False)
            opened.append(store)
            return store

    yield factory
    for store in opened:
        store.close()
