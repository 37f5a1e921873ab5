"""What the step generator notes about each attempt for the observers, and which observers a
client gets: its audit log (an argument or ``COINGUARD_AUDIT_LOG``) first, then the others."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import httpx

from ._audit import AuditLog
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CoinguardError,
    ConfigurationError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ScopeError,
    ServerError,
)
from ._observe import Observer
from ._secret import Secret

__all__ = ["AuditArg", "Note", "next_call_id", "observers_for", "outcome_of"]

#: The audit argument: a file path or an :class:`AuditLog`; None reads ``COINGUARD_AUDIT_LOG``,
#: False turns the audit log off whatever the environment says.
AuditArg = AuditLog | str | os.PathLike[str] | bool | None

# the outcome word of an audit record, most specific class first
_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (OrderOutcomeUnknownError, "outcome_unknown"),
    (APITimeoutError, "timeout"),
    (APIConnectionError, "connection"),
    (AuthenticationError, "auth"),
    (PermissionDeniedError, "permission"),
    (RateLimitError, "rate_limited"),
    (NotFoundError, "not_found"),
    (ServerError, "server_error"),
    (APIStatusError, "status"),
    (QuotaExceededError, "quota_exceeded"),
    (ScopeError, "scope"),
    (CoinguardError, "error"),
    (Exception, "error"),
)


def outcome_of(exc: BaseException | None) -> str:
    """The outcome word of an attempt that ended with ``exc`` (None: it succeeded)."""
    if exc is None:
        return "ok"
    for cls, word in _OUTCOMES:
        if isinstance(exc, cls):
            return word
    return "interrupted"  # KeyboardInterrupt, a cancelled task


# call ids: random per process, counted within it (unique across workers, cheap per call)
_CALL_PREFIX = os.urandom(4).hex()
_CALL_IDS = itertools.count(1)


def next_call_id() -> str:
    """A new id for the attempts of one call."""
    return f"{_CALL_PREFIX}{next(_CALL_IDS):08x}"


class Note:
    """What the step generator saw during one attempt, for its audit record."""

    __slots__ = ("answered", "cost", "response", "secret", "sent", "started", "url", "wait")

    def __init__(self, started: float) -> None:
        self.started = started
        self.secret: Secret | None = None
        self.cost: int | None = None
        self.wait = 0.0
        self.sent: float | None = None
        self.answered: float | None = None
        self.url: httpx.URL | None = None
        self.response: httpx.Response | None = None


def observers_for(
    audit: AuditArg, observers: Sequence[Observer], env_log: str | None, client: Any
) -> tuple[tuple[Observer, ...], AuditLog | None]:
    """The observers of ``client``, its audit log first (``env_log`` when ``audit`` is None),
    and the log it opened itself (to close with the client)."""
    if isinstance(observers, str) or not all(
        callable(getattr(o, "attempt", None)) for o in observers
    ):
        raise ConfigurationError(
            "observers must be a list of objects with an attempt(record) method "
            "(AuditLog, Watch, Tracing, Metrics)"
        )
    if audit is None:
        audit = env_log or None
    own: AuditLog | None = None
    if audit is True:
        raise ConfigurationError("audit=True names no file: pass audit='calls.jsonl'")
    if isinstance(audit, str | os.PathLike):
        if not str(audit).strip():
            raise ConfigurationError("audit must name a file, got an empty string")
        own = audit = AuditLog(audit)
    elif audit is not False and audit is not None and not isinstance(audit, AuditLog):
        raise ConfigurationError(
            f"audit must be a file path, an AuditLog or False, got {type(audit).__name__}"
        )
    first = (audit,) if isinstance(audit, AuditLog) else ()
    for observer in observers:
        bind = getattr(observer, "bind", None)
        if callable(bind):  # e.g. Metrics reads the client's quota when scraped
            bind(client)
    return (*first, *observers), own
