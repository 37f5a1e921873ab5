"""Quota faults: headers that describe another window, duplicate windows, store failures,
released reservations, a wall clock that steps, and what the status says."""

from __future__ import annotations

import pytest
from quota_support import FakeClock

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import Quota, QuotaPolicy, QuotaStore, Window
from conftest import StoreFactory

LEGACY_MINUTE = {
    "X-RateLimit-Limit": "30",
    "X-RateLimit-Remaining": "29",
    "X-RateLimit-Reset": "60",
}


def _quota(store: QuotaStore, clock: FakeClock, *windows: Window, key: str = "k") -> Quota:
    return Quota(QuotaPolicy(windows), store=store, key_id=key, clock=clock, persist=None)


def test_a_per_minute_header_never_spends_the_month(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """With only a month window, an X-RateLimit header for a 30/min limit leaves the month be."""
    q = _quota(make_store(), clock, Window.per_month(10_000))
    q.reserve("GET", "/x")
    q.observe(200, LEGACY_MINUTE)
    assert q.status().windows[0].used == 1


def test_an_exhausted_foreign_server_window_waits_for_its_reset(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A server window of its own that is empty blocks until its reset, without touching ours."""
    q = _quota(make_store(), clock, Window.per_month(10_000), key="foreign")
    q.observe(200, {**LEGACY_MINUTE, "X-RateLimit-Remaining": "0"})
    status = q.status()
    assert status.windows[0].used == 0
    assert status.blocked_until is not None
    assert "x-ratelimit" in status.blocked_by
    assert q.reserve("GET", "/x").wait == pytest.approx(60.0)


def test_two_windows_of_one_length_count_each_call_once(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """[10/min, 100 per 60 s] admits 10 a minute, not 5: the stricter of the two applies once."""
    q = _quota(make_store(), clock, Window.per_minute(10), Window(100, 60.0), key="dup")
    assert [q.reserve("GET", "/x").wait for _ in range(10)] == [0.0] * 10
    with pytest.raises(QuotaExceededError) as info:
        q.reserve("GET", "/x")
    assert info.value.window == "10/min"
    assert [w.used for w in q.status().windows] == [10]
