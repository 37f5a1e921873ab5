"""In-process quota store: threads and asyncio tasks of one process."""

from __future__ import annotations

import threading

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
        self._metas: dict[str, Meta] = {}

    @property
    def blocking(self) -> bool:
        """Memory calls never block on I/O."""
        return False

    def bind(self, key_id: str, specs: tuple[WindowSpec, ...]) -> MemoryBucket:
        """The bucket of ``key_id`` with these windows."""
        with self._lock:
            meta = self._metas.setdefault(key_id, Meta())
            logs = tuple(
                self._logs.setdefault((key_id, spec.sig), KeyState.new_log(spec)) for spec in specs
            )
        return MemoryBucket(KeyState(specs, logs, meta), self._lock)

    def clear(self) -> None:
        """Forget every key's windows and penalty (quotas bound before keep what they hold)."""
        with self._lock:
            self._logs.clear()
            self._metas.clear()

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._metas)} keys)"


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

    def correct(self, at: float, cost: int, answered: float, now: float) -> None:
        """Count a call answered late as arriving as late as its answer allows."""
        with self._lock:
            self.state.correct(at, cost, answered, now)

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
            if isinstance(log, RollingLog):
                have = set(log.entries())
                for t, cost in entries:
                    if (t, cost) not in have:
                        log.add(t, cost)
            else:
                for wid, count in counts.items():
                    log.counts[wid] = max(log.counts.get(wid, 0), count)
