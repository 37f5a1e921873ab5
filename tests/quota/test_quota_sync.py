"""Server sync on every store: repeated observations never compound; legacy headers fit a window."""

from __future__ import annotations

import pytest
from quota_support import FakeClock

from coinguard._quota import Quota, QuotaPolicy, QuotaStore, Window
from conftest import StoreFactory

IETF_EMPTY = {"RateLimit-Policy": '"w1";q=2;w=1', "RateLimit": '"w1";r=0;t=1'}


def _quota(store: QuotaStore, clock: FakeClock, key: str) -> Quota:
    policy = QuotaPolicy((Window.per_second(50), Window.per_minute(1000)), margin=0.0)
    return Quota(policy, store=store, key_id=key, clock=clock, persist=None)


def test_stricter_server_window_blocks_until_its_reset(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Server says 0 left for 1 s in a window we thought had 50: we wait that second."""
    q = _quota(make_store(), clock, "sync-a")
    q.reserve("GET", "/x")
    q.observe(200, IETF_EMPTY)
    assert q.reserve("GET", "/x").wait == 1.0


def test_repeated_observations_do_not_compound(make_store: StoreFactory, clock: FakeClock) -> None:
    """The same 'none left for 1 s' seen twice, a second apart, blocks one second each time."""
    q = _quota(make_store(), clock, "sync-b")
    q.observe(200, IETF_EMPTY)
    clock.sleep(1.0)
    q.observe(200, IETF_EMPTY)
    q.observe(200, IETF_EMPTY)
    assert q.reserve("GET", "/x").wait == 1.0


def test_legacy_headers_pick_the_shortest_window_that_fits(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """X-RateLimit-* names no window: a 1 s reset lowers the per-second window, not the minute."""
    q = _quota(make_store(), clock, "sync-c")
    q.observe(
        200, {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    )
    by_name = {w.name: w for w in q.status().windows}
    assert by_name["50/s"].remaining == 0
    assert by_name["1000/min"].remaining == 1000


def test_a_call_that_leaves_late_counts_from_when_it_left(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Woken 0.3 s late, a call might land in the server's next window: it counts there too."""
    policy = QuotaPolicy([Window.per_second(2)], margin=0.05)
    q = Quota(policy, store=make_store(), key_id="late", clock=clock, persist=None)
    first = q.reserve("GET", "/x")
    q.reserve("GET", "/x")
    clock.sleep(0.3)
    q.sent(first, at=clock())
    # Without the late count a third call could go at 1.05 s; the late one still fills 1.05..1.35.
    assert q.reserve("GET", "/x").wait == pytest.approx(1.05 - 0.3, abs=1e-6)
    assert q.status().windows[0].used == 4  # two, the late one again, and the third


def test_a_call_that_leaves_on_time_adds_nothing(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Within half the margin, sending adds no cost."""
    policy = QuotaPolicy([Window.per_second(50)], margin=0.05)
    q = Quota(policy, store=make_store(), key_id="ontime", clock=clock, persist=None)
    r = q.reserve("GET", "/x")
    q.sent(r, at=clock() + 0.01)
    assert q.status().windows[0].used == 1
