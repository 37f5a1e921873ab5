"""Cost of redaction as the number of live keys grows, against the same run with one key.

Every log record of the ``coinguard``, ``httpx`` and ``httpcore`` loggers goes through
``coinguard._redact.redact``; an agent platform or a data service may hold thousands of keys in
one process. This measures one typical httpx request line (no key in it, the common case) and
one with a key in its query string, and a whole request through a ``coinguard.Client`` (key in
the query, httpx logging at INFO to a file), with 1 and with N keys registered, interleaved
round by round, and reports the per-call time and the ratio to the one-key case, plus the
memory each registered key takes (its index, its Secret and the hook that forgets it).

    python benchmarks/redaction.py [--keys 1000 10000] [--rounds 5] [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import secrets
import statistics
import time
import tracemalloc
from collections.abc import Callable

import httpx

import coinguard
from coinguard import Secret, _redact

CLEAN = (
    "HTTP Request: GET https://api.example.com/v2/daily-ohlcv?symbol=BTC&startDate=2026-01-01"
    '&endDate=2026-03-31&limit=100&page=1 "HTTP/1.1 200 OK"'
)


def _keys(n: int) -> list[Secret]:
    return [Secret("sk_live_" + secrets.token_urlsafe(24)) for _ in range(n)]


def _per_call(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def _requester(key: Secret) -> Callable[[], object]:
    """One GET through a client whose key goes in the query, logged by httpx at INFO."""
    log = logging.getLogger("httpx")
    log.setLevel(logging.INFO)
    log.addHandler(logging.FileHandler(os.devnull))
    provider = coinguard.Provider(
        name="bench", base_url="https://api.example.com/v2", auth=coinguard.QueryKey("api_key")
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    client = coinguard.Client(
        provider=provider, read_key=key, http_client=httpx.Client(transport=transport)
    )
    params = {"symbol": "BTC", "startDate": "2026-01-01", "endDate": "2026-03-31"}
    return lambda: client.get("/daily-ohlcv", params=params)


def _round(
    calls: dict[str, tuple[Callable[[], object], int]], into: dict[str, list[float]]
) -> None:
    for kind, (call, n) in calls.items():
        into.setdefault(kind, []).append(_per_call(call, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    first = _keys(1)
    for key in first:
        _redact.register(key)
    keyed = CLEAN.replace("limit=100", f"api_key={first[0].reveal()}&limit=100")
    calls = {
        "clean": (lambda: _redact.redact(CLEAN), args.calls),
        "keyed": (lambda: _redact.redact(keyed), args.calls // 10),
        "request": (_requester(first[0]), args.calls // 20),
    }
    base: dict[str, list[float]] = {}
    many: dict[int, dict[str, list[float]]] = {n: {} for n in args.keys}
    memory: dict[int, float] = {}
    for rnd in range(args.rounds):
        for n in args.keys:
            # one key, then n, then one again: the baseline is measured between the others
            _round(calls, base)
            if not rnd:
                tracemalloc.start()
            extra = _keys(n - 1)
            for key in extra:
                _redact.register(key)
            if not rnd:
                memory[n] = tracemalloc.get_traced_memory()[0] / max(1, len(extra))
                tracemalloc.stop()
            gc.collect()  # a full collection now, not in the middle of a timed loop
            _round(calls, many[n])
            del extra, key
            gc.collect()
            with _redact._lock:
                _redact._reap()
    print(f"{'live keys':>10} {'line':>8} {'per call':>10} {'vs 1 key':>9} {'KB/key':>7}")
    for kind, times in base.items():
        print(f"{1:>10} {kind:>8} {min(times) * 1e6:>8.2f}us {1.0:>8.2f}x {'':>7}")
    for n in args.keys:
        for kind, times in many[n].items():
            ratio = min(times) / min(base[kind])
            print(
                f"{n:>10} {kind:>8} {min(times) * 1e6:>8.2f}us {ratio:>8.2f}x"
                f" {memory[n] / 1024:>7.1f}"
            )
    print(f"spread over rounds (1 key, clean): {statistics.pstdev(base['clean']) * 1e6:.2f}us")


if __name__ == "__main__":
    main()
