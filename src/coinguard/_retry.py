"""Retry policy and decisions: pure functions, driven by tenacity in the two client shells.

What is retried: connection errors and timeouts that happened before the request could reach the
server; 408, 429, 500, 502, 503, 504 and what the provider marks retryable. A trade request is
only re-sent when the provider de-duplicates it (an idempotency key, an idempotent route), or
when its answer proves it was not executed (``not_executed_statuses``, from the provider). A
``Retry-After`` on any status sets the wait; one longer than 7 days or than what is left of the
deadline ends the call at once with that error (its ``retry_after`` says what the server asked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    CoinguardError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
)
from ._headers import MAX_RETRY_AFTER

__all__ = [
    "CallState",
    "RetryDetails",
    "RetryPolicy",
    "final_error",
    "interrupted",
    "is_retryable",
    "make_retrying_kwargs",
]

log = logging.getLogger("coinguard.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried. Immutable; derive variants with :func:`dataclasses.replace`.

    >>> RetryPolicy(max_retries=5).deadline
    60.0
    """

    max_retries: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    deadline: float = 60.0
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    respect_retry_after: bool = True
    not_executed_statuses: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("RetryPolicy values must not be negative")
        if not self.deadline > 0:
            raise ValueError("RetryPolicy.deadline must be positive seconds")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full-jitter exponential backoff for the given attempt number (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        return ceiling * rng()


@dataclass(frozen=True)
class RetryDetails:
    """What the ``on_retry`` hook receives before each retry sleep."""

    attempt: int
    wait: float
    reason: str
    method: str
    path: str
    key_fingerprint: str | None = None


@dataclass
class CallState:
    """Mutable bookkeeping for one logical call (one per call, never shared)."""

    started: float
    reloaded_key: bool = False
    reload_pending: bool = False
    key_generation: int = 0
    secret_generation: int = 0  # of the signing secret paired with the key
    unknown: OrderOutcomeUnknownError | None = None  # an attempt that may have executed
    resynced: bool = False  # the provider's clock was measured again after it refused ours
    attempts: int = 0  # counted only when the client has observers
    call_id: str = ""


def interrupted(state: CallState) -> None:
    """A call interrupted between attempts (Ctrl+C, a cancelled task) after an attempt that
    may have executed an order: say so on ``coinguard.retry``, since the interruption's own
    exception cannot."""
    unknown = state.unknown
    if unknown is not None:
        log.warning(
            "interrupted after %s %s may have executed (idempotency key %s): reconcile before "
            "sending it again",
            unknown.method,
            unknown.url,  # redacted and without its query string, as every error's url
            unknown.idempotency_key,
        )


def final_error(exc: CoinguardError, state: CallState) -> CoinguardError:
    """The error a call ends with: once an attempt may have executed the order, a later
    failure (a quota wait, a refused connection, a store error) must not read as "nothing
    happened", or a caller who tries again places a second order.
    """
    unknown = state.unknown
    if unknown is None or isinstance(exc, OrderOutcomeUnknownError):
        return exc
    return OrderOutcomeUnknownError(
        f"{unknown} The retry then failed: {type(exc).__name__}: {exc}",
        idempotency_key=unknown.idempotency_key,
        sent_at=unknown.sent_at,
        status_code=unknown.status_code,
        body=unknown.body,
        request_id=unknown.request_id,
        method=unknown.method,
        url=unknown.url,
    )


def is_retryable(
    exc: BaseException, policy: RetryPolicy, *, idempotent: bool, state: CallState
) -> bool:
    """Decide whether this failure may be retried; pure.

    ``idempotent`` is true for reads and for trades that carry an idempotency key.
    """
    if isinstance(exc, AuthenticationError | PermissionDeniedError) and state.reload_pending:
        return True  # refused for its key, not executed: once more with the key reloaded
    if isinstance(exc, AuthenticationError):
        return False
    if isinstance(exc, OrderOutcomeUnknownError):
        return idempotent
    if isinstance(exc, APIConnectionError):
        return idempotent or not exc.request_sent
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        if isinstance(exc, RateLimitError) and status == 401:  # throttling sent as 401
            status = 429
        if status == 418 or status not in policy.retry_statuses or getattr(exc, "final", False):
            return False
        # A trade without de-duplication goes again only on an answer that proves it was not
        # executed; the provider says which (a 408 or 5xx never does: OrderOutcomeUnknownError).
        return idempotent or status in policy.not_executed_statuses
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


def make_retrying_kwargs(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    state: CallState,
    clock: Callable[[], float],
    rng: Callable[[], float],
    method: str,
    path: str,
    fingerprint: Callable[[], str | None],
    on_retry: Callable[[RetryDetails], None] | None,
    resend_note: str | None = None,
) -> dict[str, Any]:
    """Tenacity arguments for one call (retry, wait, stop, hook); the shell adds ``sleep``.

    ``resend_note`` says in the retry log line why re-sending this trade repeats nothing.
    """

    def retry(rs: tenacity.RetryCallState) -> bool:
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, OrderOutcomeUnknownError):
            state.unknown = exc
        return exc is not None and is_retryable(exc, policy, idempotent=idempotent, state=state)

    def wait(rs: tenacity.RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, AuthenticationError):
            return 0.0
        backoff = policy.backoff(rs.attempt_number, rng)
        after = getattr(exc, "retry_after", None) if policy.respect_retry_after else None
        return max(backoff, float(after or 0.0))

    def stop(rs: tenacity.RetryCallState) -> bool:
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, AuthenticationError):
            return False
        after = getattr(exc, "retry_after", None) if policy.respect_retry_after else None
        if after is not None and after > MAX_RETRY_AFTER:  # "not soon": say so, never retry early
            return True
        retries = rs.attempt_number - (1 if state.reloaded_key else 0)
        if retries > policy.max_retries:
            return True
        return clock() - state.started + rs.upcoming_sleep > policy.deadline

    def before_sleep(rs: tenacity.RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        details = RetryDetails(
            attempt=rs.attempt_number,
            wait=rs.upcoming_sleep,
            reason=_reason(exc) if exc else "unknown",
            method=method,
            path=path,
            key_fingerprint=fingerprint(),
        )
        log.info(
            "retrying %s %s after %s (attempt %d, waiting %.3fs, key %s)%s",
            method,
            path,
            details.reason,
            details.attempt,
            details.wait,
            details.key_fingerprint,
            f"; {resend_note}" if resend_note else "",
        )
        if on_retry is not None:
            on_retry(details)

    return {
        "retry": retry,
        "wait": wait,
        "stop": stop,
        "before_sleep": before_sleep,
        "reraise": True,
    }
