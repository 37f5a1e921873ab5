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
import time
from collections.abc import Callable

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
    variants = {
        "raw httpx": raw_httpx(),
        "coinguard, no quota": coinguard_client(quota=False),
        "coinguard, 2-window quota": coinguard_client(quota=True),
    }
    for call in variants.values():
        _time(call, 500)  # warm-up
    best = {name: float("inf") for name in variants}
    for _ in range(args.rounds):
        for name, call in variants.items():
            best[name] = min(best[name], _time(call, args.calls))
    base = best["raw httpx"]
    print(f"calls per round: {args.calls}, rounds: {args.rounds} (best round reported)")
    for name, seconds in best.items():
        print(f"{name:<28} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
