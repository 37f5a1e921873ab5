"""Per-request overhead of coinguard vs raw httpx, in CPU instructions (valgrind callgrind).

Wall-clock ratios on a shared machine swing by 10-20 % between runs; instruction counts do not.
Each variant of benchmarks/client_overhead.py runs under callgrind twice, with N and 2N calls
after a warm-up; the difference divided by N is the instructions per call, free of start-up.

    python benchmarks/client_instructions.py [--calls 1000]
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
from client_overhead import coinguard_client, raw_httpx
make = {{"raw httpx": raw_httpx, "coinguard, no quota": lambda: coinguard_client(False),
        "coinguard, 2-window quota": lambda: coinguard_client(True)}}[sys.argv[1]]
call = make()
for _ in range(200):
    call()
for _ in range(int(sys.argv[2])):
    call()
"""


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
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    n = args.calls
    per_call = {}
    for variant in ("raw httpx", "coinguard, no quota", "coinguard, 2-window quota"):
        per_call[variant] = (instructions(variant, 2 * n) - instructions(variant, n)) / n
    base = per_call["raw httpx"]
    print(f"instructions per call (callgrind, {n} vs {2 * n} calls)")
    for variant, count in per_call.items():
        print(f"{variant:<28} {count:>10,.0f}   {count / base:5.2f}x")


if __name__ == "__main__":
    main()
