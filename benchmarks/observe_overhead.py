"""Per-call overhead of the observers (audit log, alerts, tracing, metrics) vs none.

The same GET over one httpx.MockTransport (no network), through a coinguard client with no
observer, then with each observer alone and with all four; raw httpx is printed for scale. The
audit log writes to a real file in a temporary directory (rotation and the cross-process lock
included); tracing uses the OpenTelemetry SDK with a span processor whose exporter drops the
spans; metrics count into a fresh prometheus_client registry.

    python benchmarks/observe_overhead.py [--calls 5000] [--rounds 5]
    python benchmarks/observe_overhead.py --instructions [--calls 1000]

Prints the best per-call time of each variant, interleaved round by round so machine noise hits
every variant alike, and its ratio to the client without observers; with ``--instructions``,
the CPU instructions per call counted by valgrind's callgrind (user space only: the audit
file's system calls are not in it), which do not depend on the neighbours.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import coinguard

BASE = "https://api.example.com/v2"
BODY = b'{"success": true, "data": [{"symbol": "BTC", "price": 1.0}]}'


class Drop(SpanExporter):
    """Exports nothing: the cost measured is coinguard's and the SDK's, not an exporter's."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Null:
    """An observer that does nothing: what remains is the cost of building each record."""

    blocking = False

    def attempt(self, record: coinguard.Attempt) -> None:
        return None


def _transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def raw_httpx() -> Callable[[], object]:
    client = httpx.Client(transport=_transport(), headers={"x-api-key": "bench-read-key-1"})

    def call() -> object:
        r = client.get(f"{BASE}/price", params={"symbol": "BTC"})
        r.raise_for_status()
        return r.json()

    return call


def client(observers: list[Any], audit: Path | None = None) -> Callable[[], object]:
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(10**9)])
    provider = coinguard.Provider(name="bench", base_url=BASE, quota=policy)
    c = coinguard.Client(
        provider=provider,
        read_key="bench-read-key-1",
        http_client=httpx.Client(transport=_transport()),
        quota_store=coinguard.MemoryStore(),
        audit=coinguard.AuditLog(audit) if audit else False,
        observers=observers,
    )

    def call() -> object:
        return c.get("/price", params={"symbol": "BTC"})

    return call


def _time(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


NAMES = (
    "raw httpx",
    "coinguard, no observer",
    "record only (null observer)",
    "audit log (file)",
    "alerts (Watch)",
    "tracing (OTel SDK)",
    "metrics (Prometheus)",
    "all four",
)


def build(name: str, tmp: Path) -> Callable[[], object]:
    """The call of one variant; the audit log writes into ``tmp``."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))

    def metrics() -> coinguard.Metrics:
        return coinguard.Metrics(prometheus_client.CollectorRegistry())

    makers: dict[str, Callable[[], Callable[[], object]]] = {
        "raw httpx": raw_httpx,
        "coinguard, no observer": lambda: client([]),
        "record only (null observer)": lambda: client([Null()]),
        "audit log (file)": lambda: client([], tmp / "a.jsonl"),
        "alerts (Watch)": lambda: client([coinguard.Watch()]),
        "tracing (OTel SDK)": lambda: client([coinguard.Tracing(tracer_provider)]),
        "metrics (Prometheus)": lambda: client([metrics()]),
        "all four": lambda: client(
            [coinguard.Watch(), coinguard.Tracing(tracer_provider), metrics()], tmp / "b.jsonl"
        ),
    }
    return makers[name]()


RUNNER = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {here!r})
from observe_overhead import build
with tempfile.TemporaryDirectory() as tmp:
    call = build(sys.argv[1], Path(tmp))
    for _ in range(200):
        call()
    for _ in range(int(sys.argv[2])):
        call()
"""


def instructions(name: str, calls: int) -> int:
    """User-space instructions of one run of ``calls`` calls, counted by callgrind."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
         RUNNER.format(here=str(Path(__file__).resolve().parent)), name, str(calls)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{proc.stderr[-500:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions with valgrind callgrind (N vs 2N calls) instead of time",
    )
    args = parser.parse_args()
    base_name = "coinguard, no observer"
    if args.instructions:
        n = args.calls
        count = {name: (instructions(name, 2 * n) - instructions(name, n)) / n for name in NAMES}
        print(f"instructions per call (callgrind, {n} vs {2 * n} calls)")
        for name, value in count.items():
            print(f"{name:<28} {value:>10,.0f}   {value / count[base_name]:5.2f}x")
        return
    with tempfile.TemporaryDirectory() as tmp:
        variants = {name: build(name, Path(tmp)) for name in NAMES}
        for call in variants.values():
            _time(call, 300)  # warm-up
        best = {name: float("inf") for name in variants}
        for _ in range(args.rounds):
            for name, call in variants.items():
                best[name] = min(best[name], _time(call, args.calls))
    base = best[base_name]
    print(f"calls per round: {args.calls}, rounds: {args.rounds} (best round reported)")
    for name, seconds in best.items():
        print(f"{name:<28} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
