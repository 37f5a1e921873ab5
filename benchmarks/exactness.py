"""Exactness under contention: 64 threads hammer a 50/s limit through one coinguard client.

The sandbox enforces the same 50/s rolling window and records every arrival in its ledger; we
report the most requests it saw in any 1 s span, its window violations and its 429s, next to the
same load sent by plain httpx (the baseline: no client-side limit at all).

    python benchmarks/exactness.py [--seconds 10] [--threads 64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time

import httpx

import coinguard
from coinguard.sandbox import Sandbox, SandboxConfig, Window

LIMIT = 50


def _hammer(call: object, seconds: float, threads: int) -> None:
    end = time.time() + seconds

    def worker() -> None:
        while time.time() < end:
            with contextlib.suppress(coinguard.CoinguardError, httpx.HTTPError):
                call()  # type: ignore[operator]

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def run(variant: str, seconds: float, threads: int) -> str:
    config = SandboxConfig(windows=(Window(LIMIT, 1.0),), header_style="none")
    with Sandbox(config) as sb:
        if variant == "coinguard":
            client = coinguard.Client(
                provider="sandbox",
                base_url=sb.base_url,
                read_key=sb.keys.read,
                quota=coinguard.QuotaPolicy([coinguard.Window.per_second(LIMIT)]),
                quota_store=coinguard.MemoryStore(),
                max_retries=0,
                max_wait=60.0,
            )
            _hammer(lambda: client.get("/price", params={"symbol": "BTC"}), seconds, threads)
            client.close()
        else:
            http = httpx.Client(headers={"x-api-key": sb.keys.read})
            url = sb.base_url + "/price"
            _hammer(lambda: http.get(url, params={"symbol": "BTC"}), seconds, threads)
            http.close()
        admitted = sb.ledger.count(status=200)
        limited = sb.ledger.count(status=429)
        peak = sb.ledger.max_in_window(1.0)
        violations = len(sb.ledger.violations())
    return (
        f"{variant:<12} admitted {admitted:>5}  max in any 1 s {peak:>3} (limit {LIMIT})  "
        f"429s {limited:>6}  window violations {violations}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("COINGUARD_QUOTA_PERSIST", "0")
    print(f"{args.threads} threads, {args.seconds:.0f} s, sandbox limit {LIMIT}/s (in-process)")
    for variant in ("httpx", "coinguard"):
        print(run(variant, args.seconds, args.threads))


if __name__ == "__main__":
    main()
