"""Cost of taking a decaying counter (Kraken's REST limit) next to taking a window.

Both never block (limits far above the calls made): the numbers are the bookkeeping. The
window is one rolling per-second window through ``Quota.reserve`` + ``Quota.sent`` (what the
client does per call); the counter is one ``counter_take`` on the same store (what the client
does per call for a provider with a counter); the nonce is one ``next_nonce``. Memory and
SQLite stores; Redis too when ``redis-server`` is installed.

    python benchmarks/counter_acquire.py [--calls 20000] [--rounds 5] [--no-redis]

Prints the best per-call time of each variant (rounds interleaved, so machine noise hits every
variant alike) and the counter's and nonce's ratios to the window on the same store.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coinguard._quota import (
    DecayingCounter,
    MemoryStore,
    Quota,
    QuotaPolicy,
    QuotaStore,
    RedisStore,
    SQLiteStore,
    Window,
)

HUGE = 10**9
WINDOW = QuotaPolicy([Window.per_second(HUGE)])
COUNTER = DecayingCounter(HUGE, 1e6)  # never full: 1e6 drained per second


def window_run(store: QuotaStore) -> Callable[[int], None]:
    def run(n: int) -> None:
        quota = Quota(WINDOW, store=store, key_id=f"w{time.perf_counter_ns()}", persist=None)
        clock = time.time
        for _ in range(n):
            reservation = quota.reserve("GET", "/x")
            quota.sent(reservation, at=clock())

    return run


def counter_run(store: Any) -> Callable[[int], None]:
    def run(n: int) -> None:
        key, take, clock = f"c{time.perf_counter_ns()}", store.counter_take, time.time
        for _ in range(n):
            take(key, COUNTER, 1, clock(), 0.0)

    return run


def nonce_run(store: Any) -> Callable[[int], None]:
    def run(n: int) -> None:
        key, draw = f"n{time.perf_counter_ns()}", store.next_nonce
        for _ in range(n):
            draw(key, 1)

    return run


@contextmanager
def redis_store() -> Iterator[RedisStore | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        store = RedisStore(f"redis://127.0.0.1:{port}/0")
        for _ in range(100):
            try:
                store.client.ping()
                break
            except Exception:
                time.sleep(0.05)
        yield store
        store.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def best(runs: dict[str, Callable[[int], None]], calls: int, rounds: int) -> dict[str, float]:
    out = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter_ns()
            run(calls)
            out[name] = min(out[name], (time.perf_counter_ns() - start) / calls / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_store() as redis:
        stores: dict[str, Any] = {
            "memory": MemoryStore(),
            "sqlite": SQLiteStore(Path(tmp) / "bench.db"),
        }
        if redis is not None and not args.no_redis:
            stores["redis"] = redis
        print("| store | window reserve+sent (µs) | counter take (µs) | counter/window "
              "| nonce draw (µs) | nonce/window |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name, store in stores.items():
            calls = args.calls if name == "memory" else max(1, args.calls // 10)
            runs = {"window": window_run(store), "counter": counter_run(store)}
            runs["nonce"] = nonce_run(store)
            got = best(runs, calls, args.rounds)
            w, c, n = got["window"], got["counter"], got["nonce"]
            print(f"| {name} | {w:.2f} | {c:.2f} | **{c / w:.2f}x** | {n:.2f} | {n / w:.2f}x |")


if __name__ == "__main__":
    main()
