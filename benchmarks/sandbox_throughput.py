"""Throughput of the sandbox server against a trivial stdlib baseline, measured in one run.

Both servers run in their own subprocess (so neither shares the GIL with the load generator):

* the sandbox, started with ``python -m coinguard._cli sandbox --json`` and limits high
  enough never to answer 429;
* ``http.server.ThreadingHTTPServer`` (HTTP/1.1, keep-alive) returning a fixed JSON body.

Load: ``--processes`` client processes x ``--threads`` threads, each thread with its own
keep-alive ``httpx.Client``, sending ``GET /v2/price?symbol=BTC`` for ``--seconds``.

Usage::

    python benchmarks/sandbox_throughput.py --seconds 10 --threads 8
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx

BASELINE = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps({"success": True, "message": "ok", "length": 1,
                   "data": [{"symbol": "BTC", "price": 65000.0}]}).encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
port = server.server_address[1]
print(json.dumps({"base_url": f"http://127.0.0.1:{port}/v2", "keys": {"read": "unused"}}),
      flush=True)
server.serve_forever()
"""


@dataclass
class Result:
    """Aggregated load-test figures for one server."""

    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(command: list[str]) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


def _worker(url: str, key: str, threads: int, seconds: float, out: multiprocessing.Queue) -> None:
    deadline = time.perf_counter() + seconds
    counts = [0] * threads
    errors = [0] * threads
    samples: list[list[float]] = [[] for _ in range(threads)]

    def run(i: int) -> None:
        with httpx.Client(headers={"x-api-key": key}, timeout=10.0) as client:
            while (now := time.perf_counter()) < deadline:
                try:
                    r = client.get(url, params={"symbol": "BTC"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    counts[i] += 1
                    if counts[i] % 10 == 0:
                        samples[i].append(time.perf_counter() - now)
                else:
                    errors[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((sum(counts), sum(errors), [s for per in samples for s in per]))


def load(name: str, info: dict[str, object], args: argparse.Namespace, pid: int) -> Result:
    """Run the load for ``args.seconds`` against one server and aggregate."""
    url = f"{info['base_url']}/price"
    keys = info["keys"]
    assert isinstance(keys, dict)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # A short warm-up fills the connection pools and the sandbox's price cache.
    warm = ctx.Process(target=_worker, args=(url, keys["read"], args.threads, 1.0, queue))
    warm.start()
    queue.get()
    warm.join()
    procs = [
        ctx.Process(target=_worker, args=(url, keys["read"], args.threads, args.seconds, queue))
        for _ in range(args.processes)
    ]
    cpu_before = _cpu_seconds(pid)
    for p in procs:
        p.start()
    parts = [queue.get() for _ in procs]
    cpu_after = _cpu_seconds(pid)
    for p in procs:
        p.join()
    latencies = sorted(s for _, _, samples in parts for s in samples) or [0.0]
    requests = sum(p[0] for p in parts)
    cpu = None
    if cpu_before is not None and cpu_after is not None and requests:
        # Approximate: includes the spawn delay of the client processes (idle server time).
        cpu = (cpu_after - cpu_before) / requests * 1e6
    return Result(
        name,
        requests,
        sum(p[1] for p in parts),
        args.seconds,  # each worker runs exactly this long from its own start
        statistics.median(latencies) * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        cpu,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    sandbox_cmd = [
        sys.executable,
        "-m",
        "coinguard._cli",
        "sandbox",
        "--port",
        "0",
        "--json",
        "--limit",
        "1000000000/s",
    ]
    results = []
    for name, command in (
        ("coinguard sandbox", sandbox_cmd),
        ("stdlib ThreadingHTTPServer", [sys.executable, "-c", BASELINE]),
    ):
        proc, info = _spawn(command)
        try:
            results.append(load(name, info, args, proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    sandbox, baseline = results
    if args.json:
        rows = [{**r.__dict__, "rps": round(r.rps, 1)} for r in results]
        print(json.dumps({"results": rows, "ratio": round(sandbox.rps / baseline.rps, 3)}))
        return 0
    print(
        f"GET /v2/price, keep-alive, {args.processes} process(es) x {args.threads} threads, "
        f"{args.seconds:g} s each, Python {sys.version.split()[0]}"
    )
    print(
        f"{'server':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu us/req':>11}"
    )
    for r in results:
        cpu = "n/a" if r.server_cpu_us is None else f"{r.server_cpu_us:.0f}"
        print(
            f"{r.name:<28} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} {cpu:>11}"
        )
    print(f"ratio sandbox / baseline: {sandbox.rps / baseline.rps:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
