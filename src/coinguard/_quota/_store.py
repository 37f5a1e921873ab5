"""The store protocol: where the windows of a key live, and how they are read and changed."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._log import Snapshot, Sync
from ._policy import WindowSpec

__all__ = ["NonceStore", "QuotaBucket", "QuotaStore"]


class QuotaBucket(Protocol):
    """The windows of one key in one store. Every method is one atomic step."""

    def reserve(self, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Commit ``cost`` at the earliest admissible time; return ``(at, now)``.

        ``now`` in the result is the key's time in the store: its clock reading (the Redis
        store uses the server's ``TIME``) plus the key's drift, the steps back that clock has
        taken (``KeyState.stepped``); ``at`` is on that timeline too, so the caller waits
        ``at - now``. The ``now`` arguments are plain clock readings. Raises
        ``QuotaExceededError`` and commits
        nothing if that wait exceeds ``max_wait``.
        """
        ...

    def settle(self, at: float, cost: int, now: float, max_wait: float) -> tuple[float, float]:
        """Re-check the reservation of ``cost`` at ``at`` as the call leaves at ``now``.

        Returns ``(at, now)`` with the store's clock reading; ``at`` is unchanged while the
        call still fits, else the call was admitted again at the earliest time that fits.
        """
        ...

    def release(self, at: float, cost: int, now: float) -> None:
        """Give back the reservation of ``cost`` at ``at``: its call was never sent (cancelled,
        interrupted). The FIFO tail goes back to the latest admission still held."""
        ...

    def correct(self, at: float, cost: int, answered: float, now: float, lead: float = 0.0) -> None:
        """Count the call admitted at ``at`` as if it reached the server as late as
        ``answered`` (store clock) allows, less ``lead`` in rolling windows."""
        ...

    def sync(self, sync: Sync, now: float) -> None:
        """Apply a server observation (raise counts, penalty box, extra cost)."""
        ...

    def snapshot(self, now: float) -> Snapshot:
        """Read used cost and reset time of every window, and the penalty."""
        ...


@runtime_checkable
class QuotaStore(Protocol):
    """Where quota state lives: ``MemoryStore``, ``SQLiteStore`` or ``RedisStore``.

    ``blocking`` says whether its calls do I/O (then an async caller runs them in a thread).
    """

    @property
    def blocking(self) -> bool:
        """True if calls may block on I/O."""
        ...

    def bind(self, key_id: str, specs: tuple[WindowSpec, ...]) -> QuotaBucket:
        """The bucket of ``key_id`` with these windows."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class NonceStore(Protocol):
    """A store that also hands out nonces: strictly increasing per key, across every client
    that shares it (``MemoryStore``, ``SQLiteStore`` and ``RedisStore`` all do)."""

    @property
    def blocking(self) -> bool:
        """True if calls may block on I/O."""
        ...

    def next_nonce(self, key_id: str, floor: int) -> int:
        """A nonce above every one given out for ``key_id``, and at least ``floor``."""
        ...
