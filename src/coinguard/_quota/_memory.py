"""In-process quota store: threads and asyncio tasks of one process."""

from __future__ import annotations

import threading

from ._counter import DecayingCounter, admit
from ._log import CalendarCounter, KeyState, Meta, RollingLog, Snapshot, Sync
from ._policy import WindowSpec

__all__ = ["MemoryStore"]


class MemoryStore:
    """Quota state in this process's memory.

    One lock, held only for the O(1) decision and never across a sleep, so ``reserve`` may be
    called from an event loop. Quotas bound with the same ``key_id`` share windows of the same
    shape (length, kind, margin) and the penalty box.

    >>> store = MemoryStore()
    >>> store.blocking
    False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], RollingLog | CalendarCounter] = {}
        self._sigs: dict[str, set[str]] = {}  # key -> its window shapes, to forget it whole
        self._metas: dict[str, Meta] = {}
        self._bound: dict[str, int] = {}  # key -> open Quotas bound to it
        self._idle: set[str] = set()  # keys nothing is bound to, kept while windows hold calls
        self._sweep_at = _SWEEP_MIN
        self._nonces: dict[str, int] = {}
        self._tats: dict[str, float] = {}  # decaying counters: when each would be empty
        self._leads: dict[str, Leads] = {}  # key -> the round-trip leads of its open Quotas

    def leads(self, key_id: str) -> Leads:
        """The round-trip leads of the open Quotas of ``key_id`` (see :class:`Leads`)."""
        with self._lock:
            board = self._leads.get(key_id)
            if board is None:
                board = self._leads[key_id] = Leads(self._lock)
            return board

    @property
    def blocking(self) -> bool:
        """Memory calls never block on I/O."""
        return False

    def next_nonce(self, key_id: str, floor: int) -> int:
        """The next nonce of ``key_id``: above every nonce given out, and at least ``floor``.

        >>> store = MemoryStore()
        >>> store.next_nonce("k", 100), store.next_nonce("k", 50)
        (100, 101)
        """
        with self._lock:
            nonce = max(self._nonces.get(key_id, 0) + 1, floor)
            self._nonces[key_id] = nonce
        return nonce

    def counter_take(
        self, key_id: str, counter: DecayingCounter, cost: int, now: float, max_wait: float
    ) -> tuple[float, float]:
        """Admit ``cost`` on the decaying counter of ``key_id`` (see ``_counter``).

        >>> from coinguard._quota._counter import DecayingCounter
        >>> MemoryStore().counter_take("k", DecayingCounter(15, 0.5), 1, 100.0, 0.0)
        (100.0, 100.0)
        """
        with self._lock:
            at, tat = admit(
                self._tats.get(key_id, 0.0), counter.ceiling, counter.rate, cost, now, max_wait
            )
            self._tats[key_id] = tat
        return at, now

    def counter_fill(self, key_id: str, counter: DecayingCounter, now: float) -> None:
        """Count the counter of ``key_id`` full from ``now`` (the provider said it is)."""
        with self._lock:
            full = now + counter.limit / counter.rate
            self._tats[key_id] = max(self._tats.get(key_id, 0.0), full)

    def counter_level(self, key_id: str, counter: DecayingCounter, now: float) -> float:
        """What the counter of ``key_id`` holds at ``now``."""
        with self._lock:
            return max(0.0, self._tats.get(key_id, 0.0) - now) * counter.rate

    def bind(self, key_id: str, specs: tuple[WindowSpec, ...]) -> MemoryBucket:
        """The bucket of ``key_id`` with these windows."""
        with self._lock:
            self._bound[key_id] = self._bound.get(key_id, 0) + 1
            self._idle.discard(key_id)
            meta = self._metas.setdefault(key_id, Meta())
            self._sigs.setdefault(key_id, set()).update(spec.sig for spec in specs)
            logs = tuple(
                self._logs.setdefault((key_id, spec.sig), KeyState.new_log(spec)) for spec in specs
            )
        return MemoryBucket(KeyState(specs, logs, meta), self._lock)

    def unbind(self, key_id: str, now: float) -> None:
        """A Quota bound to ``key_id`` closed (``now``: its clock reading).

        Once no open Quota is bound to a key, its state goes as soon as it holds nothing: no
        call in any window, no penalty. A key whose windows still hold calls stays until a
        later sweep finds them empty (sweeps are amortised: one each time the idle keys have
        doubled), so a process that opens a client per user does not grow with its users.
        """
        with self._lock:
            left = self._bound.get(key_id, 0) - 1
            if left > 0:
                self._bound[key_id] = left
                return
            self._bound.pop(key_id, None)
            self._idle.add(key_id)
            if len(self._idle) < self._sweep_at:
                self._forget_if_empty(key_id, now)
                return
            for idle in list(self._idle):
                self._forget_if_empty(idle, now)
            self._sweep_at = max(_SWEEP_MIN, 2 * len(self._idle))

    def _forget_if_empty(self, key_id: str, now: float) -> None:
        meta = self._metas.get(key_id)
        sigs = self._sigs.get(key_id, set())
        if meta is not None:
            t = max(now + meta.drift, meta.seen)  # the key's own timeline
            if meta.blocked > t or any(_holds(self._logs[key_id, sig], t) for sig in sigs):
                return
        for sig in sigs:
            del self._logs[key_id, sig]
        self._sigs.pop(key_id, None)
        self._metas.pop(key_id, None)
        self._idle.discard(key_id)
        board = self._leads.get(key_id)
        if board is not None and board.empty:
            del self._leads[key_id]

    def clear(self) -> None:
        """Forget every key's windows and penalty (quotas bound before keep what they hold)."""
        with self._lock:
            self._logs.clear()
            self._metas.clear()
            self._sigs.clear()
            self._bound.clear()
            self._idle.clear()
            self._sweep_at = _SWEEP_MIN

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._metas)} keys)"


_SWEEP_MIN = 64


def _holds(log: RollingLog | CalendarCounter, t: float) -> bool:
    """True if the log still counts a call at ``t`` or later."""
    if isinstance(log, RollingLog):
        log.prune(t)
        return log.used() > 0
    current = log.wid(t)
    return any(count > 0 for wid, count in log.counts.items() if wid >= current)


class Leads:
    """The round-trip leads (``Quota.took``) of every open Quota of one key in a memory store.

    A late answer is moved earlier by the smallest of them (``floor``), 0 while any of them has
    not learned its round trips yet: a lead is only safe against the way out of the calls that
    follow, and those may be another client's, nearer the server (another base URL, another
    network). Quotas on stores other processes share get no lead at all.
    """

    __slots__ = ("_by", "_lock", "floor")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._by: dict[int, float] = {}
        self.floor = 0.0

    def set(self, token: int, lead: float) -> None:
        """Record the lead of the Quota ``token`` (0 when it joins)."""
        with self._lock:
            self._by[token] = lead
            self.floor = min(self._by.values())

    @property
    def empty(self) -> bool:
        """No open Quota of the key is on the board (read under the store's lock)."""
        return not self._by

    def drop(self, token: int) -> None:
        """The Quota ``token`` closed (or was collected): it no longer holds the others back."""
        with self._lock:
            self._by.pop(token, None)
            self.floor = min(self._by.values(), default=0.0)


class MemoryBucket:
    """One key's windows in a :class:`MemoryStore`."""

    __slots__ = ("_lock", "state")

    def __init__(self, state: KeyState, lock: threading.Lock) -> None:
        self.state = state
        self._lock = lock

    @property
    def lock(self) -> threading.Lock:
        """The store's lock: hold it around any use of ``state``."""
        return self._lock

    def reserve(self, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Commit ``cost`` at the earliest admissible time; return ``(at, now)``."""
        with self._lock:
            at = self.state.reserve(now, cost, max_wait)
            return at, now + self.state.meta.drift

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Re-check a reservation as the call leaves; return ``(at, now)``, ``at`` moved if
        it no longer fits."""
        with self._lock:
            at = self.state.settle(at, cost, now, max_wait)
            return at, now + self.state.meta.drift

    def release(self, at: float, cost: int, now: float) -> None:
        """Give back a reservation whose call was never sent."""
        with self._lock:
            self.state.clock(now)  # a reading like any other, as the Redis script takes it
            self.state.release(at, cost)

    def correct(self, at: float, cost: int, answered: float, now: float, lead: float = 0.0) -> None:
        """Count a call answered late as arriving as late as its answer allows."""
        with self._lock:
            self.state.correct(at, cost, answered, now, lead)

    def sync(self, sync: Sync, now: float) -> None:
        """Apply a server observation."""
        self.sync_added(sync, now)

    def sync_added(self, sync: Sync, now: float) -> list[tuple[int, float, int]]:
        """Apply a server observation; return the cost it added (for the persistence journal)."""
        with self._lock:
            return self.state.sync(sync, now)

    def snapshot(self, now: float) -> Snapshot:
        """Read every window; no I/O."""
        with self._lock:
            return self.state.snapshot(now)

    def seed(self, index: int, entries: list[tuple[float, int]], counts: dict[int, int]) -> None:
        """Merge restored history into window ``index``, keeping the larger reading."""
        with self._lock:
            log = self.state.logs[index]
            if isinstance(log, CalendarCounter):
                for wid, count in counts.items():
                    log.counts[wid] = max(log.counts.get(wid, 0), count)
            else:
                have = set(log.entries())
                for t, cost in entries:
                    if (t, cost) not in have:
                        log.add(t, cost)
