"""State a provider keeps per API key that every client of the key must share (sans-I/O):
Kraken's nonces and its decaying call counter, both kept in the quota store, so the
processes and machines sharing the store share them. Each is one atomic store step; the
generators here yield it as a blocking :class:`Run` when the store does I/O.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ._exceptions import ConfigurationError
from ._quota import DecayingCounter, QuotaStore, shared_memory_store
from ._quota._counter import CounterStore
from ._quota._store import NonceStore
from ._steps import Run, Sleep

__all__ = ["counter_fill", "draw_nonce", "shared_store", "take_counter"]


def shared_store(store: str | QuotaStore | None, provider: str, what: str) -> Any:
    """The store a client's per-key state lives in: its quota store (``"memory"``, or none
    given: this process's shared memory store)."""
    if store is None or isinstance(store, str):
        return shared_memory_store()
    if not isinstance(store, NonceStore) or not isinstance(store, CounterStore):
        raise ConfigurationError(
            f"provider {provider!r} keeps its {what} in the quota store, and "
            f"{type(store).__name__} cannot; use the memory, SQLite or Redis store"
        )
    return store


def draw_nonce(store: Any, key_id: str, floor: int) -> Generator[Run, Any, int]:
    """The next nonce of ``key_id``: above every one the store gave out, at least ``floor``."""
    if store.blocking:
        return int((yield Run(store.next_nonce, (key_id, floor), blocking=True)))
    return int(store.next_nonce(key_id, floor))


def take_counter(
    store: Any, key_id: str, counter: DecayingCounter, cost: int, now: float, max_wait: float
) -> Generator[Run | Sleep, Any, None]:
    """Admit ``cost`` on the counter and wait until the admission time (a wait longer than
    ``max_wait`` raises :class:`QuotaExceededError`, committing nothing)."""
    args = (key_id, counter, cost, now, max_wait)
    if store.blocking:
        at, store_now = yield Run(store.counter_take, args, blocking=True)
    else:
        at, store_now = store.counter_take(*args)
    if at > store_now:
        yield Sleep(at - store_now)


def counter_fill(store: Any, key_id: str, counter: DecayingCounter, now: float) -> Run:
    """The step that counts the counter full (the provider refused a call for it)."""
    return Run(store.counter_fill, (key_id, counter, now), blocking=store.blocking)
