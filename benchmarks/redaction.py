"""Cost of redaction as the number of live keys grows, against the same run with one key.

Every log record of the ``coinguard``, ``httpx`` and ``httpcore`` loggers goes through
``coinguard._redact.redact``; an agent platform or a data service may hold thousands of keys in
one process. This measures one typical httpx request line (no key in it, the common case) and
one with a key in its query string, with 1 and with N keys registered, interleaved round by
round, and reports the per-call time and the ratio to the one-key case, plus the memory the
index takes per key.

    python benchmarks/redaction.py [--keys 1000 10000] [--rounds 5] [--calls 20000]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
import tracemalloc

from coinguard import Secret, _redact

CLEAN = (
    "HTTP Request: GET https://api.example.com/v2/daily-ohlcv?symbol=BTC&startDate=2026-01-01"
    '&endDate=2026-03-31&limit=100&page=1 "HTTP/1.1 200 OK"'
)


def _keys(n: int) -> list[Secret]:
    return [Secret("sk_live_" + secrets.token_urlsafe(24)) for _ in range(n)]


def _per_call(text: str, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        _redact.redact(text)
    return (time.perf_counter() - start) / calls


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
    base = {"clean": [], "keyed": []}  # type: dict[str, list[float]]
    for _ in range(args.rounds):
        base["clean"].append(_per_call(CLEAN, args.calls))
        base["keyed"].append(_per_call(keyed, args.calls // 10))
    print(f"{'live keys':>10} {'line':>6} {'per call':>10} {'vs 1 key':>9} {'KB/key':>7}")
    for kind, times in base.items():
        print(f"{1:>10} {kind:>6} {min(times) * 1e6:>8.2f}us {1.0:>8.2f}x {'':>7}")
    held = list(first)
    for n in args.keys:
        tracemalloc.start()
        extra = _keys(n - len(held))
        for key in extra:
            _redact.register(key)
        memory = tracemalloc.get_traced_memory()[0] / max(1, len(extra))
        tracemalloc.stop()
        held += extra
        many = {"clean": [], "keyed": []}  # type: dict[str, list[float]]
        for _ in range(args.rounds):
            many["clean"].append(_per_call(CLEAN, args.calls))
            many["keyed"].append(_per_call(keyed, args.calls // 10))
        for kind, times in many.items():
            ratio = min(times) / min(base[kind])
            print(
                f"{n:>10} {kind:>6} {min(times) * 1e6:>8.2f}us {ratio:>8.2f}x {memory / 1024:>7.1f}"
            )
    print(f"spread over rounds (1 key, clean): {statistics.pstdev(base['clean']) * 1e6:.2f}us")


if __name__ == "__main__":
    main()
