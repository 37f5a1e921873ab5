"""Per-request overhead of the whole coinguard client vs raw httpx, over one httpx.MockTransport.

Both sides send the same GET with the key in a header and decode the same JSON body; the
transport answers from memory, so the difference is coinguard's own work per call (scope,
origin, key slot, auth flow, retry wrapper, quota reservation, error mapping).

    python benchmarks/client_overhead.py [--calls 20000] [--rounds 5]

Prints the best per-call time of each variant and its ratio to raw httpx, measured in the same
process, interleaved round by round so machine noise hits every variant alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

import httpx

import coinguard

BASE = "https://api.example.com/v2"
BODY = b'{"success": true, "message": "ok", "length": 1, "data": [{"symbol": "BTC", "price": 1.0}]}'


def _transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def raw_httpx() -> Callable[[], object]:
    client = httpx.Client(transport=_transport(), headers={"x-api-key": "bench-read-key-1"})

    def call() -> object:
        r = client.get(f"{BASE}/price", params={"symbol": "BTC"})
        r.raise_for_status()
        return r.json()

    return call


def coinguard_client(quota: bool) -> Callable[[], object]:
    policy = (
        coinguard.QuotaPolicy(
            [coinguard.Window.per_second(10**9), coinguard.Window.per_minute(10**9)]
        )
        if quota
        else None
    )
    provider = coinguard.Provider(name="bench", base_url=BASE, envelope=True, quota=policy)
    client = coinguard.Client(
        provider=provider,
        read_key="bench-read-key-1",
        http_client=httpx.Client(transport=_transport()),
        quota_store=coinguard.MemoryStore(),
    )

    def call() -> object:
        return client.get("/price", params={"symbol": "BTC"})

    return call


def _month_policy() -> coinguard.QuotaPolicy:
    return coinguard.QuotaPolicy(
        [coinguard.Window.per_second(10**9), coinguard.Window.per_month(10**9)]
    )


def persisted_client(journal: str, *, write_through: bool) -> Callable[[], object]:
    """A month window on the memory store, journaled to SQLite (the default persistence).
    ``write_through``: one journal transaction per call, as before leases (block of 1)."""
    provider = coinguard.Provider(name="bench", base_url=BASE, envelope=True, quota=_month_policy())
    os.environ["COINGUARD_QUOTA_PERSIST"] = journal
    client = coinguard.Client(
        provider=provider,
        read_key="bench-read-key-1" if write_through else "bench-read-key-2",
        http_client=httpx.Client(transport=_transport()),
        quota_store=coinguard.MemoryStore(),
    )
    client.get("/price")
    if write_through:
        for quota in client._quotas.values():
            if quota._journal is not None:
                quota._journal.block = 1

    def call() -> object:
        return client.get("/price", params={"symbol": "BTC"})

    return call


def _async(make: Callable[[], Callable[[], Awaitable[object]]], n: int) -> Callable[[], object]:
    """Wrap ``n`` awaited calls as one synchronous batch, so async variants time like sync ones."""
    loop = asyncio.new_event_loop()
    call = loop.run_until_complete(_build(make))

    async def many() -> None:
        for _ in range(n):
            await call()

    def batch() -> object:
        return loop.run_until_complete(many())

    return batch


async def _build(
    make: Callable[[], Callable[[], Awaitable[object]]],
) -> Callable[[], Awaitable[object]]:
    return make()


def raw_httpx_async() -> Callable[[], Awaitable[object]]:
    client = httpx.AsyncClient(
        transport=_async_transport(), headers={"x-api-key": "bench-read-key-1"}
    )

    async def call() -> object:
        r = await client.get(f"{BASE}/price", params={"symbol": "BTC"})
        r.raise_for_status()
        return r.json()

    return call


def persisted_async(journal: str, *, write_through: bool) -> Callable[[], Awaitable[object]]:
    provider = coinguard.Provider(name="bench", base_url=BASE, envelope=True, quota=_month_policy())
    os.environ["COINGUARD_QUOTA_PERSIST"] = journal
    client = coinguard.AsyncClient(
        provider=provider,
        read_key="bench-read-key-3" if write_through else "bench-read-key-4",
        http_client=httpx.AsyncClient(transport=_async_transport()),
        quota_store=coinguard.MemoryStore(),
    )
    first = [True]

    async def call() -> object:
        result = await client.get("/price", params={"symbol": "BTC"})
        if first[0] and write_through:
            first[0] = False
            for quota in client._quotas.values():
                if quota._journal is not None:
                    quota._journal.block = 1
        return result

    return call


def _async_transport() -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def _time(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    journal = os.path.join(tmp, "journal.sqlite3")
    variants = {
        "raw httpx": raw_httpx(),
        "coinguard, no quota": coinguard_client(quota=False),
        "coinguard, 2-window quota": coinguard_client(quota=True),
        "month persisted, leases": persisted_client(journal, write_through=False),
        "month persisted, per call": persisted_client(journal, write_through=True),
    }
    per_batch = 100  # async variants time batches of awaited calls
    batches = {
        "async raw httpx": _async(raw_httpx_async, per_batch),
        "async month persisted, leases": _async(
            lambda: persisted_async(journal, write_through=False), per_batch
        ),
        "async month persisted, per call": _async(
            lambda: persisted_async(journal, write_through=True), per_batch
        ),
    }
    for call in variants.values():
        _time(call, 500)  # warm-up
    for call in batches.values():
        _time(call, 5)
    best = {name: float("inf") for name in [*variants, *batches]}
    for _ in range(args.rounds):
        for name, call in variants.items():
            best[name] = min(best[name], _time(call, args.calls))
        for name, call in batches.items():
            best[name] = min(best[name], _time(call, args.calls // per_batch) / per_batch)
    print(f"calls per round: {args.calls}, rounds: {args.rounds} (best round reported)")
    for name, seconds in best.items():
        base = best["async raw httpx" if name.startswith("async") else "raw httpx"]
        print(f"{name:<34} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
