"""One logical API call, as the client core prepares it: classified, vetted, holding no key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from . import _redact
from ._provider import Scope

__all__ = ["SAFE_METHODS", "Call"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Call:
    """One logical API call, before any key is attached. Holds no secret."""

    method: str
    path: str
    url: httpx.URL
    scope: Scope
    params: Any
    json: Any
    content: Any
    headers: Mapping[str, str] | None
    idempotency_key: str | None
    idempotent: bool
    sent_at: datetime
    probe: bool = False  # a key check: sent with a scope's key, never an order
    raw: bool = False  # answer a Response (status, headers, body), not the body alone

    def describe(self) -> str:
        # the path may hold a live key (a caller put it there, or a server echoed it)
        return _redact.redact(f"{self.method} {self.path}")

    @property
    def is_order(self) -> bool:
        """A trade by an unsafe method: its outcome matters when the answer is lost."""
        return self.scope is Scope.TRADE and self.method not in SAFE_METHODS and not self.probe
