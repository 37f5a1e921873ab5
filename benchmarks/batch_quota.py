"""A 500-symbol batch against the sandbox: wall time against the minimum its quota allows.

The sandbox enforces a rolling window of LIMIT requests a second (and records every arrival);
the client declares the same window. With N one-request items, the first LIMIT leave at once
and each further LIMIT one window later, so no client can finish before
``(ceil(N / LIMIT) - 1) * 1 s`` after the first send: that is the baseline, measured in the
same run as the batch. We report wall time, the ratio to the minimum, and the 429s and window
violations in the sandbox's ledger.

    python benchmarks/batch_quota.py [--items 500] [--limit 50] [--workers 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import time

import coinguard
from coinguard.sandbox import Sandbox, SandboxConfig, Window


def run(items: int, limit: int, workers: int) -> tuple[float, float, int, int]:
    config = SandboxConfig(windows=(Window(limit, 1.0),), header_style="none")
    with Sandbox(config) as sb:
        client = coinguard.Client(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=sb.keys.read,
            quota=coinguard.QuotaPolicy([coinguard.Window.per_second(limit)]),
            quota_store=coinguard.MemoryStore(),
            max_wait=600.0,
            retry=coinguard.RetryPolicy(deadline=600.0),
        )
        # the 50 tickers the sandbox lists (the same as the CoinGecko table's)
        tokens = list(coinguard.get_provider("coingecko").symbols)
        symbols = [tokens[i % len(tokens)] for i in range(items)]

        def fetch(index: int) -> float:
            rows = client.prices(symbols[index])
            return float(rows[0].price)

        with client:
            started = time.perf_counter()
            done = client.batch(range(items), fetch, workers=workers, progress=False)
            wall = time.perf_counter() - started
        assert done.ok, done.errors
        minimum = (math.ceil(items / limit) - 1) * 1.0
        limited = sb.ledger.count(status=429)
        return wall, minimum, limited, len(sb.ledger.violations())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.items} items, {args.limit}/s window, {args.workers} workers")
    print("round  wall (s)  minimum (s)  ratio   429s  violations")
    for n in range(1, args.rounds + 1):
        wall, minimum, limited, violations = run(args.items, args.limit, args.workers)
        print(
            f"{n:>5}  {wall:8.2f}  {minimum:11.2f}  {wall / minimum:5.3f}x  {limited:4d}"
            f"  {violations:10d}"
        )


if __name__ == "__main__":
    main()
