"""The steps an attempt is made of (sans-I/O): what the sync and async shells carry out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import httpx

__all__ = ["Run", "Send", "Sleep"]

_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


class Send(NamedTuple):
    """Send this request with this auth flow (None: without the key); answer the response."""

    request: httpx.Request
    auth: httpx.Auth | None


class Sleep(NamedTuple):
    """Wait this many seconds (the injected sleep)."""

    seconds: float


class Run(NamedTuple):
    """Call ``func``; ``blocking`` means it may do I/O (keep it off an event loop)."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    blocking: bool = False
    kwargs: Mapping[str, Any] = _NO_KWARGS
