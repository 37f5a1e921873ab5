"""A Binance 418 ban learnt by one process holds every process sharing the quota store
(SQLite across processes, Redis across clients): zero requests reach the server during it."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import coinguard
from coinguard.providers import binance
from coinguard.sandbox import Sandbox, SandboxConfig


@pytest.fixture
def banned() -> Iterator[Sandbox]:
    """The Binance emulation with its IP already banned by raw requests (418 from now on)."""
    with Sandbox(SandboxConfig(profile="binance", weight_limit=30)) as sb:
        with httpx.Client() as raw:
            statuses = [raw.get(sb.origin + "/api/v3/exchangeInfo").status_code for _ in range(5)]
        assert statuses[-1] == 418
        yield sb


def _ping(origin: str, key: str, secret: str, store: str) -> str:
    """One client, as another process would build it: what its ping ended in."""
    provider = dataclasses.replace(binance.PROFILE, base_url=origin)
    with coinguard.Client(
        provider=provider, read_key=key, read_secret=secret, quota_store=store, on_quota="raise"
    ) as client:
        try:
            client.get("/api/v3/ping")
        except coinguard.QuotaExceededError:
            return "held"
        except coinguard.RateLimitError as exc:
            return f"418 {exc.status_code}" if exc.status_code == 418 else "429"
    return "sent"


def _worker(args: tuple[str, str, str, str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(_ping(*args))


def _requests(sb: Sandbox) -> int:
    return len(sb.ledger.entries())


def test_418_holds_four_processes_sharing_sqlite(banned: Sandbox, tmp_path: Path) -> None:
    """The first process learns of the ban; four more processes on the same SQLite file send
    nothing until it ends."""
    store = f"sqlite:///{tmp_path / 'quota.db'}"
    args = (banned.origin, banned.keys.read, banned.keys.read_secret or "", store)
    assert _ping(*args) == "418 418"  # this one reached the server and was told
    before = _requests(banned)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == ["held"] * 4
    assert _requests(banned) == before  # zero requests during the ban


def test_418_holds_clients_sharing_redis(banned: Sandbox, redis_url: str) -> None:
    """The same over Redis: one client is told of the ban, the others sharing the store wait."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    args = (banned.origin, banned.keys.read, banned.keys.read_secret or "", redis_url)
    assert _ping(*args) == "418 418"
    before = _requests(banned)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs] + [_ping(*args)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == ["held"] * 4
    assert _requests(banned) == before
