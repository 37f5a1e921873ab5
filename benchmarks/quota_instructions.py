"""Cost of taking quota in CPU instructions (valgrind callgrind), against other limiters.

Wall-clock nanoseconds on a shared VM swing by 1.5x between runs (even a bare ``with lock:``
does); instruction counts do not. Each limiter of benchmarks/quota_acquire.py runs under
callgrind with N and 2N never-blocking acquires after a warm-up; the difference divided by N is
the instructions per acquire, free of start-up and import costs.

    python benchmarks/quota_instructions.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = """
import sys
sys.path.insert(0, {here!r})
import quota_acquire as qa
run = {{"coinguard, 1 window": qa.coinguard_memory(qa.ONE),
        "coinguard, 3 windows": qa.coinguard_memory(qa.THREE),
        "aiolimiter": qa.aiolimiter_run, "pyrate-limiter": qa.pyrate_run,
        "limits": qa.limits_run}}[sys.argv[1]]
run(int(sys.argv[2]))
"""
VARIANTS = ("coinguard, 1 window", "coinguard, 3 windows", "aiolimiter", "pyrate-limiter", "limits")


def instructions(variant: str, calls: int) -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
         RUNNER.format(here=str(HERE)), variant, str(calls)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{proc.stderr[-500:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    n = args.calls
    per_call = {v: (instructions(v, 2 * n) - instructions(v, n)) / n for v in VARIANTS}
    base = per_call["coinguard, 1 window"]
    print(f"instructions per acquire (callgrind, {n} vs {2 * n} calls)")
    for variant, count in per_call.items():
        print(f"{variant:<22} {count:>8,.0f}   {count / base:5.2f}x coinguard 1 window")


if __name__ == "__main__":
    main()
