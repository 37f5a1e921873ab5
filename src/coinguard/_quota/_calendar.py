"""Calendar windows: costs counted per UTC-aligned slot (a clock minute, a UTC day or month)."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

__all__ = ["CalendarCounter", "month_id", "month_start"]


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def month_id(t: float) -> int:
    """Index of the UTC calendar month containing epoch time ``t`` (``year * 12 + month - 1``)."""
    # floor to the day first: datetime rounds to the microsecond, the Lua script does not
    d = date.fromordinal(_EPOCH_ORDINAL + math.floor(t / 86400))
    return d.year * 12 + d.month - 1


def month_start(mid: int) -> float:
    """Epoch time at which UTC month ``mid`` starts."""
    return datetime(mid // 12, mid % 12 + 1, 1, tzinfo=timezone.utc).timestamp()


class CalendarCounter:
    """Costs counted per calendar slot (slot id -> cost), reset at each boundary.

    A call admitted within ``margin`` of a slot's end also counts in the next slot: it may
    reach the server after the boundary.
    """

    __slots__ = (
        "_hi",
        "_id",
        "_lo",
        "counts",
        "cur",
        "drift",
        "hi",
        "length",
        "lo",
        "margin",
        "month",
    )

    def __init__(self, length: float, margin: float, *, month: bool) -> None:
        self.length = length
        self.margin = margin
        self.month = month
        self.counts: dict[int, int] = {}
        self._lo, self._hi, self._id = 0.0, -1.0, 0
        # The key's timeline runs ``drift`` ahead of the wall clock after the clock stepped
        # back (``KeyState.clock``); slots stay on the wall clock, which is what they are.
        self.drift = 0.0
        # Admissions at key times in [lo, hi) count in slot ``cur`` alone (see ``locate``).
        self.lo, self.hi, self.cur = math.inf, -math.inf, 0

    def set_drift(self, drift: float) -> None:
        """Move the slots' place on the key's timeline (the clock stepped back)."""
        self.drift = drift
        self.lo, self.hi = math.inf, -math.inf

    def locate(self, t: float) -> bool:
        """Make ``cur`` the one slot an admission at ``t`` counts in, and ``[lo, hi)`` the
        key times around ``t`` for which that holds; False if ``t`` counts in two slots."""
        a = self.wid(t)
        if self.wid(t + self.margin) != a:
            return False
        # a millisecond inside the slot's edges: float rounding in ``wid`` cannot disagree there
        self.cur, self.lo = a, self.start(a) + 0.001
        self.hi = self.start(a + 1) - self.margin - 0.001
        return True

    def wid(self, t: float) -> int:
        """The slot id of time ``t`` (on the key's timeline)."""
        t -= self.drift
        if not self.month:
            return math.floor(t / self.length)
        if not self._lo <= t < self._hi:
            self._id = month_id(t)
            self._lo, self._hi = month_start(self._id), month_start(self._id + 1)
        return self._id

    def start(self, wid: int) -> float:
        """Start time of slot ``wid`` (on the key's timeline)."""
        return (month_start(wid) if self.month else wid * self.length) + self.drift

    def ids(self, t: float) -> tuple[int, ...]:
        """Slots an admission at ``t`` counts in."""
        a, b = self.wid(t), self.wid(t + self.margin)
        return (a,) if a == b else (a, b)

    def prune(self, now: float) -> None:
        """Drop slots that ended before ``now``."""
        if len(self.counts) > 2:
            current = self.wid(now)
            for wid in [w for w in self.counts if w < current]:
                del self.counts[wid]

    def used(self, now: float) -> int:
        """Cost counted in the slot containing ``now``."""
        return self.counts.get(self.wid(now), 0)

    def earliest(self, t: float, cost: int, limit: int) -> float:
        """The earliest time ``>= t`` whose slots all have room for ``cost``."""
        counts = self.counts
        while True:
            for wid in self.ids(t):
                if counts.get(wid, 0) + cost > limit:
                    t = self.start(wid + 1)
                    break
            else:
                return t

    def commit(self, t: float, cost: int) -> None:
        """Count an admission at ``t``."""
        for wid in self.ids(t):
            self.counts[wid] = self.counts.get(wid, 0) + cost

    def resets(self, now: float) -> float:
        """When the slot containing ``now`` ends."""
        return self.start(self.wid(now) + 1)
