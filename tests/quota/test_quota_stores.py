"""The same scenarios against every store: memory, SQLite and a real Redis server."""

from __future__ import annotations

import pathlib
import random
from datetime import datetime, timezone

import pytest
from quota_support import START, FakeClock, max_in_rolling, max_in_slots

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import Quota, QuotaPolicy, SQLiteStore, Window
from coinguard._quota._log import month_id
from conftest import StoreFactory

POLICY = QuotaPolicy(
    [Window.per_second(5), Window.per_minute(20, calendar=True), Window.per_month(100)],
    costs={"GET /daily-ohlcv*": 2},
    margin=0.05,  # the scenario table's expected times were worked out with this margin
)


def _quota(
    make_store: StoreFactory, clock: FakeClock, policy: QuotaPolicy = POLICY, **kw: object
) -> Quota:
    return Quota(policy, store=make_store(), key_id="tm:fp:1", clock=clock, persist=None, **kw)  # type: ignore[arg-type]


# (advance seconds, path, expected wait or "raise")
SCENARIOS: dict[str, list[tuple[float, str, float | str]]] = {
    "burst then queue": [(0, "/a", 0.0)] * 5 + [(0, "/a", 1.05), (0, "/a", 1.05)],
    "costs": [(0, "/daily-ohlcv", 0.0), (0, "/daily-ohlcv", 0.0), (0, "/daily-ohlcv", 1.05)],
    "window slides": [(0, "/a", 0.0)] * 5 + [(0.5, "/a", 0.55), (0.6, "/a", 0.0)],
    "minute cap": [(1.1, "/a", 0.0)] * 20 + [(1.1, "/a", 60.0 - 23.1)],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_table(make_store: StoreFactory, clock: FakeClock, name: str) -> None:
    """Every store gives the same waits for the same sequence of calls."""
    quota = _quota(make_store, clock)
    for advance, path, expected in SCENARIOS[name]:
        clock.sleep(advance)
        assert quota.reserve("GET", path).wait == pytest.approx(expected, abs=1e-5)


def test_random_load_is_exact(make_store: StoreFactory, clock: FakeClock) -> None:
    """Random arrivals and costs never over-fill a window, in every store."""
    rng = random.Random(7)
    quota = _quota(make_store, clock, max_wait=1e9)
    admitted = []
    for _ in range(150):
        clock.sleep(rng.expovariate(10.0))
        r = quota.reserve("GET", rng.choice(["/daily-ohlcv", "/a"]))
        admitted.append((r.at, r.cost))
    assert max_in_rolling(admitted, 1.0) <= 5
    assert max_in_slots(admitted, 60.0) <= 20
    months: dict[int, int] = {}
    for t, c in admitted:
        months[month_id(t)] = months.get(month_id(t), 0) + c
    assert max(months.values()) <= 100


def test_raise_mode_commits_nothing(make_store: StoreFactory, clock: FakeClock) -> None:
    """In raise mode a full window raises and the other windows do not count the call."""
    quota = _quota(make_store, clock, on_quota="raise")
    for _ in range(5):
        quota.reserve("GET", "/a")
    with pytest.raises(QuotaExceededError) as info:
        quota.reserve("GET", "/a")
    assert info.value.window == "5/s"
    assert info.value.retry_after == pytest.approx(1.05)
    assert [w.used for w in quota.status().windows] == [5, 5, 5]


def test_two_quotas_share_one_budget(make_store: StoreFactory, clock: FakeClock) -> None:
    """Two Quota objects with the same key_id on one store share the windows."""
    a, b = _quota(make_store, clock), _quota(make_store, clock)
    waits = [q.reserve("GET", "/a").wait for q in (a, b, a, b, a, b)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(1.05)


def test_penalty_box_is_shared(make_store: StoreFactory, clock: FakeClock) -> None:
    """A 429 with Retry-After blocks every Quota on the key until it expires."""
    a, b = _quota(make_store, clock), _quota(make_store, clock)
    a.observe(429, {"Retry-After": "30"})
    assert b.reserve("GET", "/a").wait == pytest.approx(30.0)
    status = b.status()
    assert status.blocked_until == datetime.fromtimestamp(START + 30, timezone.utc)
    assert "blocked until" in str(status)
    with pytest.raises(QuotaExceededError) as info:
        _quota(make_store, clock, on_quota="raise").reserve("GET", "/a")
    assert info.value.window == "server 429"


def test_418_without_retry_after_uses_a_default(make_store: StoreFactory, clock: FakeClock) -> None:
    """A ban without Retry-After still blocks briefly."""
    quota = _quota(make_store, clock)
    quota.observe(418, {})
    assert quota.reserve("GET", "/a").wait == pytest.approx(1.0)


def test_observe_lowers_remaining(make_store: StoreFactory, clock: FakeClock) -> None:
    """A server reporting less remaining lowers ours for the matching window only."""
    quota = _quota(make_store, clock)
    quota.reserve("GET", "/a")
    headers = {"RateLimit-Policy": '"m";q=20;w=60', "RateLimit": '"m";r=4;t=30'}
    quota.observe(200, headers)
    used = {w.name: w.used for w in quota.status().windows}
    assert used == {"5/s": 1, "20/min aligned": 16, "100/month": 1}


def test_observe_never_raises_remaining(make_store: StoreFactory, clock: FakeClock) -> None:
    """A server reporting more remaining than we count changes nothing."""
    quota = _quota(make_store, clock)
    for _ in range(3):
        quota.reserve("GET", "/a")
    quota.observe(200, {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "5"})
    assert [w.used for w in quota.status().windows] == [3, 3, 3]


def test_observe_rolling_filler_lives_a_full_window(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Cost learned from the server stays a whole window: its reset only says the oldest leaves."""
    quota = _quota(
        make_store, clock, policy=QuotaPolicy([Window.per_hour(10)], margin=0.0), max_wait=1e9
    )
    quota.observe(200, {"RateLimit-Policy": '"h";q=10;w=3600', "RateLimit": '"h";r=0;t=120'})
    r = quota.reserve("GET", "/a")
    assert r.wait == pytest.approx(3600.0)


def test_server_figure_counting_our_own_requests_adds_nothing(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """When the server's count is just our own calls, repeated syncs add no phantom cost."""
    quota = _quota(make_store, clock, policy=QuotaPolicy([Window.per_minute(600)], margin=0.0))
    for n in range(1, 31):
        quota.reserve("GET", "/a")
        clock.sleep(0.05)
        quota.observe(
            200, {"RateLimit-Policy": '"m";q=600;w=60', "RateLimit": f'"m";r={600 - n};t=59'}
        )
    assert quota.status().windows[0].used == 30


def test_binance_weight_matches_the_minute(make_store: StoreFactory, clock: FakeClock) -> None:
    """X-MBX-USED-WEIGHT-1M raises the clock-minute window to the weight used."""
    policy = QuotaPolicy([Window.per_minute(6000, calendar=True), Window.per_second(100)])
    quota = _quota(make_store, clock, policy=policy)
    quota.observe(200, {"x-mbx-used-weight-1m": "5990"})
    assert [w.used for w in quota.status().windows] == [5990, 0]


def test_credit_count_debits_the_difference(make_store: StoreFactory, clock: FakeClock) -> None:
    """A body charging more credits than reserved debits the extra in every window."""
    quota = _quota(make_store, clock)
    r = quota.reserve("GET", "/a")
    quota.observe(200, {}, {"status": {"credit_count": 4}}, reservation=r)
    assert [w.used for w in quota.status().windows] == [4, 4, 4]


def test_status_values(make_store: StoreFactory, clock: FakeClock) -> None:
    """Status reports used, remaining and when each window resets."""
    quota = _quota(make_store, clock)
    quota.reserve("GET", "/daily-ohlcv")
    s = quota.status()
    assert [(w.name, w.used, w.remaining) for w in s.windows] == [
        ("5/s", 2, 3),
        ("20/min aligned", 2, 18),
        ("100/month", 2, 98),
    ]
    utc = timezone.utc
    assert s.windows[0].resets_at == datetime.fromtimestamp(START + 1.05, utc)
    assert s.windows[1].resets_at == datetime(2027, 1, 15, 8, 1, tzinfo=utc)
    assert s.windows[2].resets_at == datetime(2027, 2, 1, tzinfo=utc)
    assert s.blocked_until is None
    assert "100/month" in str(s)
    assert "resets at" in str(s)


def test_month_boundary_in_every_store(make_store: StoreFactory) -> None:
    """The month slot (Lua and Python alike) rolls over at 00:00 UTC on the 1st."""
    clock = FakeClock(datetime(2028, 2, 29, 23, 59, 59, tzinfo=timezone.utc).timestamp())
    quota = _quota(make_store, clock, policy=QuotaPolicy([Window.per_month(1)], margin=0.0))
    quota.reserve("GET", "/a")
    r = quota.reserve("GET", "/a")
    assert r.at == datetime(2028, 3, 1, tzinfo=timezone.utc).timestamp()
    clock.now = datetime(1999, 12, 31, 23, 0, tzinfo=timezone.utc).timestamp()
    other = Quota(
        QuotaPolicy([Window.per_month(5)]),
        store=make_store(),
        key_id="y2k",
        clock=clock,
        persist=None,
    )
    assert other.status().windows[0].resets_at == datetime(2000, 1, 1, tzinfo=timezone.utc)


def test_sqlite_keeps_the_previous_calendar_slot(tmp_path: pathlib.Path) -> None:
    """A call in the next clock minute does not erase the previous one: a wall clock stepped
    back into it still finds it full, as the memory store does."""
    start = 1_800_000_000.0 - 1_800_000_000.0 % 60 + 59.0  # :59 of some minute
    now = [start]
    policy = QuotaPolicy([Window.per_minute(3, calendar=True)], margin=0.0)
    quota = Quota(
        policy, store=SQLiteStore(tmp_path / "q.db"), key_id="slots", clock=lambda: now[0],
        persist=None, on_quota="raise",
    )  # fmt: skip
    for _ in range(2):
        quota.reserve("GET", "/x")
    now[0] = start + 1.5  # the next minute
    quota.reserve("GET", "/x")
    now[0] = start - 1.0  # stepped back into the first minute: one slot left there
    quota.reserve("GET", "/x")
    with pytest.raises(QuotaExceededError):
        quota.reserve("GET", "/x")
