"""The quota engine: exact multi-window rate limits shared through a store.

Pure decisions (``_log``, ``_headers``), stores that keep them (``_memory``, ``_sqlite``,
``_redis``), and the :class:`Quota` facade the client calls.
"""

from __future__ import annotations

from .._headers import ServerQuota, ServerWindow, parse_server_quota
from ._counter import DecayingCounter
from ._limiter import (
    PERSIST_ENV,
    Quota,
    QuotaStatus,
    Reservation,
    WindowStatus,
    default_persist_path,
    open_store,
    shared_memory_store,
)
from ._memory import MemoryStore
from ._policy import MONTH, QuotaPolicy, Window
from ._redis import RedisStore
from ._sqlite import SQLiteStore
from ._store import QuotaStore

__all__ = [
    "MONTH",
    "PERSIST_ENV",
    "DecayingCounter",
    "MemoryStore",
    "Quota",
    "QuotaPolicy",
    "QuotaStatus",
    "QuotaStore",
    "RedisStore",
    "Reservation",
    "SQLiteStore",
    "ServerQuota",
    "ServerWindow",
    "Window",
    "WindowStatus",
    "default_persist_path",
    "open_store",
    "parse_server_quota",
    "shared_memory_store",
]
