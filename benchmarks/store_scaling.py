"""Store cost against the number of live calls in a window (SQLite and Redis).

One key with two rolling windows large enough never to make a call wait (a minute of 10^6
and an hour of 10^7), filled with 0, 600 and 6,000 live calls, then timed per operation at
each level: ``reserve`` alone, and ``reserve`` + ``settle`` (the store-side re-check a call
that waited, or left late, makes as it leaves). A fake clock moves 1 ms per call, so every
call stays live in both windows. Median per operation over ``--calls`` calls a level, best
of ``--rounds`` rounds; each round starts from an empty key. Redis runs on a throwaway
loopback ``redis-server`` (skipped if none is installed).

    python benchmarks/store_scaling.py [--calls 200] [--rounds 3] [--levels 0,600,6000]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from coinguard._quota import QuotaPolicy, RedisStore, SQLiteStore, Window
from coinguard._quota._store import QuotaBucket

POLICY = QuotaPolicy([Window.per_minute(10**6), Window.per_hour(10**7)], margin=0.05)
START = 1_700_000_000.0


class Tick:
    """A clock that moves 1 ms per reading."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def fill(bucket: QuotaBucket, clock: Tick, n: int) -> None:
    for _ in range(n):
        bucket.reserve(1, clock(), 1e9)


def timed(bucket: QuotaBucket, clock: Tick, calls: int, settle: bool) -> float:
    """Median milliseconds of one reserve (and settle)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        at, _ = bucket.reserve(1, clock(), 1e9)
        if settle:
            bucket.settle(at, 1, clock(), 1e9)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def measure(
    make: Callable[[str], QuotaBucket], levels: list[int], calls: int, rounds: int
) -> dict[int, tuple[float, float]]:
    best: dict[int, tuple[float, float]] = {}
    for r in range(rounds):
        bucket, clock, live = make(f"scaling-{r}-{time.time_ns()}"), Tick(), 0
        for level in levels:
            fill(bucket, clock, level - live)
            reserve = timed(bucket, clock, calls, settle=False)
            both = timed(bucket, clock, calls, settle=True)
            live = level + 2 * calls
            old = best.get(level, (float("inf"), float("inf")))
            best[level] = (min(old[0], reserve), min(old[1], both))
    return best


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    probe = RedisStore(url)
    for _ in range(100):
        try:
            probe.client.ping()
            break
        except Exception:
            time.sleep(0.05)
    probe.close()
    return proc, url


def report(name: str, figures: dict[int, tuple[float, float]]) -> None:
    levels = sorted(figures)
    heads = " / ".join(f"{n:,}" for n in levels)
    reserve = " / ".join(f"{figures[n][0]:.3f}" for n in levels)
    both = " / ".join(f"{figures[n][1]:.3f}" for n in levels)
    print(f"| {name} | {heads} | {reserve} ms | {both} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="0,600,6000")
    ns = parser.parse_args()
    levels = sorted(int(x) for x in ns.levels.split(","))
    specs = POLICY.specs()
    print("| store | live entries | reserve (median) | reserve + settle |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "quota.db")
        report("SQLite, 2 windows", measure(lambda k: sqlite.bind(k, specs), levels, ns.calls,
                                            ns.rounds))  # fmt: skip
        sqlite.close()
    started = start_redis()
    if started is None:
        print("Redis: redis-server not found, skipped")
        return
    proc, url = started
    try:
        redis = RedisStore(url, server_clock=False)
        report("Redis, 2 windows", measure(lambda k: redis.bind(k, specs), levels, ns.calls,
                                           ns.rounds))  # fmt: skip
        redis.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
