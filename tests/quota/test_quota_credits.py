"""Credit windows count what the provider bills; call windows count every request sent.

CoinGecko bills a credit per successful (HTTP 200) call but rate-limits every request;
CoinMarketCap bills ``status.credit_count`` (0 for an error) against its day and month while
its minute limit counts calls. Every store must agree.
"""

from __future__ import annotations

import pytest
from quota_support import FakeClock

from coinguard import ConfigurationError
from coinguard._quota import Quota, QuotaPolicy, Window
from conftest import StoreFactory

CREDIT_WINDOWS = [Window.per_day(50, credits=True), Window.per_month(1000, credits=True)]
CREDITS = QuotaPolicy([Window.per_minute(100), *CREDIT_WINDOWS], margin=0.0)


def _quota(make_store: StoreFactory, clock: FakeClock, policy: QuotaPolicy = CREDITS) -> Quota:
    return Quota(policy, store=make_store(), key_id="cg:fp:credits", clock=clock, persist=None)


def _used(quota: Quota) -> list[int]:
    status = quota.status()
    return [w.used for w in status.windows]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_an_error_answer_bills_no_credit_but_counts_as_a_call(
    make_store: StoreFactory, clock: FakeClock, status: int
) -> None:
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/simple/price")
    assert _used(quota) == [1, 1, 1]
    quota.observe(status, {}, None, reservation=r)
    assert _used(quota) == [1, 0, 0]


def test_a_success_keeps_its_credit(make_store: StoreFactory, clock: FakeClock) -> None:
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/simple/price")
    quota.observe(200, {}, {"bitcoin": {"usd": 1}}, reservation=r)
    assert _used(quota) == [1, 1, 1]


def test_credit_count_lands_on_credit_windows_only(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A listing billed 3 credits is still one call for the minute."""
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/v1/cryptocurrency/listings/latest")
    quota.observe(200, {}, {"status": {"credit_count": 3}}, reservation=r)
    assert _used(quota) == [1, 3, 3]


def test_credit_count_zero_on_an_http_200_error_refunds(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """The body is authoritative: a 200 saying it billed nothing bills nothing."""
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/v1/key/info")
    quota.observe(200, {}, {"status": {"credit_count": 0}}, reservation=r)
    assert _used(quota) == [1, 0, 0]


def test_an_unknown_outcome_keeps_the_credit(make_store: StoreFactory, clock: FakeClock) -> None:
    """No answer (a timeout, a reset): the call may have been billed, so it stays counted."""
    quota = _quota(make_store, clock)
    quota.reserve("GET", "/simple/price")
    assert _used(quota) == [1, 1, 1]


def test_a_refund_goes_to_the_slot_the_call_was_counted_in(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """An answer after midnight refunds yesterday's count, never today's (which would let
    today's calls go over)."""
    day = 86_400.0
    clock.now = (clock.now // day + 1) * day - 0.5
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/simple/price")
    clock.now += 1.0  # the next UTC day
    quota.reserve("GET", "/simple/price")
    quota.observe(500, {}, None, reservation=r)
    assert _used(quota)[1] == 1  # today's one call still counts


def test_refunds_never_go_below_zero(make_store: StoreFactory, clock: FakeClock) -> None:
    """A refund takes a count down to zero, never below."""
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/simple/price")
    quota.observe(500, {}, None, reservation=r)
    quota.observe(500, {}, None, reservation=r)
    assert _used(quota) == [1, 0, 0]


def test_without_credit_windows_a_credit_count_charges_every_window(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A policy that says nothing about credits stays conservative: every window pays, and an
    error answer refunds nothing."""
    policy = QuotaPolicy([Window.per_minute(100), Window.per_month(1000)], margin=0.0)
    quota = _quota(make_store, clock, policy)
    r = quota.reserve("GET", "/a")
    quota.observe(200, {}, {"status": {"credit_count": 4}}, reservation=r)
    r = quota.reserve("GET", "/a")
    quota.observe(500, {}, None, reservation=r)
    assert _used(quota) == [5, 5]


def test_refunded_credits_admit_calls_again(make_store: StoreFactory, clock: FakeClock) -> None:
    """With 2 credits a month, failed calls do not use them up."""
    policy = QuotaPolicy([Window.per_minute(100), Window.per_month(2, credits=True)], margin=0.0)
    quota = _quota(make_store, clock, policy)
    for _ in range(5):
        r = quota.reserve("GET", "/a", max_wait=0.0)
        assert r.wait == 0.0
        quota.observe(404, {}, None, reservation=r)
    assert _used(quota) == [5, 0]


def test_credit_windows_are_calendar_windows() -> None:
    with pytest.raises(ConfigurationError, match="calendar"):
        Window.per_minute(10, credits=True)
    with pytest.raises(ConfigurationError, match="credits"):
        Window(10, 60.0, calendar=True, credits="yes")  # type: ignore[arg-type]
    assert Window.per_minute(10, calendar=True, credits=True).credits
