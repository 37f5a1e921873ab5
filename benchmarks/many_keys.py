"""Memory left behind by many short-lived clients with distinct keys, on one memory store.

A data service or agent platform opens a client per user key, makes a few calls and closes
it. Each variant opens ``--clients`` clients with distinct keys on a fresh ``MemoryStore``,
makes ``--calls`` calls through each (an in-memory transport answers), and then either closes
each client (what a service does) or keeps them all open (the baseline: their state must stay).
It reports the keys and window logs the store still holds and the Python memory still
allocated (``tracemalloc``) after the run.

    python benchmarks/many_keys.py [--clients 20000] [--calls 5]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

import httpx

import coinguard

BASE = "https://api.example.com/v2"
BODY = b'{"success": true, "message": "ok", "length": 0, "data": []}'


def _transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def run(clients: int, calls: int, *, close: bool) -> tuple[int, int, float]:
    """Return (keys held, logs held, MB still allocated)."""
    store = coinguard.MemoryStore()
    policy = coinguard.QuotaPolicy(
        [coinguard.Window.per_second(50), coinguard.Window.per_minute(1000)]
    )
    provider = coinguard.Provider(name="bench", base_url=BASE, envelope=True, quota=policy)
    http = httpx.Client(transport=_transport())
    now = [1_800_000_000.0]
    kept = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(clients):
        client = coinguard.Client(
            provider=provider,
            read_key=f"bench-user-key-{i:08d}",
            http_client=http,
            quota_store=store,
            clock=lambda: now[0],
            sleep=lambda s: None,
        )
        for _ in range(calls):
            client.get("/price")
        now[0] += 0.05  # 20 users a second: a minute's window holds 1,200 of them
        if close:
            client.close()
        else:
            kept.append(client)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return len(store._metas), len(store._logs), (after - before) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.clients} clients x {args.calls} calls, distinct keys, one MemoryStore")
    print(f"{'variant':<28}{'keys held':>10}{'logs held':>11}{'MB left':>9}")
    for name, close in (("closed after their calls", True), ("kept open (baseline)", False)):
        keys, logs, mb = run(args.clients, args.calls, close=close)
        print(f"{name:<28}{keys:>10}{logs:>11}{mb:>9.1f}")


if __name__ == "__main__":
    main()
