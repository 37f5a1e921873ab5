"""Stores shared by processes and machines: SQLite across processes, Redis across clients."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from quota_support import START, FakeClock, max_in_rolling

from coinguard._quota import Quota, QuotaPolicy, RedisStore, SQLiteStore, Window

POLICY = QuotaPolicy([Window(10, 0.5), Window(30, 2.0)], margin=0.0)


def _worker(path: str, calls: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SQLiteStore(path)
    quota = Quota(POLICY, store=store, key_id="k", max_wait=1e9, persist=None)
    out.put([quota.reserve("GET", "/x").at for _ in range(calls)])
    store.close()


def test_sqlite_processes_share_exactly(tmp_path: Path) -> None:
    """Four processes reserving on one SQLite file never over-admit together."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).close()
    procs = [ctx.Process(target=_worker, args=(path, 40, out)) for _ in range(4)]
    for p in procs:
        p.start()
    admitted = [(t, 1) for _ in procs for t in out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(admitted) == 160
    assert max_in_rolling(admitted, 0.5) <= 10
    assert max_in_rolling(admitted, 2.0) <= 30


def test_redis_two_clients_share_a_key(redis_url: str) -> None:
    """Two Redis connections (two machines) on one key share the budget, on Redis time."""
    a, b = RedisStore(redis_url), RedisStore(redis_url)
    a.client.flushdb()
    qa = Quota(POLICY, store=a, key_id="shared", persist=None, max_wait=1e9)
    qb = Quota(POLICY, store=b, key_id="shared", persist=None, max_wait=1e9)
    admitted = [(q.reserve("GET", "/x").at, 1) for _ in range(40) for q in (qa, qb)]
    assert max_in_rolling(admitted, 0.5) <= 10
    assert max_in_rolling(admitted, 2.0) <= 30
    assert qa.blocking
    assert qb.status().windows[1].used == 80
    a.close()
    b.close()


def test_redis_script_reloads_after_flush(redis_store: RedisStore, clock: FakeClock) -> None:
    """After SCRIPT FLUSH the script is loaded again transparently."""
    quota = Quota(POLICY, store=redis_store, key_id="k", clock=clock, persist=None)
    quota.reserve("GET", "/x")
    redis_store.client.script_flush()
    assert quota.reserve("GET", "/x").wait == 0
    assert quota.status().windows[0].used == 2


def test_redis_keys_expire(redis_store: RedisStore, clock: FakeClock) -> None:
    """Every key carries a TTL no longer than what still counts in it (plus a second)."""
    policy = QuotaPolicy([Window.per_second(5), Window.per_minute(100, calendar=True)])
    quota = Quota(policy, store=redis_store, key_id="k", clock=clock, persist=None)
    quota.reserve("GET", "/x")
    quota.observe(429, {"Retry-After": "30"})
    client = redis_store.client
    keys = client.keys("*")
    assert len(keys) == 5  # meta; the rolling window's log, sum, running sums; the slots
    ttls = {k.decode().rsplit(":", 1)[-1]: client.pttl(k) for k in keys}
    assert all(ttl > 0 for ttl in ttls.values())
    assert 30_000 <= ttls["meta"] <= 61_000
    assert ttls["sum"] <= 1050 + 1000
    assert ttls["cum"] <= 1050 + 1000
    assert max(ttls.values()) <= 61_000


def test_redis_keys_really_vanish(redis_url: str) -> None:
    """With Redis time, a short window's keys are gone shortly after it empties."""
    store = RedisStore(redis_url)
    store.client.flushdb()
    quota = Quota(QuotaPolicy([Window(1, 0.01)], margin=0.0), store=store, key_id="k", persist=None)
    quota.reserve("GET", "/x")
    deadline = time.monotonic() + 5
    while store.client.keys("*") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.client.keys("*") == []
    store.close()


@pytest.mark.parametrize("start", [START, 951_868_800.0 - 0.5, 4_102_444_800.0 - 1e-3])
def test_redis_months_match_python(redis_store: RedisStore, start: float) -> None:
    """The Lua calendar gives the same month boundaries as Python (leap days, centuries)."""
    clock = FakeClock(start)
    quota = Quota(
        QuotaPolicy([Window.per_month(3)]),
        store=redis_store,
        key_id=str(start),
        clock=clock,
        persist=None,
    )
    reference = Quota(
        QuotaPolicy([Window.per_month(3)]),
        key_id=str(start),
        clock=clock,
        persist=None,
        store="memory",
    )
    assert quota.status().windows[0].resets_at == reference.status().windows[0].resets_at


def test_many_openers_of_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL does not wait on the busy timeout; openers racing on a new
    file (workers starting together) must still all get a store."""
    errors: list[BaseException] = []
    for round_ in range(40):
        path = tmp_path / f"race{round_}.db"
        barrier = threading.Barrier(16)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                SQLiteStore(path).close()
            except BaseException as exc:  # collected: a thread's exception would be lost
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_redis_keys_from_before_running_sums_still_count(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    """A rolling window written without its running sums (an earlier version) is numbered on
    first use: its calls still count, and the window frees in the right order."""
    policy = QuotaPolicy([Window(5, 60.0)], margin=0.0)
    quota = Quota(policy, store=redis_store, key_id="old", clock=clock, persist=None)
    log, total = quota._bucket._keys[1], quota._bucket._keys[2]  # type: ignore[attr-defined]
    client = redis_store.client
    client.zadd(log, {"1:2": START - 30.0, "2:1": START - 20.0, "3:1": START - 10.0})
    client.set(total, 4)
    assert quota.status().windows[0].used == 4
    assert quota.reserve("GET", "/x").wait == 0.0
    assert quota.reserve("GET", "/x").wait == pytest.approx(30.0)  # when the cost-2 call leaves
    assert client.exists(quota._bucket._keys[3])  # type: ignore[attr-defined]
