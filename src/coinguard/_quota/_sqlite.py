"""SQLite quota store: processes on one machine sharing a file, and the persistence journal."""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

if sys.platform != "win32":
    import fcntl
else:  # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None

from .._exceptions import QuotaExceededError
from ._counter import DecayingCounter, admit
from ._log import CalendarCounter, KeyState, Meta, Rolling, Snapshot, Sync
from ._policy import WindowSpec
from ._table import TABLE_SCHEMA, TableLog

__all__ = ["SQLiteStore"]

_OPEN_JOURNALS: weakref.WeakSet[Journal] = weakref.WeakSet()
_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not use its parent's SQLite connection, turnstile or locks (they
    are the parent's), nor spend or give back the parent's journal lease (the parent counts
    it): each gets its own, taken afresh on the child's first call."""
    for store in list(_STORES):
        with contextlib.suppress(Exception):
            store._reopen()
    for journal in list(_OPEN_JOURNALS):
        journal._forget_lease()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_journals() -> None:  # a clean exit leaves exact counts, not whole leases
    for journal in list(_OPEN_JOURNALS):
        with contextlib.suppress(Exception):
            journal.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_meta (
    key TEXT PRIMARY KEY, last REAL NOT NULL, last_why TEXT NOT NULL,
    blocked REAL NOT NULL, blocked_why TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quota_count (key TEXT NOT NULL, win TEXT NOT NULL,
    wid INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (key, win, wid));
CREATE TABLE IF NOT EXISTS quota_clock (
    key TEXT PRIMARY KEY, drift REAL NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quota_nonce (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quota_counter (key TEXT PRIMARY KEY, tat REAL NOT NULL);
"""

_NONCE = (
    "INSERT INTO quota_nonce VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
    " value = max(value + 1, excluded.value) RETURNING value"
)

_COUNTER = (
    "INSERT INTO quota_counter VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
    " tat = max(tat, excluded.tat)"
)

_STALE = 0.001  # a wait for the write lock shorter than this is not worth a clock correction

# One query reads what a decision needs up front: meta, timeline, slot counters (a handful of
# rows whatever the load). Rolling entries stay in the table: ``TableLog`` asks the index.
_LOAD = """
SELECT 'c', win, wid, count, '' FROM quota_count WHERE key = ?1
UNION ALL SELECT 'm', last_why, last, blocked, blocked_why FROM quota_meta WHERE key = ?1
UNION ALL SELECT 's', '', drift, seen, '' FROM quota_clock WHERE key = ?1
ORDER BY 1, 3
"""
# Files written before rolling entries carried their running sum: number them once.
_MIGRATE_ROWS = """
INSERT INTO quota_roll SELECT key, win, t, cost,
    SUM(cost) OVER (PARTITION BY key, win ORDER BY t, rowid) FROM quota_log
"""

_SLOT = (
    "INSERT INTO quota_count VALUES (?, ?, ?, ?) ON CONFLICT (key, win, wid)"
    " DO UPDATE SET count = excluded.count"
)
_OLD_SLOTS = "DELETE FROM quota_count WHERE key = ? AND win = ? AND wid < ?"
_DROP_SLOT = "DELETE FROM quota_count WHERE key = ? AND win = ? AND wid = ?"
_META = (
    "INSERT INTO quota_meta VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " last = excluded.last, last_why = excluded.last_why, blocked = excluded.blocked,"
    " blocked_why = excluded.blocked_why"
)
# A key's timeline: only the transaction that saw a step back raises drift, and seen only grows.
_CLOCK = """
INSERT INTO quota_clock VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET
    drift = max(drift, excluded.drift), seen = max(seen, excluded.seen)
"""


def _turnstile(path: str) -> int | None:
    """A lock file beside the database whose ``flock`` orders the writers of every process;
    None where there is none (``:memory:``, or a system without ``fcntl``)."""
    if path == ":memory:" or fcntl is None:
        return None
    return os.open(os.path.expanduser(path) + "-turn", os.O_RDWR | os.O_CREAT, 0o600)


class SQLiteStore:
    """Quota state in a SQLite file shared by the processes of one machine.

    WAL journal, ``BEGIN IMMEDIATE`` transactions (one writer decides at a time) and a busy
    timeout. Times are wall-clock epoch seconds, which all processes on a machine share.

    >>> store = SQLiteStore(":memory:")
    >>> store.blocking
    True
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.waited = 0.0  # how long the current transaction waited for the write lock
        self._timeout = timeout
        self._turn = _turnstile(self.path)
        self._conn = self._connect()
        _STORES.add(self)
        with self._lock:
            self._wal(timeout)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA + TABLE_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        old = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quota_log'"
        if self._conn.execute(old).fetchone() is None:
            return
        with self.transaction() as conn:
            if conn.execute(old).fetchone() is not None:  # another process may have done it
                conn.execute(_MIGRATE_ROWS)
                conn.execute("DROP TABLE quota_log")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            os.path.expanduser(self.path),
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    def _reopen(self) -> None:
        """In a forked child: a connection, turnstile and lock of its own (the inherited
        ones are left alone: closing them could disturb the parent's)."""
        self._lock = threading.Lock()
        self._turn = _turnstile(self.path)
        self._conn = self._connect()

    def _wal(self, timeout: float) -> None:
        # Switching a new file to WAL does not wait on the busy handler: processes opening the
        # same new file at once get "database is locked" here, so retry until one has done it.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @property
    def blocking(self) -> bool:
        """SQLite calls do disk I/O and may wait for another process's transaction."""
        return True

    def bind(self, key_id: str, specs: tuple[WindowSpec, ...]) -> SQLiteBucket:
        """The bucket of ``key_id`` with these windows."""
        return SQLiteBucket(self, key_id, specs)

    def next_nonce(self, key_id: str, floor: int) -> int:
        """The next nonce of ``key_id``: above every nonce this file gave out, and at least
        ``floor``. One statement in a write transaction: processes never draw the same one.

        >>> store = SQLiteStore(":memory:")
        >>> store.next_nonce("k", 100), store.next_nonce("k", 50)
        (100, 101)
        """
        with self.transaction() as conn:
            row = conn.execute(_NONCE, (key_id, floor)).fetchone()
        return int(row[0])

    def counter_take(
        self, key_id: str, counter: DecayingCounter, cost: int, now: float, max_wait: float
    ) -> tuple[float, float]:
        """Admit ``cost`` on the decaying counter of ``key_id``, in one write transaction."""
        with self.transaction() as conn:
            now = self.fresh(now)
            at, tat = admit(self._tat(conn, key_id), counter.ceiling, counter.rate, cost, now,
                            max_wait)  # fmt: skip
            conn.execute(_COUNTER, (key_id, tat))
        return at, now

    def counter_fill(self, key_id: str, counter: DecayingCounter, now: float) -> None:
        """Count the counter of ``key_id`` full from ``now`` (the provider said it is)."""
        with self.transaction() as conn:
            conn.execute(_COUNTER, (key_id, now + counter.limit / counter.rate))

    def counter_level(self, key_id: str, counter: DecayingCounter, now: float) -> float:
        """What the counter of ``key_id`` holds at ``now``."""
        with self._lock:
            return max(0.0, self._tat(self._conn, key_id) - now) * counter.rate

    @staticmethod
    def _tat(conn: sqlite3.Connection, key_id: str) -> float:
        row = conn.execute("SELECT tat FROM quota_counter WHERE key = ?", (key_id,)).fetchone()
        return float(row[0]) if row is not None else 0.0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
            if self._turn is not None:
                os.close(self._turn)
                self._turn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so two deciders never interleave."""
        started = time.monotonic()  # before our own lock too: waiting for it is waiting
        with self._lock:
            turn = self._turn
            if turn is not None:
                # Wait for our turn in the kernel, woken the moment the holder is done: SQLite's
                # own busy handler sleeps up to 100 ms between tries and let a process starve
                # for seconds behind three others (benchmarks/sqlite_contention.py).
                fcntl.flock(turn, fcntl.LOCK_EX)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self.waited = time.monotonic() - started
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            finally:
                if turn is not None:
                    fcntl.flock(turn, fcntl.LOCK_UN)

    def fresh(self, now: float) -> float:
        """``now``, read before the current transaction, moved on by the time it waited for
        the lock (inside a transaction). Another process's decision made meanwhile must not
        look like our clock stepping back, and a wait counts as time passed."""
        return now + self.waited if self.waited > _STALE else now

    def state(self, key_id: str, specs: tuple[WindowSpec, ...], now: float) -> KeyState:
        """The state of ``key_id`` at ``now``: meta, timeline and slot counters read in one
        query, rolling windows left in the table (:class:`TableLog`). Call it holding the
        store's lock, inside a transaction to change anything."""
        meta = Meta()
        clock = (0.0, 0.0)
        counts: dict[str, dict[int, int]] = {}
        for kind, win, a, b, why in self._conn.execute(_LOAD, (key_id,)).fetchall():
            if kind == "m":
                meta.last, meta.last_why = float(a), str(win)
                meta.blocked, meta.blocked_why = float(b), str(why)
            elif kind == "s":
                clock = (float(a), float(b))
            else:
                counts.setdefault(str(win), {})[int(a)] = int(b)
        logs: list[TableLog | CalendarCounter] = []
        for spec in specs:
            if spec.kind == "r":
                logs.append(TableLog(self._conn, key_id, spec.sig, spec.length, -math.inf))
            else:
                cal = CalendarCounter(spec.length, spec.margin, month=spec.kind == "m")
                cal.counts.update(counts.get(spec.sig, {}))
                logs.append(cal)
        state = KeyState(specs, tuple(logs), meta)
        state.set_drift(*clock)
        for log in logs:
            if not isinstance(log, CalendarCounter):  # slots go where the algorithm drops them
                log.prune(now + clock[0])
        return state

    def save(self, key_id: str, state: KeyState, before: _Saved) -> None:
        """Write what an operation changed beside its rolling entries (those it wrote as it
        went): slot counters, meta, timeline. Inside the operation's transaction."""
        conn = self._conn
        for spec, log, counts in zip(state.specs, state.logs, before.counts, strict=True):
            if not isinstance(log, CalendarCounter):
                continue
            for wid, count in log.counts.items():
                if counts.get(wid) != count:
                    conn.execute(_SLOT, (key_id, spec.sig, wid, count))
            for wid in counts.keys() - log.counts.keys():  # slots the algorithm let go
                conn.execute(_DROP_SLOT, (key_id, spec.sig, wid))
        meta = state.meta
        if (meta.last, meta.last_why, meta.blocked, meta.blocked_why) != before.meta:
            conn.execute(_META, (key_id, meta.last, meta.last_why, meta.blocked, meta.blocked_why))
        if (meta.drift, meta.seen) != before.clock:
            conn.execute(_CLOCK, (key_id, meta.drift, meta.seen))

    def write_added(
        self, key_id: str, state: KeyState, added: list[tuple[int, float, int]], now: float
    ) -> None:
        """Add cost to the file as a server sync did (inside a transaction; the journal)."""
        for i, t, cost in added:
            self.write_entry(key_id, state.specs[i], state.logs[i], t, cost, now, commit=False)

    def write_removal(self, key_id: str, state: KeyState, t: float, cost: int) -> None:
        """Take back an admission of ``cost`` at ``t`` in every window (inside a transaction;
        the journal)."""
        for spec, log in zip(state.specs, state.logs, strict=True):
            if not isinstance(log, CalendarCounter):
                TableLog(self._conn, key_id, spec.sig, spec.length, -math.inf).remove(t, cost)
                continue
            for wid in log.ids(t):
                self._conn.execute(
                    "UPDATE quota_count SET count = count - ? WHERE key = ? AND win = ?"
                    " AND wid = ?",
                    (cost, key_id, spec.sig, wid),
                )

    def write_entry(
        self,
        key_id: str,
        spec: WindowSpec,
        log: Rolling | CalendarCounter,
        t: float,
        cost: int,
        now: float,
        *,
        commit: bool,
    ) -> None:
        """Add ``cost`` at ``t`` to the file's window (inside a transaction; the journal,
        whose own state is not the file's, so slot counts are added to)."""
        conn = self._conn
        if not isinstance(log, CalendarCounter):
            TableLog(conn, key_id, spec.sig, spec.length, now).add(t, cost)
            return
        for wid in log.ids(t) if commit else (log.wid(t),):
            conn.execute(
                "INSERT INTO quota_count VALUES (?, ?, ?, ?) ON CONFLICT (key, win, wid)"
                " DO UPDATE SET count = count + excluded.count",
                (key_id, spec.sig, wid, cost),
            )
        conn.execute(_OLD_SLOTS, (key_id, spec.sig, log.wid(now) - 1))


class _Saved:
    """What an operation found, to write back only what it changed."""

    __slots__ = ("clock", "counts", "meta")

    def __init__(self, state: KeyState) -> None:
        meta = state.meta
        self.meta = (meta.last, meta.last_why, meta.blocked, meta.blocked_why)
        self.clock = (meta.drift, meta.seen)
        self.counts = [
            dict(log.counts) if isinstance(log, CalendarCounter) else {} for log in state.logs
        ]


T = TypeVar("T")


class SQLiteBucket:
    """One key's windows in a :class:`SQLiteStore`: each operation is one write transaction
    running :class:`KeyState`'s algorithm on the file's state."""

    def __init__(self, store: SQLiteStore, key_id: str, specs: tuple[WindowSpec, ...]) -> None:
        self._store = store
        self._key = key_id
        self._specs = specs

    def _run(self, now: float, op: Callable[[KeyState, float], T]) -> tuple[T, float]:
        """Run ``op(state, now)`` in one transaction; return its result and the key's time.

        A refusal (:class:`QuotaExceededError`) still writes what the operation changed (a
        re-checked call that will not go gives its entry back) before it is raised."""
        store = self._store
        refused: QuotaExceededError | None = None
        with store.transaction():
            now = store.fresh(now)
            state = store.state(self._key, self._specs, now)
            before = _Saved(state)
            try:
                result = op(state, now)
            except QuotaExceededError as exc:
                refused = exc
            store.save(self._key, state, before)
        if refused is not None:
            raise refused
        return result, now + state.meta.drift

    def reserve(self, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Commit ``cost`` at the earliest admissible time; return ``(at, now)``."""
        return self._run(now, lambda state, now: state.reserve_reference(now, cost, max_wait))

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Re-check a reservation as the call leaves; re-admit it if it no longer fits."""
        return self._run(now, lambda state, now: state.settle(at, cost, now, max_wait))

    def release(self, at: float, cost: int, now: float) -> None:
        """Give back a reservation whose call was never sent."""

        def release(state: KeyState, now: float) -> None:
            state.clock(now)  # a reading like any other, as the Redis script takes it
            state.release(at, cost)

        self._run(now, release)

    def correct(self, at: float, cost: int, answered: float, now: float, lead: float = 0.0) -> None:
        """Recount a call answered late as arriving as late as its answer allows."""
        self._run(now, lambda state, now: state.correct(at, cost, answered, now, lead))

    def sync(self, sync: Sync, now: float) -> None:
        """Apply a server observation."""
        self._run(now, lambda state, now: state.sync(sync, now))

    def snapshot(self, now: float) -> Snapshot:
        """Read every window. A reading of the clock like any other (as in the other
        stores): a step back it reveals moves the key's timeline."""
        return self._run(now, lambda state, now: state.snapshot(now))[0]


class Journal:
    """Day and month windows of a memory store, written through to SQLite.

    A restarted process (a new notebook kernel) restores them, so it does not forget that
    9,800 of 10,000 monthly credits are spent.

    Writing every call would cost a SQLite transaction per call (1.6x a raw httpx call, 4x on
    an event loop). Instead the journal takes a *lease*: it records a block of calls at once
    (1 % of the smallest journaled limit, at most 64), then counts calls against it in memory.
    A clean close (or interpreter exit) gives back what is left of the block, so the file then
    holds the exact count; after a crash it holds at most one block more than was used, never
    less. A window of a day or more that rolls (rather than resetting on the calendar) is
    written through call by call: a lease taken now would stop counting before its calls do.
    """

    def __init__(
        self, store: SQLiteStore, key_id: str, specs: tuple[WindowSpec, ...], indices: list[int]
    ) -> None:
        self._store = store
        self._key = key_id
        self._indices = {i: j for j, i in enumerate(indices)}
        sub = tuple(specs[i] for i in indices)
        self._state = KeyState(sub, tuple(KeyState.new_log(s) for s in sub), Meta())
        self._lock = threading.Lock()
        rolls = any(spec.kind == "r" for spec in sub)
        self.block = 1 if rolls else max(1, min(64, *(spec.limit // 100 for spec in sub)))
        self._left = 0  # calls the current lease still covers
        self._lease_at = 0.0
        self._lease_ids: tuple[tuple[int, ...], ...] | None = None
        _OPEN_JOURNALS.add(self)

    @property
    def ready(self) -> bool:
        """True if the next call of cost 1 is covered without I/O (barring a new day)."""
        return self._left > 0

    def restore(self, now: float) -> list[tuple[int, list[tuple[float, int]], dict[int, int]]]:
        """The journaled history: ``(window index, log entries, slot counts)``."""
        store = self._store
        out: list[tuple[int, list[tuple[float, int]], dict[int, int]]] = []
        with store._lock:
            state = store.state(self._key, self._state.specs, now)
            for i, j in self._indices.items():
                log = state.logs[j]
                if isinstance(log, CalendarCounter):
                    out.append((i, [], dict(log.counts)))
                else:
                    out.append((i, log.entries(), {}))
        return out

    def _ids(self, t: float) -> tuple[tuple[int, ...], ...]:
        return tuple(
            log.ids(t) if isinstance(log, CalendarCounter) else () for log in self._state.logs
        )

    def commit(self, t: float, cost: int, now: float) -> None:
        """Journal an admission: counted against the lease, or a new lease is written."""
        with self._lock:
            ids = self._ids(t)
            if ids == self._lease_ids and self._left >= cost:
                self._left -= cost
                return
            take = max(cost, self.block)
            with self._store.transaction():
                self._give_back()
                for spec, log in zip(self._state.specs, self._state.logs, strict=True):
                    self._store.write_entry(self._key, spec, log, t, take, now, commit=True)
            self._lease_at, self._lease_ids, self._left = t, ids, take - cost
            _OPEN_JOURNALS.add(self)  # given back at exit (again, in a forked child)

    def release(self, t: float, cost: int) -> None:
        """Take back a journaled admission whose call was never sent."""
        with self._lock:
            if self._ids(t) == self._lease_ids:
                self._left += cost  # back into the lease: written back at close
                return
            with self._store.transaction():
                self._store.write_removal(self._key, self._state, t, cost)

    def close(self) -> None:
        """Give back what is left of the lease, so the file holds the exact count."""
        with self._lock:
            if self._left:
                with self._store.transaction():
                    self._give_back()
            _OPEN_JOURNALS.discard(self)

    def _forget_lease(self) -> None:
        """In a forked child: the lease is the parent's to spend and give back."""
        self._lock = threading.Lock()
        self._left, self._lease_ids = 0, None
        _OPEN_JOURNALS.discard(self)

    def _give_back(self) -> None:
        if self._left and self._lease_ids is not None:
            self._store.write_removal(self._key, self._state, self._lease_at, self._left)
        self._left, self._lease_ids = 0, None

    def added(self, added: list[tuple[int, float, int]], now: float) -> None:
        """Journal cost added by a server sync."""
        mine = [(self._indices[i], t, c) for i, t, c in added if i in self._indices]
        if mine:
            with self._store.transaction():
                self._store.write_added(self._key, self._state, mine, now)
