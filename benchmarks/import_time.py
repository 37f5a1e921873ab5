"""How long ``import coinguard`` takes, as a ratio to ``import httpx``.

Each sample is a fresh interpreter (``python -c``) that imports one thing and exits; an empty
``python -c pass`` in the same round is subtracted, so the figure is the import alone.
Variants are interleaved round by round, so a busy machine slows them alike. Reported: the
median of each, and its ratio to httpx (which coinguard imports anyway).

    python benchmarks/import_time.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "python -c pass": "pass",
    "import httpx": "import httpx",
    "import coinguard": "import coinguard",
    "coinguard.Client": "import coinguard; coinguard.Client",
    "coinguard.Client + models": "import coinguard; coinguard.Client; coinguard.Candle",
}


def sample(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, code in VARIANTS.items():
            times[name].append(sample(code))
    base = statistics.median(times["python -c pass"])
    httpx_ms = statistics.median(times["import httpx"]) - base
    print(f"{args.rounds} rounds; interpreter start {base * 1000:.1f} ms (subtracted)")
    print(f"{'variant':28} {'median ms':>10} {'vs httpx':>9}")
    for name in list(VARIANTS)[1:]:
        ms = statistics.median(times[name]) - base
        print(f"{name:28} {ms * 1000:10.1f} {ms / httpx_ms:8.2f}x")


if __name__ == "__main__":
    main()
