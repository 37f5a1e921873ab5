"""Tool errors a model can act on: a kind, a short redacted message, a retry-after.

Never a key (every message goes through :func:`coinguard.redact`), never a stack trace, never
the text of a foreign exception, and never how to gain a right the agent lacks.
"""

from __future__ import annotations

from pydantic import ValidationError

from ._budget import seconds_text
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BudgetExceededError,
    CoinguardError,
    ConfigurationError,
    InsecureTransportError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    QuotaExceededError,
    QuotaStoreError,
    RateLimitError,
    ResponseDecodeError,
    ScopeError,
    TradeRefusedError,
)
from ._paging import PaginationError
from ._redact import redact

__all__ = ["describe_error", "validation_text"]


def validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "invalid arguments: " + "; ".join(parts)


def describe_error(exc: Exception) -> tuple[str, str, float | None]:
    """An exception as ``(kind, message, retry_after)`` a model can act on.

    Never a key (the message goes through :func:`coinguard.redact`), never a stack trace, and
    never how to gain a right the agent lacks.

    >>> describe_error(ScopeError("anything"))
    ('not_allowed', 'this tool set is read-only: trading is not available', None)
    """
    if isinstance(exc, BudgetExceededError):
        return "budget_spent", str(exc), None
    if isinstance(exc, TradeRefusedError):
        return "refused", str(exc), None
    if isinstance(exc, OrderOutcomeUnknownError):
        return (
            "outcome_unknown",
            "the order may have been placed: do not place it again before checking the "
            "account's orders",
            None,
        )
    if isinstance(exc, ScopeError):
        return "not_allowed", "this tool set is read-only: trading is not available", None
    if isinstance(exc, InsecureTransportError):
        return "not_allowed", "only the provider's own address can be called", None
    if isinstance(exc, QuotaExceededError):
        wait = exc.retry_after
        return "rate_limited", f"rate limited ({exc.window}), retry in {seconds_text(wait)}", wait
    if isinstance(exc, PaginationError) and isinstance(exc.error, CoinguardError):
        return describe_error(exc.error)
    if isinstance(exc, RateLimitError):
        if exc.final:
            return "rate_limited", "the provider's allowance for this period is spent", None
        later = exc.retry_after
        if later is None:
            return "rate_limited", "rate limited by the provider, retry later", None
        return (
            "rate_limited",
            f"rate limited by the provider, retry in {seconds_text(later)}",
            later,
        )
    if isinstance(exc, AuthenticationError):
        return "unavailable", "the provider refused the configured key (401)", None
    if isinstance(exc, PermissionDeniedError):
        return "unavailable", "the provider's plan or key does not allow this call (403)", None
    if isinstance(exc, NotFoundError):
        return "not_found", "the provider has no such item (404)", None
    if isinstance(exc, APIStatusError):
        return "provider_error", _short(f"the provider answered {exc.status_code}: {exc}"), None
    if isinstance(exc, ResponseDecodeError):
        return "provider_error", "the provider's answer could not be read", None
    if isinstance(exc, APIConnectionError):
        return "unavailable", "the provider could not be reached, retry later", None
    if isinstance(exc, QuotaStoreError):
        return "unavailable", "the budget store failed; nothing was sent", None
    if isinstance(exc, ConfigurationError):
        return "invalid_arguments", _short(str(exc)), None
    return "internal_error", f"the tool failed ({type(exc).__name__}); nothing more is known", None


def _short(text: str) -> str:
    text = redact(text)
    return text if len(text) <= 300 else text[:297] + "..."
