"""Retry decisions: pure functions, no clock, no network."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from coinguard import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    OrderOutcomeUnknownError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from coinguard._retry import CallState, is_retryable


def _status(cls: type[APIStatusError], code: int, **kw: object) -> APIStatusError:
    return cls("x", status_code=code, **kw)  # type: ignore[arg-type]


STATE = CallState(started=0.0)
POLICY = RetryPolicy()


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_for_reads(code: int) -> None:
    """Reads are retried on 408, 429 and the transient 5xx."""
    cls = RateLimitError if code == 429 else ServerError if code >= 500 else APIStatusError
    assert is_retryable(_status(cls, code), POLICY, idempotent=True, state=STATE)


@pytest.mark.parametrize("code", [400, 404, 409, 422, 501])
def test_other_statuses_are_final(code: int) -> None:
    """Other 4xx (and 501) are not retried."""
    assert not is_retryable(_status(APIStatusError, code), POLICY, idempotent=True, state=STATE)


def test_ip_ban_is_not_retried() -> None:
    """418 (Binance IP ban) is raised with its retry_after, not retried quickly."""
    exc = RateLimitError("ban", status_code=418, retry_after=120.0)
    assert not is_retryable(exc, POLICY, idempotent=True, state=STATE)


def test_trade_answers_only_retried_with_idempotency_or_proof() -> None:
    """A trade goes again only when de-duplicated or its answer proves it was not executed."""
    for exc in (_status(ServerError, 500), _status(APIStatusError, 408)):
        assert not is_retryable(exc, POLICY, idempotent=False, state=STATE)
        assert is_retryable(exc, POLICY, idempotent=True, state=STATE)
    throttled = _status(RateLimitError, 429)
    assert not is_retryable(throttled, POLICY, idempotent=False, state=STATE)
    proven = dataclasses.replace(POLICY, not_executed_statuses=frozenset({429}))
    assert is_retryable(throttled, proven, idempotent=False, state=STATE)
    assert not is_retryable(_status(RateLimitError, 418), proven, idempotent=True, state=STATE)


def test_connection_errors() -> None:
    """Not-sent errors are always safe; sent ones only when idempotent."""
    not_sent = APIConnectionError("c", request_sent=False)
    sent = APIConnectionError("c", request_sent=True)
    assert is_retryable(not_sent, POLICY, idempotent=False, state=STATE)
    assert not is_retryable(sent, POLICY, idempotent=False, state=STATE)
    assert is_retryable(sent, POLICY, idempotent=True, state=STATE)


def test_unknown_order_outcome_needs_idempotency() -> None:
    """An order lost in flight is re-sent only under the same idempotency key."""
    exc = OrderOutcomeUnknownError("o", idempotency_key=None, sent_at=datetime.now(timezone.utc))
    assert not is_retryable(exc, POLICY, idempotent=False, state=STATE)
    assert is_retryable(exc, POLICY, idempotent=True, state=STATE)


def test_401_retried_only_when_reload_armed() -> None:
    """A 401 is retried once, only after the key was reloaded."""
    exc = _status(AuthenticationError, 401)
    assert not is_retryable(exc, POLICY, idempotent=True, state=CallState(started=0.0))
    armed = CallState(started=0.0, reload_pending=True)
    assert is_retryable(exc, POLICY, idempotent=True, state=armed)


def test_backoff_full_jitter_is_capped() -> None:
    """Backoff doubles from 0.5 s to the 8 s cap, scaled by the jitter draw."""
    p = RetryPolicy()
    assert [p.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1, 2, 4, 8, 8]
    assert p.backoff(3, lambda: 0.25) == 0.5


def test_policy_is_a_validated_value() -> None:
    """Policies are frozen and reject nonsense."""
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)
    with pytest.raises(AttributeError):
        POLICY.max_retries = 9  # type: ignore[misc]
