"""Per-request cost of a route's own limiters (``Provider.route_quotas``) on Binance calls.

The same unsigned GET over one ``httpx.MockTransport`` (no network), through the Binance
profile with the memory store: with REQUEST_WEIGHT alone (``route_quotas=()``), as shipped
(REQUEST_WEIGHT and RAW_REQUESTS on every ``/api`` call), and a SAPI endpoint as shipped (its
own per-endpoint limiter, nothing on REQUEST_WEIGHT). Every limit is raised far above what the
run sends, so no call waits: the difference is the bookkeeping of the extra limiter.

    python benchmarks/route_quotas.py [--calls 5000] [--rounds 5]
    python benchmarks/route_quotas.py --instructions [--calls 500]

Prints the best per-call time of each variant and its ratio to REQUEST_WEIGHT alone, measured
in the same process, interleaved round by round so machine noise hits every variant alike;
with ``--instructions``, the CPU instructions per call counted by valgrind's callgrind (a run
of N calls against one of 2N, so start-up cancels out), which a busy machine does not skew.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import coinguard
from coinguard import QuotaPolicy, Window
from coinguard.providers import binance

BASE = "https://api.binance.com"
BODY = b'{"symbol": "BTCUSDT", "price": "1.0"}'
BIG = 10**9


def _transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if request.url.path.startswith("/sapi/"):
            headers["x-sapi-used-ip-weight-1m"] = "1"
        else:
            headers["x-mbx-used-weight-1m"] = "1"
        return httpx.Response(200, content=BODY, headers=headers)

    return httpx.MockTransport(handler)


def _profile(route_quotas: tuple[coinguard.RouteQuota, ...]) -> coinguard.Provider:
    weight = binance.QUOTA
    roomy = QuotaPolicy(
        [Window.per_minute(BIG, calendar=True, credits=True)],
        costs=weight.costs,
        ok_costs=weight.ok_costs,
    )
    return dataclasses.replace(binance.PROFILE, quota=roomy, route_quotas=route_quotas)


def _as_shipped() -> tuple[coinguard.RouteQuota, ...]:
    raw = dataclasses.replace(
        binance.RAW_REQUESTS, quota=QuotaPolicy([Window(BIG, 300.0, calendar=True)])
    )
    return (*binance.sapi_quotas(ip_limit=BIG, uid_limit=BIG), raw)


def _client(route_quotas: tuple[coinguard.RouteQuota, ...]) -> coinguard.Client:
    return coinguard.Client(
        provider=_profile(route_quotas),
        read_key="bench-read-key-0123456789",
        read_secret="bench-read-secret-0123456789",
        http_client=httpx.Client(transport=_transport()),
    )


def _call(client: coinguard.Client, path: str) -> Callable[[], object]:
    params = {"symbol": "BTCUSDT"} if path.startswith("/api/") else None
    return lambda: client.get(path, params=params)


def build(name: str) -> Callable[[], object]:
    """The call of one variant (``NAMES``)."""
    if name == NAMES[0]:
        return _call(_client(()), "/api/v3/depth")
    if name == NAMES[1]:
        return _call(_client(_as_shipped()), "/api/v3/depth")
    return _call(_client(_as_shipped()), "/sapi/v1/system/status")


NAMES = ("REQUEST_WEIGHT alone", "+ RAW_REQUESTS (shipped)", "SAPI endpoint (shipped)")

RUNNER = """
import sys
sys.path.insert(0, {here!r})
from route_quotas import build
call = build(sys.argv[1])
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
        env={**os.environ, "COINGUARD_QUOTA_PERSIST": "0"},
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{proc.stderr[-500:]}")
    return int(match.group(1))


def _time(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions with valgrind callgrind (N vs 2N calls) instead of time",
    )
    args = parser.parse_args()
    if args.instructions:
        n = args.calls
        count = {name: (instructions(name, 2 * n) - instructions(name, n)) / n for name in NAMES}
        print(f"instructions per call (callgrind, {n} vs {2 * n} calls)")
        for name, value in count.items():
            print(f"{name:<26} {value:>10,.0f}   {value / count[NAMES[0]]:5.2f}x")
        return
    variants = {name: build(name) for name in NAMES}
    for call in variants.values():
        _time(call, 500)  # warm-up
    best = {name: float("inf") for name in variants}
    for _ in range(args.rounds):
        for name, call in variants.items():
            best[name] = min(best[name], _time(call, args.calls))
    base = best[NAMES[0]]
    print(f"calls per round: {args.calls}, rounds: {args.rounds} (best round reported)")
    for name, seconds in best.items():
        print(f"{name:<26} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
