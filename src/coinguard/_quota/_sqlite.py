"""SQLite quota store: processes on one machine sharing a file, and the persistence journal."""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform != "win32":
    import fcntl
else:  # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None

from .._exceptions import QuotaExceededError
from ._counter import DecayingCounter, admit
from ._log import CalendarCounter, KeyState, Meta, RollingLog, Snapshot, Sync
from ._policy import WindowSpec

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
CREATE TABLE IF NOT EXISTS quota_log (key TEXT NOT NULL, win TEXT NOT NULL, t REAL NOT NULL,
    cost INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS quota_log_kwt ON quota_log (key, win, t);
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

# One query reads everything a decision needs: meta, live log entries, slot counters.
_LOAD = """
SELECT 'c', win, wid, count, '' FROM quota_count WHERE key = ?1
UNION ALL SELECT 'l', win, t, cost, '' FROM quota_log WHERE key = ?1 AND t > ?2
UNION ALL SELECT 'm', last_why, last, blocked, blocked_why FROM quota_meta WHERE key = ?1
UNION ALL SELECT 's', '', drift, seen, '' FROM quota_clock WHERE key = ?1
ORDER BY 1, 3
"""
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
            self._conn.executescript(_SCHEMA)

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

    def load(self, key_id: str, specs: tuple[WindowSpec, ...], now: float) -> KeyState:
        """Build the state of ``key_id`` from the file (one query)."""
        horizon = now - max((s.length for s in specs if s.kind == "r"), default=0.0) - 1.0
        with self._lock:
            rows = self._conn.execute(_LOAD, (key_id, horizon)).fetchall()
        return _state(specs, rows, now)

    def write_commit(self, key_id: str, state: KeyState, t: float, cost: int, now: float) -> None:
        """Record an admission of ``cost`` at ``t`` in every window (inside a transaction)."""
        for spec, log in zip(state.specs, state.logs, strict=True):
            self.write_entry(key_id, spec, log, t, cost, now, commit=True)
        meta = state.meta
        self._conn.execute(
            "INSERT INTO quota_meta VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " last = excluded.last, last_why = excluded.last_why",
            (key_id, meta.last, meta.last_why, meta.blocked, meta.blocked_why),
        )

    def write_added(
        self, key_id: str, state: KeyState, added: list[tuple[int, float, int]], now: float
    ) -> None:
        """Record cost added by a server sync (inside a transaction)."""
        for i, t, cost in added:
            self.write_entry(key_id, state.specs[i], state.logs[i], t, cost, now, commit=False)

    def delete_one(self, key_id: str, spec: WindowSpec, t: float, cost: int) -> None:
        """Delete one rolling-log row admitted at ``t`` for ``cost`` (inside a transaction)."""
        self._conn.execute(
            "DELETE FROM quota_log WHERE rowid = (SELECT rowid FROM quota_log"
            " WHERE key = ? AND win = ? AND t = ? AND cost = ? LIMIT 1)",
            (key_id, spec.sig, t, cost),
        )

    def write_removal(self, key_id: str, state: KeyState, t: float, cost: int) -> None:
        """Take back an admission of ``cost`` at ``t`` in every window (inside a transaction)."""
        for spec, log in zip(state.specs, state.logs, strict=True):
            if isinstance(log, RollingLog):
                self.delete_one(key_id, spec, t, cost)
            else:
                for wid in log.ids(t):
                    self._conn.execute(
                        "UPDATE quota_count SET count = count - ? WHERE key = ? AND win = ?"
                        " AND wid = ?",
                        (cost, key_id, spec.sig, wid),
                    )

    def write_clock(self, key_id: str, state: KeyState) -> None:
        """Record the key's timeline (inside a transaction)."""
        self._conn.execute(_CLOCK, (key_id, state.meta.drift, state.meta.seen))

    def write_last(self, key_id: str, meta: Meta) -> None:
        """Record the FIFO tail of ``key_id`` (inside a transaction)."""
        self._conn.execute(
            "INSERT INTO quota_meta VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " last = max(last, excluded.last)",
            (key_id, meta.last, meta.last_why, meta.blocked, meta.blocked_why),
        )

    def write_penalty(self, key_id: str, meta: Meta) -> None:
        """Record the penalty box of ``key_id`` (inside a transaction)."""
        self._conn.execute(
            "INSERT INTO quota_meta VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " blocked = max(blocked, excluded.blocked), blocked_why = excluded.blocked_why",
            (key_id, meta.last, meta.last_why, meta.blocked, meta.blocked_why),
        )

    def write_entry(
        self,
        key_id: str,
        spec: WindowSpec,
        log: RollingLog | CalendarCounter,
        t: float,
        cost: int,
        now: float,
        *,
        commit: bool,
    ) -> None:
        conn = self._conn
        if isinstance(log, RollingLog):
            conn.execute("INSERT INTO quota_log VALUES (?, ?, ?, ?)", (key_id, spec.sig, t, cost))
            conn.execute(
                "DELETE FROM quota_log WHERE key = ? AND win = ? AND t < ?",
                (key_id, spec.sig, now - spec.length - 1.0),
            )
            return
        for wid in log.ids(t) if commit else (log.wid(t),):
            conn.execute(
                "INSERT INTO quota_count VALUES (?, ?, ?, ?) ON CONFLICT (key, win, wid)"
                " DO UPDATE SET count = count + excluded.count",
                (key_id, spec.sig, wid, cost),
            )
        conn.execute(
            "DELETE FROM quota_count WHERE key = ? AND win = ? AND wid < ?",
            # the previous slot stays, as in memory: a clock stepped back may land in it
            (key_id, spec.sig, log.wid(now) - 1),
        )


def _state(specs: tuple[WindowSpec, ...], rows: list[tuple[object, ...]], now: float) -> KeyState:
    meta = Meta()
    by_sig: dict[str, list[tuple[float, int]]] = {}
    clock = (0.0, 0.0)
    for kind, win, a, b, why in rows:
        if kind == "m":
            meta.last, meta.last_why = float(a), str(win)  # type: ignore[arg-type]
            meta.blocked, meta.blocked_why = float(b), str(why)  # type: ignore[arg-type]
        elif kind == "s":
            clock = (float(a), float(b))  # type: ignore[arg-type]
        else:
            by_sig.setdefault(str(win), []).append((a, b))  # type: ignore[arg-type]
    logs = []
    for spec in specs:
        log = KeyState.new_log(spec)
        for x, cost in by_sig.get(spec.sig, ()):
            if isinstance(log, RollingLog):
                log.commit(float(x), int(cost))
            else:
                log.counts[int(x)] = int(cost)
        logs.append(log)
    state = KeyState(specs, tuple(logs), meta)
    state.set_drift(*clock)
    for log in logs:
        log.prune(now + clock[0])
    return state


class SQLiteBucket:
    """One key's windows in a :class:`SQLiteStore`."""

    def __init__(self, store: SQLiteStore, key_id: str, specs: tuple[WindowSpec, ...]) -> None:
        self._store = store
        self._key = key_id
        self._specs = specs

    def reserve(self, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Commit ``cost`` at the earliest admissible time; return ``(at, now)``."""
        store = self._store
        with store.transaction() as conn:
            now = store.fresh(now)
            rows = conn.execute(_LOAD, (self._key, self._horizon(now))).fetchall()
            state = _state(self._specs, rows, now)
            t = state.reserve(now, cost, max_wait)
            if cost:
                store.write_commit(self._key, state, t, cost, now)
            store.write_clock(self._key, state)
        return t, now + state.meta.drift

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Re-check a reservation as the call leaves; re-admit it if it no longer fits."""
        store = self._store
        refused: QuotaExceededError | None = None
        with store.transaction() as conn:
            now = store.fresh(now)
            rows = conn.execute(_LOAD, (self._key, self._horizon(now))).fetchall()
            state = _state(self._specs, rows, now)
            try:
                t = state.settle(at, cost, now, max_wait)
            except QuotaExceededError as exc:  # the call will not go: its entry goes too
                store.write_removal(self._key, state, at, cost)
                refused = exc
            else:
                if t != at:
                    store.write_removal(self._key, state, at, cost)
                    store.write_commit(self._key, state, t, cost, now)
            store.write_clock(self._key, state)
        if refused is not None:
            raise refused
        return t, now + state.meta.drift

    def release(self, at: float, cost: int, now: float) -> None:
        """Give back a reservation whose call was never sent."""
        store = self._store
        with store.transaction() as conn:
            now = store.fresh(now)
            rows = conn.execute(_LOAD, (self._key, self._horizon(now))).fetchall()
            state = _state(self._specs, rows, now)
            state.clock(now)  # a reading like any other, as the Redis script takes it
            if state.release(at, cost):
                store.write_removal(self._key, state, at, cost)
                conn.execute(
                    "UPDATE quota_meta SET last = ? WHERE key = ?", (state.meta.last, self._key)
                )
            store.write_clock(self._key, state)

    def correct(self, at: float, cost: int, answered: float, now: float, lead: float = 0.0) -> None:
        """Recount a call answered late as arriving as late as its answer allows."""
        store = self._store
        with store.transaction() as conn:
            now = store.fresh(now)
            rows = conn.execute(_LOAD, (self._key, self._horizon(now))).fetchall()
            state = _state(self._specs, rows, now)
            last = state.meta.last
            for i, t in state.correct(at, cost, answered, now, lead):
                spec, log = state.specs[i], state.logs[i]
                if isinstance(log, RollingLog):
                    store.delete_one(self._key, spec, at, cost)
                store.write_entry(self._key, spec, log, t, cost, now, commit=False)
            if state.meta.last != last:
                store.write_last(self._key, state.meta)
            store.write_clock(self._key, state)

    def sync(self, sync: Sync, now: float) -> None:
        """Apply a server observation."""
        store = self._store
        with store.transaction() as conn:
            now = store.fresh(now)
            rows = conn.execute(_LOAD, (self._key, self._horizon(now))).fetchall()
            state = _state(self._specs, rows, now)
            blocked = state.meta.blocked
            added = state.sync(sync, now)
            store.write_added(self._key, state, added, now)
            if state.meta.blocked != blocked:
                store.write_penalty(self._key, state.meta)
            store.write_clock(self._key, state)

    def snapshot(self, now: float) -> Snapshot:
        """Read every window (one query)."""
        return self._store.load(self._key, self._specs, now).snapshot(now)

    def _horizon(self, now: float) -> float:
        return now - max((s.length for s in self._specs if s.kind == "r"), default=0.0) - 1.0


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
        state = self._store.load(self._key, self._state.specs, now)
        out: list[tuple[int, list[tuple[float, int]], dict[int, int]]] = []
        for i, j in self._indices.items():
            log = state.logs[j]
            if isinstance(log, RollingLog):
                out.append((i, log.entries(), {}))
            else:
                out.append((i, [], dict(log.counts)))
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
