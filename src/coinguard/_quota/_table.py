"""A rolling window kept in a SQLite table, each question one index lookup."""

from __future__ import annotations

import math
import sqlite3

from ._rolling import Rolling, _after

__all__ = ["TABLE_SCHEMA", "TableLog"]

TABLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_roll (key TEXT NOT NULL, win TEXT NOT NULL, t REAL NOT NULL,
    cost INTEGER NOT NULL, cum INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS quota_roll_t ON quota_roll (key, win, t, cum);
CREATE INDEX IF NOT EXISTS quota_roll_cum ON quota_roll (key, win, cum);
"""

# TableLog's questions, each one index lookup (?1 key, ?2 window).
_ROW = "SELECT t, cost, cum FROM quota_roll WHERE key = ?1 AND win = ?2"
_FIRST_AFTER = _ROW + " AND t > ?3 AND t + ?4 > ?5 ORDER BY t, cum LIMIT 1"
_LAST_UPTO = _ROW + " AND t <= ?3 ORDER BY t DESC, cum DESC LIMIT 1"
_LAST = _ROW + " ORDER BY cum DESC LIMIT 1"
_FIRST = _ROW + " ORDER BY cum LIMIT 1"
_CUM_AT_LEAST = _ROW + " AND cum >= ?3 ORDER BY cum LIMIT 1"
_SHIFT = "UPDATE quota_roll SET cum = cum + ?3 WHERE key = ?1 AND win = ?2 AND cum > ?4"
_INSERT = "INSERT INTO quota_roll VALUES (?1, ?2, ?3, ?4, ?5)"
_FIND = (
    "SELECT rowid, cum FROM quota_roll WHERE key = ?1 AND win = ?2 AND t = ?3 AND cost = ?4"
    " AND t + ?5 > ?6 ORDER BY cum LIMIT 1"
)
_EXPIRE = "DELETE FROM quota_roll WHERE key = ?1 AND win = ?2 AND t < ?3"
_LIVE = _ROW + " AND t > ?3 AND t + ?4 > ?5 ORDER BY t, cum"

Row = tuple[float, int, int]  # (t, cost, cum)


def _below(x: float) -> float:
    """A bound a hair under ``x`` (a threshold less a window's length): every ``t`` whose
    ``t + length`` passes the threshold lies above it however floats round. The index narrows
    by it; the exact test (``t + length > threshold``) runs on the rows at the edge."""
    return x - (abs(x) * 1e-12 + 1e-12)


class TableLog(Rolling):
    """A rolling window whose entries live in ``quota_roll``, asked through its indexes.

    Each row carries ``cum``, the running sum of cost up to it in time order, so the cost
    between two entries is a difference of two rows and every question of the algorithm is
    one or two index lookups, whatever the number of live entries. An entry added before
    others (a server sync, a late answer, a re-admission) shifts the sums of the entries
    after it: the calls reserved ahead, a few. Entries that stopped counting are deleted
    a second later, in index order. Used inside one write transaction of the store.
    """

    __slots__ = ("_conn", "_key", "_win", "floor", "length")

    def __init__(
        self, conn: sqlite3.Connection, key_id: str, win: str, length: float, floor: float
    ) -> None:
        self._conn = conn
        self._key = key_id
        self._win = win
        self.length = length
        self.floor = floor  # entries with t + length <= floor no longer count

    def _one(self, sql: str, *args: float | int) -> Row | None:
        row = self._conn.execute(sql, (self._key, self._win, *args)).fetchone()
        return None if row is None else (float(row[0]), int(row[1]), int(row[2]))

    def _first_counting(self, x: float) -> Row | None:
        """The oldest live entry still counting at ``x``."""
        x = max(x, self.floor)
        return self._one(_FIRST_AFTER, _below(x - self.length), self.length, x)

    def prune(self, now: float) -> None:
        """Forget entries that no longer count at ``now`` or later."""
        if now > self.floor:
            self.floor = now

    def _used(self) -> tuple[int, int]:
        """``(cost of the live entries, running sum before the first of them)``."""
        first = self._first_counting(self.floor)
        if first is None:
            return 0, 0
        last = self._one(_LAST)
        base = first[2] - first[1]
        return (last[2] if last is not None else base) - base, base

    def used(self) -> int:
        """Cost of all live entries, including ones reserved for the future."""
        return self._used()[0]

    def earliest(self, t: float, cost: int, limit: int) -> float:
        """The earliest time ``>= t`` at which ``cost`` more fits under ``limit``."""
        used, base = self._used()
        excess = used + cost - limit
        if excess <= 0:
            return t
        row = self._one(_CUM_AT_LEAST, base + excess)
        if row is None:  # more than the limit on its own: it never fits
            return math.inf
        x = _after(row[0], self.length)
        return x if x > t else t

    def commit(self, t: float, cost: int) -> None:
        """Record an admission at ``t`` (an insert anywhere costs the same here)."""
        self.add(t, cost)

    def add(self, t: float, cost: int) -> None:
        """Record cost spent at ``t``, after every entry at or before ``t``."""
        prev = self._one(_LAST_UPTO, t)
        if prev is not None:
            before = prev[2]
        else:
            first = self._one(_FIRST)
            before = 0 if first is None else first[2] - first[1]
        conn, key, win = self._conn, self._key, self._win
        conn.execute(_SHIFT, (key, win, cost, before))
        conn.execute(_INSERT, (key, win, t, cost, before + cost))
        conn.execute(_EXPIRE, (key, win, self.floor - self.length - 1.0))

    def remove(self, t: float, cost: int) -> bool:
        """Take out one live entry admitted at ``t`` for ``cost``; False if there is none."""
        conn, key, win = self._conn, self._key, self._win
        row = conn.execute(_FIND, (key, win, t, cost, self.length, self.floor)).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM quota_roll WHERE rowid = ?", (row[0],))
        conn.execute(_SHIFT, (key, win, -cost, int(row[1])))
        return True

    def count_at(self, x: float) -> int:
        """Cost of the entries that count at instant ``x``: admitted at or before it, and
        less than a window before it."""
        first = self._first_counting(x)
        if first is None:
            return 0
        last = self._one(_LAST_UPTO, x)
        if last is None or last[2] < first[2]:
            return 0
        return last[2] - (first[2] - first[1])

    def earliest_at(self, x: float, cost: int, limit: int) -> float:
        """The earliest time ``>= x`` at which ``cost`` more fits among the entries counting
        then (entries admitted after that time are not looked at: they re-check themselves)."""
        while True:
            excess = self.count_at(x) + cost - limit
            if excess <= 0:
                return x
            first = self._first_counting(x)
            if first is None:  # more than the limit on its own
                return math.inf
            row = self._one(_CUM_AT_LEAST, first[2] - first[1] + excess)
            if row is None:
                return math.inf
            x = _after(row[0], self.length)

    def used_until(self, now: float) -> int:
        """Cost of live entries admitted at or before ``now`` (the server may have seen them)."""
        first = self._first_counting(self.floor)
        last = self._one(_LAST_UPTO, now)
        if first is None or last is None or last[2] < first[2]:
            return 0
        return last[2] - (first[2] - first[1])

    def oldest(self) -> float | None:
        """Time of the oldest live entry."""
        first = self._first_counting(self.floor)
        return None if first is None else first[0]

    def newest(self) -> float | None:
        """Time of the newest live entry."""
        last = self._one(_LAST)
        return None if last is None or last[0] + self.length <= self.floor else last[0]

    def entries(self) -> list[tuple[float, int]]:
        """The live entries as ``(time, cost)``."""
        args = (self._key, self._win, _below(self.floor - self.length), self.length, self.floor)
        return [(float(t), int(cost)) for t, cost, _ in self._conn.execute(_LIVE, args)]
