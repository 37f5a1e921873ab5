"""One Kraken key shared by 4 processes x 8 threads through Redis: nonces and the decaying
counter drawn from one server, 2,000 private calls against the emulation, every one answered,
none refused for the counter."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from typing import Any

import coinguard
from coinguard.providers import kraken
from coinguard.sandbox import Sandbox, SandboxConfig

FAST_MAX, FAST_DECAY = 200, 100.0  # the emulation and the client are set to the same tier


def _calls(origin: str, key: str, secret: str, store: str, threads: int, each: int) -> list[str]:
    counter = coinguard.DecayingCounter(FAST_MAX, FAST_DECAY, costs=kraken.COSTS)
    quota = coinguard.QuotaPolicy([coinguard.Window.per_second(FAST_MAX)])
    provider = dataclasses.replace(kraken.PROFILE, base_url=origin, counter=counter, quota=quota)
    results: list[str] = []
    with coinguard.Client(
        provider=provider, read_key=key, read_secret=secret, quota_store=store
    ) as client:

        def run() -> None:
            for _ in range(each):
                try:
                    client.post("/0/private/Balance")
                    results.append("ok")
                except coinguard.CoinguardError as exc:
                    results.append(str(exc)[:200])

        pool = [threading.Thread(target=run) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return results


def _worker(args: tuple[Any, ...], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(_calls(*args))


def test_four_processes_of_eight_threads_share_one_key_through_redis(redis_url: str) -> None:
    """Every call answered ok, the server never refused one for the counter, and it accepted
    as many calls as were made."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    config = SandboxConfig(profile="kraken", weight_limit=FAST_MAX, counter_decay=FAST_DECAY)
    with Sandbox(config) as sb:
        args = (sb.origin, sb.keys.read, sb.keys.read_secret, redis_url, 8, 2000 // 32 + 1)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(args, out)) for _ in range(4)]
        for p in procs:
            p.start()
        results = [r for _ in procs for r in out.get(timeout=300)]
        for p in procs:
            p.join(timeout=30)
        entries = sb.ledger.entries()
    assert len(results) >= 2000
    assert set(results) == {"ok"}
    assert [e for e in entries if e.outcome == "rate-limited"] == []
    assert len([e for e in entries if e.outcome == "ok"]) == len(results)
    refused = [e for e in entries if e.outcome == "bad-nonce"]
    print(f"redis: {len(results)} calls, {len(refused)} overtaken and re-signed")
