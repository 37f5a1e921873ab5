"""Sans-I/O rate limiting: one sliding log (or calendar counter) per window, per account."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ._config import Window

__all__ = ["AccountLimiter", "Decision", "WindowUsage"]


@dataclass(frozen=True)
class WindowUsage:
    """How full one window is at a moment; ``reset`` is seconds until room next frees up."""

    window: Window
    used: int
    remaining: int
    reset: float


@dataclass(frozen=True)
class Decision:
    """The outcome of asking for ``cost`` units: admitted, or how long until it would be.

    ``retry_after`` is ``math.inf`` when the cost exceeds a window's whole limit.
    """

    admitted: bool
    retry_after: float
    usage: tuple[WindowUsage, ...]


class _Rolling:
    """Sliding log: admitted (arrival, cost) pairs inside ``(now - seconds, now]``."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._log: deque[tuple[float, int]] = deque()
        self._used = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window.seconds
        while self._log and self._log[0][0] <= horizon:
            self._used -= self._log.popleft()[1]

    def wait_for(self, cost: int, now: float) -> float:
        self._expire(now)
        excess = self._used + cost - self.window.limit
        if excess <= 0:
            return 0.0
        if cost > self.window.limit:
            return math.inf
        for arrival, spent in self._log:
            excess -= spent
            if excess <= 0:
                return arrival + self.window.seconds - now
        return math.inf  # unreachable: the log holds all of `used`

    def add(self, cost: int, now: float) -> None:
        if cost:
            self._log.append((now, cost))
            self._used += cost

    def usage(self, now: float) -> WindowUsage:
        self._expire(now)
        reset = self._log[0][0] + self.window.seconds - now if self._log else 0.0
        remaining = max(0, self.window.limit - self._used)
        return WindowUsage(self.window, self._used, remaining, reset)


class _Calendar:
    """Counter for a window aligned to the clock (a calendar minute, a UTC month)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._bucket = (-math.inf, -math.inf)
        self._used = 0

    def _roll(self, now: float) -> None:
        if not self._bucket[0] <= now < self._bucket[1]:
            self._bucket = self.window.bucket(now)
            self._used = 0

    def wait_for(self, cost: int, now: float) -> float:
        self._roll(now)
        if self._used + cost <= self.window.limit:
            return 0.0
        if cost > self.window.limit:
            return math.inf
        return self._bucket[1] - now

    def add(self, cost: int, now: float) -> None:
        self._roll(now)
        self._used += cost

    def usage(self, now: float) -> WindowUsage:
        self._roll(now)
        remaining = max(0, self.window.limit - self._used)
        return WindowUsage(self.window, self._used, remaining, self._bucket[1] - now)


class AccountLimiter:
    """All windows of one account; admits a request only if every window has room.

    Not thread-safe: the caller holds the lock. ``now`` must not go backwards.

    >>> lim = AccountLimiter((Window(2, 1.0),))
    >>> [lim.take(1, 100.0).admitted for _ in range(3)]
    [True, True, False]
    >>> lim.take(1, 100.5).retry_after
    0.5
    """

    def __init__(self, windows: Sequence[Window]) -> None:
        self._windows = [_Calendar(w) if w.calendar else _Rolling(w) for w in windows]

    def take(self, cost: int, now: float) -> Decision:
        """Admit and record ``cost`` units at ``now``, or refuse with the exact wait."""
        wait = max((w.wait_for(cost, now) for w in self._windows), default=0.0)
        if wait > 0:
            return Decision(False, wait, self.usage(now))
        for w in self._windows:
            w.add(cost, now)
        return Decision(True, 0.0, self.usage(now))

    def usage(self, now: float) -> tuple[WindowUsage, ...]:
        """The state of every window at ``now``, without taking anything."""
        return tuple(w.usage(now) for w in self._windows)
