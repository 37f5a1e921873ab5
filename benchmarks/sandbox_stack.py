"""Which stack for the sandbox: the same load against five servers, interleaved round by round.

Servers, each in its own subprocess, all started once and kept for the whole run:

* ``sandbox``: the sandbox, ``python -m coinguard._cli sandbox`` (asyncio + h11 when the
  figures in docs/benchmarks.md were taken; the stdlib shell since);
* ``baseline``: the stdlib ``ThreadingHTTPServer`` returning a fixed body
  (``sandbox_throughput.BASELINE``), the denominator of every ratio;
* ``starlette+uvicorn``: Starlette routing under uvicorn (h11), every request through the
  same sans-I/O ``App.handle()`` as the sandbox (``shell_uvicorn.py --starlette``);
* ``uvicorn (bare ASGI)``: the same without Starlette (``shell_uvicorn.py``);

The App-backed servers do the real work per request: key lookup, scope, a quota window (set
high enough never to answer 429), the ledger entry, the price handler. Each round runs the load
generator of ``sandbox_throughput.py`` against every server in turn, the order rotated from
round to round; a round's ratio is a server's requests/s over the baseline's in that round.

Usage::

    python benchmarks/sandbox_stack.py --rounds 5 --seconds 5 --threads 8
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
from pathlib import Path

from sandbox_throughput import BASELINE, Result, _spawn, load

HERE = Path(__file__).resolve().parent
LIMIT = "1000000000/s"


def commands() -> dict[str, list[str]]:
    """Name -> command line of every server measured."""
    py = sys.executable
    cli = [py, "-m", "coinguard._cli", "sandbox", "--port", "0", "--json", "--limit", LIMIT]
    uvicorn_shell = [py, str(HERE / "shell_uvicorn.py"), "--limit", LIMIT]
    return {
        "baseline": [py, "-c", BASELINE],
        "sandbox": cli,
        "starlette+uvicorn": [*uvicorn_shell, "--starlette"],
        "uvicorn (bare ASGI)": uvicorn_shell,
    }


def spread(values: list[float]) -> list[float]:
    """The values sorted (min first, max last), or [nan] when there are none."""
    return sorted(values) or [math.nan]


def show(ratios: list[float]) -> str:
    """``min-max (median)``."""
    return f"{ratios[0]:.2f}-{ratios[-1]:.2f} ({statistics.median(ratios):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--only", action="append", help="measure only these (and the baseline)")
    parser.add_argument("--json", action="store_true", help="print every round as JSON")
    args = parser.parse_args()

    if not (importlib.util.find_spec("uvicorn") and importlib.util.find_spec("starlette")):
        parser.error("needs starlette and uvicorn: pip install starlette uvicorn")
    wanted = {
        name: cmd
        for name, cmd in commands().items()
        if not args.only or name == "baseline" or name in args.only
    }
    servers = {}
    try:
        for name, command in wanted.items():
            servers[name] = _spawn(command)
        names = list(servers)
        rounds: list[dict[str, Result]] = []
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            results = {}
            for name in order:
                proc, info = servers[name]
                results[name] = load(name, info, args, proc.pid)
            rounds.append(results)
            line = "  ".join(
                f"{n} {results[n].rps:.0f}/s x{results[n].rps / results['baseline'].rps:.2f}"
                for n in names
            )
            print(f"round {i + 1}: {line}", file=sys.stderr, flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)

    if args.json:
        print(
            json.dumps(
                [{n: {**r.__dict__, "rps": r.rps} for n, r in rnd.items()} for rnd in rounds]
            )
        )
        return 0
    print(
        f"GET /v2/price, keep-alive, {args.processes} process(es) x {args.threads} threads, "
        f"{args.seconds:g} s per server per round, {args.rounds} interleaved rounds, "
        f"Python {sys.version.split()[0]}"
    )
    print("ratios: min-max over the rounds, median in brackets")
    head = ("server", "req/s vs baseline", "req/s vs sandbox", "CPU/req vs baseline", "CPU us/req")
    print(f"{head[0]:<20} {head[1]:>18} {head[2]:>18} {head[3]:>20} {head[4]:>10} p99 ms errors")
    for name in names:
        rps = spread([r[name].rps / r["baseline"].rps for r in rounds])
        today = spread([r[name].rps / r["sandbox"].rps for r in rounds if "sandbox" in r])
        cpus = [r[name].server_cpu_us or math.nan for r in rounds]
        base = [r["baseline"].server_cpu_us or math.nan for r in rounds]
        cpu = spread([c / b for c, b in zip(cpus, base, strict=True)])
        p99 = max(r[name].p99_ms for r in rounds)
        errors = sum(r[name].errors for r in rounds)
        print(
            f"{name:<20} {show(rps):>18} {show(today):>18} {show(cpu):>20} "
            f"{statistics.median(cpus):>10.0f} {p99:>6.1f} {errors:>6}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
