"""Server sync on every store: repeated observations never compound; legacy headers fit a window."""

from __future__ import annotations

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
    """X-RateLimit-* names no window: with no limit, a 1 s reset lowers the per-second window."""
    q = _quota(make_store(), clock, "sync-c")
    q.observe(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"})
    by_name = {w.name: w for w in q.status().windows}
    assert by_name["50/s"].remaining == 0
    assert by_name["1000/min"].remaining == 1000


def test_legacy_headers_of_another_limit_are_a_server_window_of_their_own(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A legacy limit none of our windows has spends none of them; empty, it blocks to its reset."""
    q = _quota(make_store(), clock, "sync-d")
    q.observe(
        200, {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    )
    assert [w.used for w in q.status().windows] == [0, 0]
    assert q.reserve("GET", "/x").wait == 1.0


def test_a_call_that_leaves_on_time_adds_nothing(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Sending checks the reservation and adds no cost (late answers: test_quota_answers)."""
    policy = QuotaPolicy([Window.per_second(50)], margin=0.05)
    q = Quota(policy, store=make_store(), key_id="ontime", clock=clock, persist=None)
    r = q.reserve("GET", "/x")
    q.sent(r, at=clock() + 0.01)
    assert q.status().windows[0].used == 1
