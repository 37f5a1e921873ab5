"""The quota facade the client calls: reserve before sending, re-check as the call leaves,
say when it was answered, observe the response."""

from __future__ import annotations

import bisect
import html
import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import platformdirs

from .._exceptions import (
    CoinguardError,
    ConfigurationError,
    QuotaExceededError,
    QuotaStoreError,
)
from .._headers import MAX_RETRY_AFTER, ServerQuota, ServerWindow, parse_server_quota
from .._redact import masked_url
from ._log import KeyState, Sync
from ._memory import Leads, MemoryBucket, MemoryStore
from ._policy import MONTH, QuotaPolicy, WindowSpec
from ._sqlite import Journal, SQLiteStore
from ._store import QuotaBucket, QuotaStore

__all__ = [
    "PERSIST_ENV",
    "Quota",
    "QuotaStatus",
    "Reservation",
    "WindowStatus",
    "default_persist_path",
    "open_store",
    "shared_memory_store",
]

logger = logging.getLogger("coinguard.quota")

#: Environment variable: ``0`` disables persistence of day/month windows, a path relocates it.
PERSIST_ENV = "COINGUARD_QUOTA_PERSIST"
_FASTEST = 8  # round trips kept to bound the fastest (Quota.took)
_PERSISTED_SECONDS = 86400.0  # windows of a day or longer outlive the process
_DEFAULT_PENALTY = 1.0  # a 429 that does not say how long to wait
_MAX_WAIT_CAP = 1e12


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT = _Default()
# Reservation(...) runs the generated Python __new__; tuple.__new__ is the same object, faster.
_new_reservation = tuple.__new__
_SHARED_MEMORY = MemoryStore()
_JOURNALS: dict[str, SQLiteStore] = {}
_JOURNALS_LOCK = threading.Lock()
_NO_LOCK = threading.Lock()  # never taken: a placeholder so the fast path needs no None check


class Reservation(NamedTuple):
    """A committed admission: sleep ``wait`` seconds, then send. ``at`` is the admission time
    (store clock); ``epoch`` tells :meth:`Quota.sent` whether it must be re-checked.

    A named tuple rather than a dataclass: it is built on every call, and is immutable either way.
    """

    wait: float
    cost: int
    at: float
    epoch: int = -1


@dataclass(frozen=True)
class WindowStatus:
    """One window right now. ``resets_at`` is the slot end (calendar) or the time the oldest
    counted call leaves (rolling); None when nothing is counted."""

    name: str
    limit: int
    used: int
    remaining: int
    resets_at: datetime | None
    calendar: bool


@dataclass(frozen=True)
class QuotaStatus:
    """Every window of a key, and the penalty box. ``print()`` it for a table."""

    key_id: str
    windows: tuple[WindowStatus, ...]
    blocked_until: datetime | None = None
    blocked_by: str = ""

    def __str__(self) -> str:
        rows = [("window", "used", "remaining", "limit", "resets at (UTC)")]
        for w in self.windows:
            when = w.resets_at.strftime("%Y-%m-%d %H:%M:%S") if w.resets_at else "-"
            rows.append((w.name, str(w.used), str(w.remaining), str(w.limit), when))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"quota {self.key_id}"]
        for r in rows:
            lines.append(
                f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}"
                f"  {r[3]:>{widths[3]}}  {r[4]}"
            )
        if self.blocked_until is not None:
            lines.append(
                f"blocked until {self.blocked_until:%Y-%m-%d %H:%M:%S} ({self.blocked_by})"
            )
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        """A small table with a bar per window (used / limit), for notebooks."""
        rows = []
        for w in self.windows:
            share = min(1.0, w.used / w.limit) if w.limit else 0.0
            colour = "#c0392b" if share >= 0.9 else "#e67e22" if share >= 0.6 else "#27ae60"
            bar = (
                f'<div style="width:120px;background:#eee"><div style="width:{share * 100:.0f}%;'
                f'height:10px;background:{colour}"></div></div>'
            )
            when = w.resets_at.strftime("%Y-%m-%d %H:%M:%S") if w.resets_at else "-"
            rows.append(
                f"<tr><td>{html.escape(w.name)}</td><td>{bar}</td><td>{w.used}</td>"
                f"<td>{w.remaining}</td><td>{w.limit}</td><td>{when}</td></tr>"
            )
        blocked = ""
        if self.blocked_until is not None:
            blocked = (
                f"<p>blocked until {self.blocked_until:%Y-%m-%d %H:%M:%S} "
                f"({html.escape(self.blocked_by)})</p>"
            )
        return (
            f"<table><caption>quota {html.escape(self.key_id)}</caption><thead><tr>"
            "<th>window</th><th>use</th><th>used</th><th>remaining</th><th>limit</th>"
            "<th>resets at (UTC)</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            + blocked
        )


def shared_memory_store() -> MemoryStore:
    """The process-wide store behind ``quota_store="memory"`` (the default)."""
    return _SHARED_MEMORY


def open_store(url: str) -> QuotaStore:
    """Open a store from a URL.

    ``"memory"`` is this process's shared memory store; ``"sqlite:///relative.db"`` or
    ``"sqlite:////abs/path.db"`` a SQLite file; ``"redis://host:6379/0"`` (also ``rediss://``,
    ``unix://``) a Redis server, which needs ``pip install 'coinguard[redis]'``.

    >>> open_store("memory").blocking
    False
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"quota store must be a URL string, got {type(url).__name__}")
    if url in ("memory", "memory://"):
        return _SHARED_MEMORY
    shown = masked_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "redis://[::1/0", an unclosed IPv6 literal
        parts = None
    if parts is None:
        raise ConfigurationError(f"bad quota store URL {shown!r}")
    if parts.scheme == "sqlite":
        if parts.netloc:
            raise ConfigurationError(
                f"bad sqlite store URL {url!r}: use three slashes, sqlite:///path.db"
                " (four for an absolute path)"
            )
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise ConfigurationError(
                f"bad sqlite store URL {url!r}: it needs a file path that processes can share"
            )
        try:
            return SQLiteStore(path)
        except (OSError, sqlite3.Error) as exc:  # a directory, a path that cannot be created
            failure = f"{type(exc).__name__}: {exc}"
        raise ConfigurationError(f"quota store {url!r} cannot be opened ({failure})")
    if parts.scheme in ("redis", "rediss", "unix"):
        from ._redis import RedisStore

        return RedisStore(url)
    raise ConfigurationError(
        f"unknown quota store {shown!r}: use 'memory', 'sqlite:///path.db' or 'redis://host:port/0'"
    )


def default_persist_path() -> Path | None:
    """Where day and month windows persist when ``persist`` is not given.

    ``$COINGUARD_QUOTA_PERSIST`` if set (``0``, ``off`` or empty disables), else
    ``quota.sqlite3`` in ``platformdirs.user_cache_dir("coinguard")``.
    """
    env = os.environ.get(PERSIST_ENV)
    if env is None:
        return Path(platformdirs.user_cache_dir("coinguard")) / "quota.sqlite3"
    if env.strip().lower() in ("", "0", "false", "no", "off"):
        return None
    return Path(env).expanduser()


def _journal_store(path: Path) -> SQLiteStore:
    with _JOURNALS_LOCK:
        key = str(path)
        if key not in _JOURNALS:
            _JOURNALS[key] = SQLiteStore(path)
        return _JOURNALS[key]


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


class Quota:
    """The quota of one key: the client reserves before each call, re-checks it with
    :meth:`sent` as it leaves, tells :meth:`answered` when it was answered, and observes each
    response.

    ``store`` (a :class:`QuotaStore` or a URL for :func:`open_store`) decides who shares the
    budget: Quotas with the same ``key_id`` on the same store share it. ``on_quota="wait"``
    returns the wait to sleep; ``"raise"`` raises :class:`QuotaExceededError` instead, as
    does a wait above ``max_wait``. ``persist`` keeps day and month windows of a memory
    store in a SQLite file across restarts: a path, ``None`` to disable, or by default
    :func:`default_persist_path`.

    >>> from coinguard._quota import QuotaPolicy, Window, MemoryStore
    >>> q = Quota(QuotaPolicy([Window.per_second(5)]), store=MemoryStore(), key_id="demo",
    ...           clock=lambda: 1000.0, persist=None)
    >>> [round(q.reserve("GET", "/price").wait, 3) for _ in range(6)]
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.01]
    """

    def __init__(
        self,
        policy: QuotaPolicy,
        *,
        store: QuotaStore | str = "memory",
        key_id: str,
        on_quota: Literal["wait", "raise"] = "wait",
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.time,
        persist: str | os.PathLike[str] | _Default | None = _DEFAULT,
    ) -> None:
        if on_quota not in ("wait", "raise"):
            raise ConfigurationError(f"on_quota must be 'wait' or 'raise', got {on_quota!r}")
        if not isinstance(key_id, str) or not key_id:
            raise ConfigurationError("key_id must be a non-empty string")
        self.policy = policy
        self.key_id = key_id
        self._owned = isinstance(store, str)
        self.store: QuotaStore = open_store(store) if isinstance(store, str) else store
        self._clock = clock
        self._max_wait = 0.0 if on_quota == "raise" else min(max(0.0, max_wait), _MAX_WAIT_CAP)
        self._specs: tuple[WindowSpec, ...] = policy.specs()
        self._bucket: QuotaBucket = self.store.bind(key_id, self._specs)
        self._costs: dict[tuple[str, str], int] = {}
        self._journal = self._open_journal(persist)
        self._offset = 0.0  # store clock minus ours (Redis TIME), as of the last reserve
        self._margin = policy.margin
        self._fast: list[float] = []  # the fastest round trips seen, ascending
        self._lead = 0.0  # what they prove about the gap between two server stamps
        self._leads: Leads | None = None  # the key's other clients' (memory store only)
        # a call answered in a later clock-aligned slot than it was admitted in counts there
        # too, however early the lead would put it: only rolling windows may use the lead
        self._calendar = any(w.calendar for w in policy.windows)
        self._state: KeyState | None = None
        self._closed = False
        self._lock = _NO_LOCK
        #: The last store failure this Quota logged and carried on from, or "" (see observe).
        self.degraded = ""
        if isinstance(self._bucket, MemoryBucket) and self._journal is None:
            self._state, self._lock = self._bucket.state, self._bucket.lock
        if isinstance(self.store, MemoryStore) and not self._calendar:
            self._leads = leads = self.store.leads(key_id)
            leads.set(id(self), 0.0)
            weakref.finalize(self, leads.drop, id(self))

    def _open_journal(self, persist: str | os.PathLike[str] | _Default | None) -> Journal | None:
        long = [i for i, s in enumerate(self._specs) if s.kind == "m" or s.length >= 86400.0]
        if not long or not isinstance(self._bucket, MemoryBucket):
            return None
        if isinstance(persist, _Default):
            path = default_persist_path()
        else:
            path = None if persist is None else Path(persist).expanduser()
        if path is None:
            return None
        try:
            journal = Journal(_journal_store(path), self.key_id, self._specs, long)
            for index, entries, counts in journal.restore(self._clock()):
                self._bucket.seed(index, entries, counts)
        except (OSError, sqlite3.Error) as exc:
            logger.warning("quota persistence disabled, cannot use %s: %s", path, exc)
            return None
        return journal

    @property
    def blocking(self) -> bool:
        """True if ``reserve`` does I/O: an async caller should run it in a worker thread.

        With the memory store and a journal, only when the journal's lease is used up: one
        call in many (see :class:`Journal`)."""
        journal = self._journal
        return self.store.blocking or (journal is not None and not journal.ready)

    def reserve(self, method: str, path: str, *, max_wait: float | None = None) -> Reservation:
        """Commit one call to ``method path`` and say how long to wait before sending it.

        Raises :class:`QuotaExceededError` (committing nothing) with ``on_quota="raise"``
        when the call would have to wait, or when the wait exceeds ``max_wait`` (the lower of
        the Quota's and this call's, e.g. what is left of the call's deadline).
        """
        try:
            cost = self._costs[method, path]
        except KeyError:
            cost = self._cost(method, path)
        limit = self._max_wait
        if max_wait is not None and max_wait < limit:
            limit = max_wait
        state = self._state
        if state is not None:  # the memory store without a journal: no I/O, no indirection
            meta = state.meta
            with self._lock:
                # read under the lock: a reading older than another thread's decision would
                # look like the clock stepping back
                now = self._clock()
                at = state.reserve(now, cost, limit)
                now += meta.drift  # the key's time, as reserve computed it
                epoch = meta.moves
            return _new_reservation(Reservation, (at - now, cost, at, epoch))
        if self._closed:
            raise ConfigurationError(f"quota {self.key_id}: this Quota is closed; make a new one")
        local = self._clock()
        try:
            at, now = self._bucket.reserve(cost, local, limit)
        except CoinguardError:
            raise
        except Exception as exc:
            raise self._failed("reserve; nothing was sent", exc) from None
        self._offset = now - local
        if self._journal is not None and cost:
            try:
                self._journal.commit(at, cost, now)
            except Exception as exc:  # not journaled: not admitted either, or a restart forgets it
                self._bucket.release(at, cost, now)
                raise self._failed("journal a reservation; nothing was sent", exc) from None
        return _new_reservation(Reservation, (at - now, cost, at, -1))

    def take(self, cost: int) -> Reservation:
        """Commit ``cost`` units at once, or raise :class:`QuotaExceededError` committing none:
        for allowances counted in their own units (an agent's credits, an order's notional).

        >>> q = Quota(QuotaPolicy([Window.per_day(100)]), store=MemoryStore(), key_id="usd",
        ...           on_quota="raise", clock=lambda: 1000.0, persist=None)
        >>> q.take(60).cost, q.status().windows[0].remaining
        (60, 40)
        """
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError(f"take() needs a cost >= 0, got {cost!r}")
        smallest = min(self.policy.windows, key=lambda w: w.limit)
        if cost > smallest.limit:  # could never be admitted: say so rather than wait forever
            raise QuotaExceededError(
                f"quota window {smallest.label} is {smallest.limit}: {cost} can never fit",
                window=smallest.label,
                retry_after=math.inf,
            )
        self._costs["TAKE", f"/{cost}"] = cost
        return self.reserve("TAKE", f"/{cost}", max_wait=0.0)

    def _failed(self, what: str, exc: Exception) -> QuotaStoreError:
        return QuotaStoreError(
            f"quota {self.key_id}: {self.store!r} failed to {what} ({type(exc).__name__}: {exc})",
            store=repr(self.store),
        )

    def _degrade(self, what: str, exc: Exception) -> None:
        """Log a store failure after the call was answered, and carry on."""
        self.degraded = f"{what}: {type(exc).__name__}: {exc}"
        logger.warning(
            "quota %s: the store failed to %s (%s: %s); the call's outcome stands,"
            " the quota may undercount until the store recovers",
            self.key_id,
            what,
            type(exc).__name__,
            exc,
        )

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call was never sent (cancelled, interrupted).

        Best effort: a store failure here is logged, never raised, so it cannot replace the
        interruption being handled.
        """
        if not reservation.cost:
            return
        try:
            self._bucket.release(reservation.at, reservation.cost, self._clock())
            if self._journal is not None:
                self._journal.release(reservation.at, reservation.cost)
        except Exception as exc:
            self._degrade("release a reservation", exc)

    def _cost(self, method: str, path: str) -> int:
        cost = self.policy.cost(method, path)
        if len(self._costs) >= 4096:  # paths with ids in them must not grow this forever
            self._costs.clear()
        self._costs[method, path] = cost
        return cost

    def sent(
        self, reservation: Reservation, *, at: float | None = None, max_wait: float | None = None
    ) -> Reservation:
        """Re-check a reservation as its call leaves (at ``at``, default now).

        Returns the reservation to send under: ``wait == 0`` if the call may go now. Otherwise
        sleep its ``wait`` and call ``sent`` again: the sleep ended early, or the call no longer
        fits and was admitted again later. It no longer fits if it leaves more than ``margin``
        after its time (it then counts from when it leaves), if the key went into the penalty
        box, or if calls ahead of it were recounted by :meth:`answered` or a server sync in a
        way that fills a window at that moment. The memory store checks without locking unless
        one of those happened; the others re-check calls that waited or left late (one store
        round trip). ``max_wait`` lowers the Quota's for this call, as in :meth:`reserve`.
        """
        limit = self._max_wait if max_wait is None or max_wait > self._max_wait else max_wait
        cost = reservation.cost
        r_at = reservation.at
        state = self._state
        if state is not None:
            # a reading taken earlier (on an event loop, before a worker thread ran this) would
            # stamp the call before it actually leaves: never older than the clock now
            wall = self._clock() if at is None else max(at, self._clock())
            now = wall + state.meta.drift  # the key's time
            if reservation.epoch == state.meta.moves and r_at <= now <= r_at + self._margin:
                if now > state.meta.seen:  # a leave is a reading too: later re-checks see it
                    state.meta.seen = now
                if reservation.wait == 0:
                    return reservation
                return _new_reservation(Reservation, (0.0, cost, r_at, reservation.epoch))
            with self._lock:
                t = state.settle(r_at, cost, wall, limit)
                epoch = state.meta.moves
                now = wall + state.meta.drift
        else:
            local = self._clock() if at is None else max(at, self._clock())
            if reservation.wait <= 0 and local + self._offset - r_at <= self._margin:
                return reservation
            # (a journal already holds this call from its first admission: a move of
            # milliseconds changes nothing in a day or month window)
            try:
                t, now = self._bucket.settle(r_at, cost, local, limit)
            except CoinguardError:
                raise
            except Exception as exc:
                raise self._failed("re-check a reservation; nothing was sent", exc) from None
            self._offset, epoch = now - local, -1
        return _new_reservation(Reservation, (max(0.0, t - now), cost, t, epoch))

    def settles_locally(self, reservation: Reservation, at: float) -> bool:
        """True if :meth:`sent` at ``at`` can answer without store I/O (so an event loop may
        call it inline): the memory store, or a call leaving on time that never waited."""
        if self._state is not None:
            return True
        return reservation.wait <= 0 and at + self._offset - reservation.at <= self._margin

    def leaves_late(self, reservation: Reservation, at: float) -> bool:
        """True if a call leaving at ``at`` (our clock) leaves later than its reservation
        counted it (more than ``margin`` after its admission): :meth:`sent` must re-check it."""
        return at + self._offset - reservation.at > self._margin and reservation.cost > 0

    def late(self, reservation: Reservation, answered: float) -> bool:
        """True if a call answered at ``answered`` (our clock) must be recounted by
        :meth:`answered`: its answer came more than ``margin`` (plus what the fastest round
        trips prove, see :meth:`took`, when every window is rolling) after its admission."""
        return (
            answered + self._offset - reservation.at > self._margin + self.applied_lead
            and reservation.cost > 0
        )

    def took(self, left: float, answered: float) -> None:
        """Tell the quota a call's bytes left at ``left`` and its answer came at ``answered``.

        A round trip is the way out, the server's work and the way back. The server stamps a
        call after its way out and answers it before the way back, so two stamps are apart by
        at least the time between the earlier call's answer and the later call's leaving, plus
        the fastest way out and way back. The fastest round trip seen bounds that sum, and the
        spread of the few fastest ones says how far below it the true minimum may lie: the
        fastest less that spread is the ``lead`` by which a late answer is counted earlier
        (:meth:`answered`). Nothing is assumed before 8 round trips are seen; a trip faster
        than any before lowers it at once.

        >>> q = Quota(QuotaPolicy([Window.per_second(5)]), key_id="doc", persist=None)
        >>> for ms in (50, 51, 52, 50, 53, 51, 52, 50):
        ...     q.took(0.0, ms / 1000)
        >>> round(q.lead, 3)  # 50 ms, less the 3 ms between the fastest and the 8th
        0.047
        """
        rtt = answered - left
        fast = self._fast
        if rtt < 0 or (len(fast) >= _FASTEST and rtt >= fast[_FASTEST - 1]):
            return
        # threads tell their trips without a lock: each list operation is atomic, and the
        # list is cut back to 8 after the insert, however two tellers interleave
        bisect.insort(fast, rtt)
        del fast[_FASTEST:]
        if len(fast) == _FASTEST:
            lead = max(0.0, 2 * fast[0] - fast[_FASTEST - 1])
            if lead != self._lead:
                self._lead = lead
                if self._leads is not None and not self._closed:
                    self._leads.set(id(self), lead)

    @property
    def lead(self) -> float:
        """What this Quota's round trips prove (see :meth:`took`), in seconds."""
        return self._lead

    @property
    def applied_lead(self) -> float:
        """Seconds by which a late answer is counted before its answer: the smallest
        :attr:`lead` of the key's open Quotas on this memory store; 0 on a store other
        processes share, or with a calendar window (see :meth:`took`)."""
        return 0.0 if self._leads is None else self._leads.floor

    def answered(self, reservation: Reservation, *, at: float | None = None) -> None:
        """Tell the quota when the call's answer (or failure) came (default: now).

        The server stamped the call between its sending and its answer. Rolling windows count
        a call until ``margin`` after its admission, so one answered later than that is
        recounted as late as its answer allows: it then counts until one window after its
        answer, less the :attr:`lead` the fastest round trips prove. No store I/O unless the
        answer was late. Best effort: a store failure here is logged (``coinguard.quota``),
        never raised, so it cannot hide the call's own outcome.
        """
        local = self._clock() if at is None else at
        if not self.late(reservation, local):
            return
        answered = local + self._offset  # on the store's timeline, as reservations are
        try:
            lead = self.applied_lead
            self._bucket.correct(reservation.at, reservation.cost, answered, local, lead)
        except Exception as exc:  # any store failure: the call's own outcome must not be lost
            self.degraded = f"recount a late answer: {type(exc).__name__}: {exc}"
            logger.warning(
                "quota %s: could not recount a late answer, the store failed (%s: %s);"
                " the next calls may go up to %.3fs early",
                self.key_id,
                type(exc).__name__,
                exc,
                answered - reservation.at,
            )

    def observe(
        self,
        status: int,
        headers: Mapping[str, str],
        body: object = None,
        *,
        reservation: Reservation | None = None,
        penalty: float | None = None,
        billed: int | None = None,
    ) -> None:
        """Take in what the server said: rate-limit headers, Retry-After, credits charged.

        Lowers local remaining counts to the server's (never raises them); a 429 or 418
        puts the key in the penalty box for every worker sharing the store. Pass the call's
        ``reservation`` so a body that reports the credits charged can debit the difference,
        and ``penalty`` (seconds) for a limit the body named (a provider's "daily credits spent"
        code), which holds the key however the answer's status and headers put it. ``billed``
        is what the call cost by the policy's word (:meth:`QuotaPolicy.billed`), in place of
        a body's credit count. A refund is settled before the headers are taken in: the
        server's count already leaves out what it did not bill.
        Never raises: this runs after the call was answered, and a store failure must not
        replace the answer (a caller that retried would place a second order). A failure is
        logged on ``coinguard.quota`` and kept in :attr:`degraded`.
        """
        now = self._clock()
        server = parse_server_quota(headers, body, now=now)
        if billed is not None:
            server = ServerQuota(server.windows, server.retry_after, billed)
        sync = self._sync(status, server, reservation)
        if penalty is not None and penalty > 0:
            held = min(penalty, MAX_RETRY_AFTER)
            if sync is None:
                sync = Sync((), held, f"server {status} (provider code)")
            elif sync.penalty is None or sync.penalty < held:
                sync = sync._replace(penalty=held, penalty_why=f"server {status} (provider code)")
        if sync is not None:
            try:
                if sync.debits and sync.targets:
                    self._apply(Sync(debits=sync.debits, debit_at=sync.debit_at), now)
                    sync = sync._replace(debits=())
                self._apply(sync, now)
            except Exception as exc:
                self._degrade("record what the server said", exc)

    def learn(self, windows: Sequence[ServerWindow]) -> None:
        """Take in what a provider's usage route reports (``verify_key()``, e.g. CoinGecko's
        ``/key``, CoinMarketCap's ``/v1/key/info``): each window of ours with the same length
        counts at least what the server says is used. Never raises (a store failure is
        logged and kept in :attr:`degraded`)."""
        now = self._clock()
        counted = tuple(w for w in windows if _counts(w.used) and _counts(w.remaining))
        sync = self._sync(200, ServerQuota(counted), None)
        if sync is not None:
            try:
                self._apply(sync, now)
            except Exception as exc:
                self._degrade("record the provider's usage", exc)

    def _apply(self, sync: Sync, now: float) -> None:
        if isinstance(self._bucket, MemoryBucket):
            added = self._bucket.sync_added(sync, now)
            if self._journal is not None and added:
                self._journal.added(added, now)
        else:
            self._bucket.sync(sync, now)

    def _sync(
        self, status: int, server: ServerQuota, reservation: Reservation | None
    ) -> Sync | None:
        targets = []
        penalty, why = None, f"server {status}"
        for window in server.windows:
            matched = self._matching(window)
            for i in matched:
                spec = self._specs[i]
                # Remaining is what matters when the server's limit differs from ours: we may
                # use at most what it says is left, whatever our own window allows.
                if window.remaining is not None:
                    used = spec.limit - window.remaining
                elif window.used is not None:
                    used = window.used
                else:
                    continue
                if used > 0:
                    targets.append((i, min(used, spec.limit), window.reset))
            # a server window of its own (none of ours has its shape), and it is empty
            empty = not matched and window.remaining == 0 and window.reset
            if empty and (penalty is None or window.reset > penalty):  # type: ignore[operator]
                penalty, why = window.reset, f"{window.name or 'unnamed'} (server)"
        if status in (429, 418):
            penalty, why = server.retry_after, f"server {status}"
            if penalty is None:
                resets = [w.reset for w in server.windows if w.remaining == 0 and w.reset]
                penalty = max(resets) if resets else _DEFAULT_PENALTY
        elif status >= 500 and server.retry_after is not None:  # "down for maintenance until"
            penalty, why = server.retry_after, f"server {status}"
        if penalty is not None:
            penalty = min(penalty, MAX_RETRY_AFTER)
        debits = self._debits(status, server.cost, reservation)
        if not targets and penalty is None and not debits:
            return None
        at = 0.0 if reservation is None else reservation.at
        return Sync(tuple(targets), penalty, why, debits, at)

    def _debits(
        self, status: int, billed: int | None, reservation: Reservation | None
    ) -> tuple[tuple[int, int], ...]:
        """What the answer billed beyond (or short of) the reservation, per window."""
        if reservation is None:
            return ()
        credit = [i for i, s in enumerate(self._specs) if s.credits]
        if not credit:  # nothing says which windows bill: any extra charges them all
            extra = 0 if billed is None else billed - reservation.cost
            return tuple((i, extra) for i in range(len(self._specs))) if extra > 0 else ()
        if billed is None and not 200 <= status < 300:
            billed = 0  # an error answer bills nothing
        if billed is None or billed == reservation.cost:
            return ()
        return tuple((i, billed - reservation.cost) for i in credit)

    def _matching(self, window: ServerWindow) -> list[int]:
        """Our windows a server window describes: same length, else (legacy headers, which
        name no length) same limit, else the shortest window its reset fits in when it gives
        no limit. A header for a window of another shape (a per-minute limit on a month-only
        plan) matches none: it must not spend a window it does not describe."""
        specs = self._specs
        if window.seconds is not None:
            return [i for i, s in enumerate(specs) if _same_length(s, window.seconds)]
        same = [i for i, s in enumerate(specs) if s.limit == window.limit]
        if same or window.limit is not None or window.reset is None:
            return same
        # A reset of r seconds can only come from a window at least that long, and the
        # shortest such window is the one the server is closest to.
        longer = [(s.length, i) for i, s in enumerate(specs) if s.length >= window.reset]
        return [min(longer)[1]] if longer else []

    def status(self) -> QuotaStatus:
        """Used, remaining and reset time of every window (no I/O for the memory store).

        Raises :class:`QuotaStoreError` if the store cannot be read."""
        try:
            snap = self._bucket.snapshot(self._clock())
        except Exception as exc:
            raise self._failed("read the status", exc) from None
        windows = tuple(
            WindowStatus(s.name, s.limit, used, max(0, s.limit - used), _dt(resets), s.kind != "r")
            for s, (used, resets) in zip(self._specs, snap.windows, strict=True)
        )
        blocked = snap.blocked_until > snap.now
        return QuotaStatus(
            self.key_id,
            windows,
            _dt(snap.blocked_until) if blocked else None,
            (snap.blocked_why or "penalty") if blocked else "",
        )

    def close(self) -> None:
        """Close the store if this Quota opened it from a URL (never the shared memory store).

        A memory store forgets the key once no open Quota is bound to it and its windows hold
        nothing. A closed Quota refuses to reserve (:class:`ConfigurationError`); its status
        stays readable. Closing twice does nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._state = None  # every later reserve takes the checked path
        if self._journal is not None:
            try:
                self._journal.close()
            except Exception as exc:  # the journal keeps a whole lease: over, never under
                self._degrade("give back the journal's lease", exc)
        if self._leads is not None:
            self._leads.drop(id(self))
        if isinstance(self.store, MemoryStore):
            # journaled windows stay too: a later Quota of the key may have no journal
            self.store.unbind(self.key_id, self._clock())
        if self._owned and self.store is not _SHARED_MEMORY:
            self.store.close()

    def __repr__(self) -> str:
        return f"Quota({self.key_id!r}, {self.policy}, store={self.store!r})"


def _counts(value: object) -> bool:
    """None, or a count a store can keep (an int, not a bool or a float)."""
    return value is None or (type(value) is int and value >= 0)


def _same_length(spec: WindowSpec, seconds: float) -> bool:
    length = spec.length - (spec.margin if spec.kind == "r" else 0.0)
    if spec.kind == "m":
        return seconds >= 28 * 86400.0 and seconds <= MONTH
    return abs(length - seconds) <= 0.01 * length
