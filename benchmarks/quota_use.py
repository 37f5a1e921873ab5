"""How much of a rate limit coinguard uses, and how many 429s it causes, against the real sandbox.

Each variant gets a fresh sandbox subprocess (`coinguard sandbox --limit 20/s --limit 600/min`;
``--per-minute 0`` leaves out the minute window),
hammers it for the same duration, and reports: requests the server admitted by the end of the
run, the share of the allowed maximum that is, and the 429s it answered.

Variants, all in one invocation so the ratios share the machine's state:

* ``httpx+tenacity``: what a user would write without coinguard: plain httpx, tenacity retrying
  on 429 with exponential backoff that honours Retry-After; 16 threads + 16 asyncio tasks.
* ``coinguard``: Client (16 threads) and AsyncClient (16 tasks) with the same windows declared,
  sharing the in-process memory store.
* ``coinguard-sqlite``: 4 processes x 4 threads sharing one SQLite store.
* ``coinguard-redis``: 4 processes x 4 threads sharing one Redis store (a redis-server on a free
  loopback port, started here; skipped when the binary is missing).

    python benchmarks/quota_use.py [--seconds 30] [--per-minute 600] [--margin 0.01]
                                   [--variants coinguard,httpx+tenacity,...]
                                   [--arrival-jitter 0.05,0.1]   # the latency scenario
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import tenacity

import coinguard

# 600/min caps a 30 s run at 600 whatever happens in each second; --per-minute 0 drops it, so the
# run measures how closely the 1 s window is followed (at most 20 x 31 = 620 in 30 s).
PER_MINUTE = int(os.environ.get("BENCH_PER_MINUTE", "600"))
LIMITS = ((20, 1.0), (PER_MINUTE, 60.0)) if PER_MINUTE else ((20, 1.0),)
GRACE = 0.25  # a response this long after the end still counts: it was admitted before
# The latency scenario: the sandbox stamps each arrival this long after it came in ("LOW,HIGH"
# seconds, uniform), as a network between client and server would.
ARRIVAL_JITTER = ""


@dataclass
class Tally:
    ok: int = 0
    limited: int = 0
    errors: int = 0

    def add(self, other: Tally) -> None:
        self.ok += other.ok
        self.limited += other.limited
        self.errors += other.errors


def allowed(seconds: float) -> int:
    """The most a server enforcing LIMITS admits in a run of this length from a standing start."""
    most = LIMITS[0][0] * (math.floor(seconds) + 1)
    if len(LIMITS) > 1:
        most = min(most, LIMITS[1][0] * math.ceil(seconds / 60.0))
    return most


@contextlib.contextmanager
def sandbox() -> Iterator[tuple[str, str]]:
    args = [sys.executable, "-c", "from coinguard._cli import main; raise SystemExit(main())"]
    args += ["sandbox", "--port", "0", "--json"]
    args += [f"--limit={n}/{'s' if s == 1.0 else 'min'}" for n, s in LIMITS]
    if ARRIVAL_JITTER:
        args += [f"--arrival-jitter={ARRIVAL_JITTER}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info["base_url"], info["keys"]["read"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _policy() -> coinguard.QuotaPolicy:
    margin = os.environ.get("BENCH_MARGIN")
    extra = {} if margin is None else {"margin": float(margin)}
    return coinguard.QuotaPolicy([coinguard.Window(n, s) for n, s in LIMITS], **extra)


def _client(base_url: str, key: str, store: str | coinguard.QuotaStore) -> coinguard.Client:
    provider = coinguard.get_provider("sandbox")
    return coinguard.Client(
        provider=provider, base_url=base_url, read_key=key, quota=_policy(), quota_store=store,
        max_wait=120.0, max_retries=0,
    )  # fmt: skip


def _count(tally: Tally, ok: bool, end: float) -> None:
    if time.time() <= end + GRACE:
        if ok:
            tally.ok += 1
        else:
            tally.limited += 1


def _coinguard_threads(client: coinguard.Client, end: float, n: int, tally: Tally) -> None:
    lock = threading.Lock()

    def worker() -> None:
        mine = Tally()
        while time.time() < end:
            try:
                client.get("/price", params={"symbol": "BTC"})
                _count(mine, True, end)
            except coinguard.RateLimitError:
                _count(mine, False, end)
            except coinguard.CoinguardError:
                mine.errors += 1
        with lock:
            tally.add(mine)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def _coinguard_tasks(base_url: str, key: str, end: float, n: int, tally: Tally) -> None:
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=base_url, read_key=key, quota=_policy(),
        quota_store="memory", max_wait=120.0, max_retries=0,
    ) as client:  # fmt: skip

        async def worker() -> None:
            while time.time() < end:
                try:
                    await client.get("/price", params={"symbol": "BTC"})
                    _count(tally, True, end)
                except coinguard.RateLimitError:
                    _count(tally, False, end)
                except coinguard.CoinguardError:
                    tally.errors += 1

        await asyncio.gather(*(worker() for _ in range(n)))


def run_coinguard(seconds: float) -> Tally:
    with sandbox() as (base_url, key):
        end = time.time() + seconds
        tally, async_tally = Tally(), Tally()
        loop_thread = threading.Thread(
            target=lambda: asyncio.run(_coinguard_tasks(base_url, key, end, 16, async_tally))
        )
        loop_thread.start()
        with _client(base_url, key, "memory") as client:
            _coinguard_threads(client, end, 16, tally)
        loop_thread.join()
        tally.add(async_tally)
        return tally


def _is_429(exc: BaseException) -> bool:
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429


def _wait_429(rs: tenacity.RetryCallState) -> float:
    backoff = tenacity.wait_exponential_jitter(multiplier=0.1, max=5.0)(rs)
    exc = rs.outcome.exception() if rs.outcome else None
    if isinstance(exc, httpx.HTTPStatusError):
        with contextlib.suppress(ValueError):
            return max(backoff, float(exc.response.headers.get("retry-after", 0)))
    return backoff


def run_baseline(seconds: float) -> Tally:
    """Plain httpx plus tenacity: retry a 429 after Retry-After, up to 10 times."""
    with sandbox() as (base_url, key):
        end = time.time() + seconds
        tally, lock = Tally(), threading.Lock()
        headers = {"x-api-key": key}

        def fetch_sync(client: httpx.Client) -> None:
            r = client.get(f"{base_url}/price", params={"symbol": "BTC"}, headers=headers)
            with lock:
                _count(tally, r.status_code == 200, end)
            r.raise_for_status()

        retry_kw = {
            "retry": tenacity.retry_if_exception(_is_429),
            "wait": _wait_429,
            "stop": tenacity.stop_after_attempt(10),
            "reraise": True,
        }

        def thread_worker(client: httpx.Client) -> None:
            retrying = tenacity.Retrying(**retry_kw)  # type: ignore[arg-type]
            while time.time() < end:
                with contextlib.suppress(httpx.HTTPError):
                    retrying(fetch_sync, client)

        async def tasks() -> None:
            async with httpx.AsyncClient() as client:

                async def fetch() -> None:
                    r = await client.get(
                        f"{base_url}/price", params={"symbol": "BTC"}, headers=headers
                    )
                    _count(tally, r.status_code == 200, end)
                    r.raise_for_status()

                async def worker() -> None:
                    retrying = tenacity.AsyncRetrying(**retry_kw)  # type: ignore[arg-type]
                    while time.time() < end:
                        with contextlib.suppress(httpx.HTTPError):
                            await retrying(fetch)

                await asyncio.gather(*(worker() for _ in range(16)))

        loop_thread = threading.Thread(target=lambda: asyncio.run(tasks()))
        loop_thread.start()
        with httpx.Client() as client:
            threads = [threading.Thread(target=thread_worker, args=(client,)) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        loop_thread.join()
        return tally


def _process_main(
    base_url: str, key: str, store: str, start: float, end: float, out: mp.Queue[Tally]
) -> None:
    tally = Tally()
    with _client(base_url, key, store) as client:
        time.sleep(max(0.0, start - time.time()))
        _coinguard_threads(client, end, 4, tally)
    out.put(tally)


def run_processes(seconds: float, store: str) -> Tally:
    ctx = mp.get_context("spawn")
    with sandbox() as (base_url, key):
        queue: mp.Queue[Tally] = ctx.Queue()
        start = time.time() + 3.0  # let the spawned interpreters import first
        procs = [
            ctx.Process(
                target=_process_main, args=(base_url, key, store, start, start + seconds, queue)
            )
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        total = Tally()
        for _ in procs:
            total.add(queue.get(timeout=seconds + 120))
        for p in procs:
            p.join()
        return total


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
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
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--margin", type=float, default=None, help="override QuotaPolicy.margin")
    parser.add_argument(
        "--per-minute", type=int, default=None, help="the minute window (default 600, 0: none)"
    )
    parser.add_argument(
        "--variants", default="httpx+tenacity,coinguard,coinguard-sqlite,coinguard-redis"
    )
    parser.add_argument(
        "--arrival-jitter",
        default="",
        metavar="LOW,HIGH",
        help="latency scenario: the sandbox stamps each arrival LOW..HIGH s late (e.g. 0.05,0.1)",
    )
    args = parser.parse_args()
    global ARRIVAL_JITTER
    ARRIVAL_JITTER = args.arrival_jitter
    os.environ.setdefault("COINGUARD_QUOTA_PERSIST", "0")
    if args.margin is not None:
        os.environ["BENCH_MARGIN"] = str(args.margin)  # inherited by the spawned processes
    if args.per_minute is not None:
        os.environ["BENCH_PER_MINUTE"] = str(args.per_minute)
        global LIMITS
        LIMITS = ((20, 1.0), (args.per_minute, 60.0)) if args.per_minute else ((20, 1.0),)
    cap = allowed(args.seconds)
    names = " + ".join(f"{n}/{'s' if s == 1.0 else 'min'}" for n, s in LIMITS)
    late = f", arrivals stamped {ARRIVAL_JITTER} s late" if ARRIVAL_JITTER else ""
    print(f"limits {names}, {args.seconds:.0f} s per variant, allowed at most {cap}{late}")
    print(f"{'variant':<18} {'admitted':>8} {'of allowed':>10} {'429s':>6} {'errors':>6}")
    for name in args.variants.split(","):
        if name == "httpx+tenacity":
            tally = run_baseline(args.seconds)
        elif name == "coinguard":
            tally = run_coinguard(args.seconds)
        elif name == "coinguard-sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                tally = run_processes(args.seconds, f"sqlite:///{Path(tmp) / 'quota.db'}")
        elif name == "coinguard-redis":
            with redis_server() as url:
                if url is None:
                    print(f"{name:<18} skipped: no redis-server binary")
                    continue
                tally = run_processes(args.seconds, url)
        else:
            raise SystemExit(f"unknown variant {name}")
        share = tally.ok / cap
        print(f"{name:<18} {tally.ok:>8} {share:>10.1%} {tally.limited:>6} {tally.errors:>6}")


if __name__ == "__main__":
    main()
