"""Rolling windows: what the algorithm asks of one (:class:`Rolling`), and the in-memory log
that answers it (:class:`RollingLog`)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["Rolling", "RollingLog"]


def _after(base: float, length: float) -> float:
    """``base + length``, nudged up so that ``result - length >= base`` also holds in floats."""
    x = base + length
    while x - length < base:
        # the same arithmetic as the Lua script, so both stores agree to the last bit
        x += abs(x) * 2.220446049250313e-16
    return x


class Rolling:
    """What :class:`KeyState` asks of a rolling window, wherever its entries live.

    :class:`RollingLog` keeps them in memory; the SQLite store keeps them in a table with a
    running sum per entry, so each question is an index lookup (``_table.TableLog``). The
    algorithm that asks them is :class:`KeyState`'s, shared by both.
    """

    __slots__ = ()
    length: float

    def prune(self, now: float) -> None:
        """Forget entries that no longer count at ``now`` or later."""
        raise NotImplementedError

    def used(self) -> int:
        """Cost of all live entries, including ones reserved for the future."""
        raise NotImplementedError

    def earliest(self, t: float, cost: int, limit: int) -> float:
        """The earliest time ``>= t`` at which ``cost`` more fits under ``limit``."""
        raise NotImplementedError

    def commit(self, t: float, cost: int) -> None:
        """Record an admission at ``t``, which is not before any entry in the log."""
        raise NotImplementedError

    def add(self, t: float, cost: int) -> None:
        """Record cost spent at ``t`` (possibly in the past): server sync and restored logs."""
        raise NotImplementedError

    def remove(self, t: float, cost: int) -> bool:
        """Take out one live entry admitted at ``t`` for ``cost``; False if there is none."""
        raise NotImplementedError

    def count_at(self, x: float) -> int:
        """Cost of the entries that count at instant ``x``."""
        raise NotImplementedError

    def earliest_at(self, x: float, cost: int, limit: int) -> float:
        """The earliest time ``>= x`` at which ``cost`` more fits among the entries counting
        then."""
        raise NotImplementedError

    def used_until(self, now: float) -> int:
        """Cost of live entries admitted at or before ``now``."""
        raise NotImplementedError

    def oldest(self) -> float | None:
        """Time of the oldest live entry."""
        raise NotImplementedError

    def newest(self) -> float | None:
        """Time of the newest live entry."""
        raise NotImplementedError

    def entries(self) -> list[tuple[float, int]]:
        """The live entries as ``(time, cost)``."""
        raise NotImplementedError


class RollingLog(Rolling):
    """The admissions still counting in one rolling window, oldest first.

    A list with a moving head (a ring buffer compacted in bulk) plus running cumulative costs,
    so pruning and the earliest-time search are O(1) amortised and O(log n).
    """

    __slots__ = ("base", "cum", "cums", "head", "length", "times")

    def __init__(self, length: float) -> None:
        self.length = length
        self.times: list[float] = []
        self.cums: list[int] = []
        self.head = 0
        self.base = 0  # cumulative cost of everything before ``head``
        self.cum = 0  # cumulative cost of everything committed

    def prune(self, now: float) -> None:
        """Forget entries that no longer count at ``now`` or later."""
        times, h, n, length = self.times, self.head, len(self.times), self.length
        if h == n or times[h] + length > now:
            return
        while h < n and times[h] + length <= now:
            h += 1
        self.base = self.cums[h - 1]
        if h > 64 and 2 * h > n:
            del times[:h], self.cums[:h]
            h = 0
        self.head = h

    def used(self) -> int:
        """Cost of all live entries, including ones reserved for the future."""
        return self.cum - self.base

    def earliest(self, t: float, cost: int, limit: int) -> float:
        """The earliest time ``>= t`` at which ``cost`` more fits under ``limit``."""
        excess = self.cum - self.base + cost - limit
        if excess <= 0:
            return t
        j = bisect_left(self.cums, self.base + excess, lo=self.head)
        x = _after(self.times[j], self.length)
        return x if x > t else t

    def commit(self, t: float, cost: int) -> None:
        """Record an admission at ``t``, which is not before any entry in the log."""
        self.cum += cost
        self.times.append(t)
        self.cums.append(self.cum)

    def add(self, t: float, cost: int) -> None:
        """Record cost spent at ``t`` (possibly in the past): server sync and restored logs."""
        i = bisect_right(self.times, t, lo=self.head)
        prev = self.cums[i - 1] if i > self.head else self.base
        self.times.insert(i, t)
        self.cums.insert(i, prev + cost)
        for k in range(i + 1, len(self.cums)):
            self.cums[k] += cost
        self.cum += cost

    def remove(self, t: float, cost: int) -> bool:
        """Take out one live entry admitted at ``t`` for ``cost``; False if there is none."""
        times, cums, head = self.times, self.cums, self.head
        i = bisect_left(times, t, lo=head)
        while i < len(times) and times[i] == t:
            if cums[i] - (cums[i - 1] if i > head else self.base) == cost:
                del times[i], cums[i]
                for k in range(i, len(cums)):
                    cums[k] -= cost
                self.cum -= cost
                return True
            i += 1
        return False

    def _first_counting(self, x: float) -> int:
        """Index of the oldest entry still counting at instant ``x``."""
        times, length, head = self.times, self.length, self.head
        i = bisect_right(times, x - length, lo=head)
        while i > head and times[i - 1] + length > x:
            i -= 1
        while i < len(times) and times[i] + length <= x:
            i += 1
        return i

    def count_at(self, x: float) -> int:
        """Cost of the entries that count at instant ``x``: admitted at or before it, and
        less than a window before it."""
        i = self._first_counting(x)
        k = bisect_right(self.times, x, lo=self.head)
        if k <= i:
            return 0
        return self.cums[k - 1] - (self.cums[i - 1] if i > self.head else self.base)

    def earliest_at(self, x: float, cost: int, limit: int) -> float:
        """The earliest time ``>= x`` at which ``cost`` more fits among the entries counting
        then (entries admitted after that time are not looked at: they re-check themselves)."""
        while True:
            excess = self.count_at(x) + cost - limit
            if excess <= 0:
                return x
            i = self._first_counting(x)
            prev = self.cums[i - 1] if i > self.head else self.base
            j = bisect_left(self.cums, prev + excess, lo=i)
            x = _after(self.times[j], self.length)

    def used_until(self, now: float) -> int:
        """Cost of live entries admitted at or before ``now`` (the server may have seen them)."""
        k = bisect_right(self.times, now, lo=self.head)
        return (self.cums[k - 1] - self.base) if k > self.head else 0

    def oldest(self) -> float | None:
        """Time of the oldest live entry."""
        return self.times[self.head] if self.head < len(self.times) else None

    def newest(self) -> float | None:
        """Time of the newest live entry."""
        return self.times[-1] if self.head < len(self.times) else None

    def entries(self) -> list[tuple[float, int]]:
        """The live entries as ``(time, cost)``."""
        out, prev = [], self.base
        for k in range(self.head, len(self.times)):
            out.append((self.times[k], self.cums[k] - prev))
            prev = self.cums[k]
        return out
