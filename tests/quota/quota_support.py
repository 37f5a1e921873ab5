"""Helpers shared by the quota tests: a fake clock and brute-force exactness checkers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


class FakeClock:
    """Epoch seconds that only move when told to; ``sleep`` advances them."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def max_in_rolling(admissions: Sequence[tuple[float, int]], seconds: float) -> int:
    """The largest total cost in any half-open interval [x, x + seconds)."""
    items = sorted(admissions)
    best = total = lo = 0
    for t, cost in items:
        total += cost
        while items[lo][0] + seconds <= t:
            total -= items[lo][1]
            lo += 1
        best = max(best, total)
    return best


def max_in_slots(admissions: Sequence[tuple[float, int]], seconds: float) -> int:
    """The largest total cost in any clock-aligned slot of ``seconds``."""
    slots: dict[int, int] = defaultdict(int)
    for t, cost in admissions:
        slots[math.floor(t / seconds)] += cost
    return max(slots.values(), default=0)
