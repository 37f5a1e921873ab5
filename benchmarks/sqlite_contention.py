"""SQLite store under contention: several processes reserving on one key in one file.

Each process makes ``--calls`` reserve + settle pairs on the same key, as fast as it can,
against a window too large to ever make it wait, and records the time of each reserve. The
stall a store can cause is its worst case: the median, p99 and maximum reserve time and the
count of reserves over 100 ms, over all processes, are reported per variant. Variants, run
alternately round after round in the same files' directory, so machine noise hits both:

* ``busy handler``: SQLite's own wait for the write lock (Python's ``timeout``): the waiter
  sleeps 1, 2, 5 ... up to 100 ms between tries, however soon the lock is free;
* ``store``: ``SQLiteStore`` as shipped.

    python benchmarks/sqlite_contention.py [--processes 4] [--calls 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from coinguard._quota import QuotaPolicy, SQLiteStore, Window
from coinguard._quota._limiter import Quota

# A calendar window is one counter row: the cost of a transaction stays flat, so what is
# measured is the wait for the write lock, not the rolling log's growth (a separate item).
POLICY = QuotaPolicy([Window.per_minute(10**7, calendar=True)], margin=0.0)


class BusyHandlerStore(SQLiteStore):
    """The store with SQLite's own busy handler as the only wait for the write lock."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        started = time.monotonic()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self.waited = time.monotonic() - started
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


def _worker(args: tuple[str, str, int, multiprocessing.synchronize.Barrier]) -> list[float]:
    variant, path, calls, barrier = args
    kind = BusyHandlerStore if variant == "busy handler" else SQLiteStore
    store = kind(path)
    quota = Quota(POLICY, store=store, key_id="shared-key", persist=None)
    barrier.wait()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        reservation = quota.reserve("GET", "/x")
        times.append(time.perf_counter() - start)
        quota.sent(reservation)
    store.close()
    return times


def run(
    variant: str, processes: int, calls: int, directory: Path, round_: int
) -> tuple[list[float], float]:
    """Every reserve time, and the sum of all reserve times (the work done under the lock
    and the waits for it, over all processes)."""
    path = str(directory / f"{variant.replace(' ', '-')}-{round_}.db")
    SQLiteStore(path).close()  # the schema exists before anyone races for it
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            results = pool.map(_worker, [(variant, path, calls, barrier)] * processes)
    times = [t for each in results for t in each]
    return times, max(sum(each) for each in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    variants = ("busy handler", "store")
    seen: dict[str, list[float]] = {v: [] for v in variants}
    busiest: dict[str, float] = dict.fromkeys(variants, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                times, longest = run(variant, args.processes, args.calls, Path(tmp), r)
                seen[variant] += times
                busiest[variant] += longest
    print(f"{args.processes} processes x {args.calls} reserves x {args.rounds} rounds, one key")
    head = f"{'variant':<14}{'median ms':>10}{'p99 ms':>9}{'max ms':>9}{'> 100 ms':>10}"
    print(head + f"{'slowest process s':>19}")
    for variant, times in seen.items():
        ms = sorted(t * 1000 for t in times)
        p99 = ms[int(len(ms) * 0.99) - 1]
        slow = sum(t > 100 for t in ms)
        row = f"{variant:<14}{statistics.median(ms):>10.2f}{p99:>9.2f}{ms[-1]:>9.1f}{slow:>10}"
        print(row + f"{busiest[variant]:>19.2f}")


if __name__ == "__main__":
    main()
