"""Exactness of the window algorithm (memory store, fake clock)."""

from __future__ import annotations

import random
import threading

import pytest
from quota_support import START, FakeClock, max_in_rolling, max_in_slots

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import MemoryStore, Quota, QuotaPolicy, Window
from coinguard._quota._log import RollingLog, month_id, month_start


def _quota(policy: QuotaPolicy, clock: FakeClock, **kw: object) -> Quota:
    return Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(40))
def test_random_arrivals_never_exceed_any_window(seed: int) -> None:
    """No half-open interval of any declared length ever holds more than its limit."""
    rng = random.Random(seed)
    windows = [Window(rng.randint(3, 12), rng.choice([0.5, 1.0, 2.0]))]
    if rng.random() < 0.7:
        windows.append(Window(rng.randint(20, 40), rng.choice([5.0, 10.0])))
    if rng.random() < 0.5:
        windows.append(Window(rng.randint(15, 60), 10.0, calendar=True))
    costs = {"GET /heavy*": rng.randint(1, 3)}
    policy = QuotaPolicy(windows, costs=costs, margin=rng.choice([0.0, 0.05]))
    clock = FakeClock(START + rng.random())
    quota = _quota(policy, clock, max_wait=1e9)
    admitted = []
    for _ in range(400):
        clock.sleep(rng.expovariate(rng.choice([2.0, 20.0, 200.0])))
        r = quota.reserve("GET", rng.choice(["/heavy/x", "/light"]))
        assert r.wait >= 0
        assert r.at >= clock.now
        admitted.append((r.at, r.cost))
    for w in windows:
        if w.calendar:
            assert max_in_slots(admitted, w.seconds) <= w.limit
        else:
            assert max_in_rolling(admitted, w.seconds) <= w.limit


def test_sustained_load_uses_the_whole_budget() -> None:
    """Under saturating load with no margin, >= 98 % of the allowed rate is admitted."""
    clock = FakeClock()
    quota = _quota(QuotaPolicy([Window.per_second(50)], margin=0.0), clock, max_wait=1e9)
    admitted = []
    for _ in range(5000):
        admitted.append((quota.reserve("GET", "/x").at, 1))
        clock.sleep(0.001)
    assert max_in_rolling(admitted, 1.0) <= 50
    assert 5000 / (admitted[-1][0] - START + 1.0) >= 0.98 * 50


def test_idle_burst_is_immediate() -> None:
    """A 5/s plan, idle, lets 5 calls go at once and makes the 6th wait."""
    clock = FakeClock()
    quota = _quota(QuotaPolicy([Window.per_second(5)], margin=0.0), clock)
    waits = [quota.reserve("GET", "/x").wait for _ in range(6)]
    assert waits == [0, 0, 0, 0, 0, 1.0]


def test_no_double_burst_at_a_window_edge() -> None:
    """After a burst at the end of a window, the next burst waits a full window."""
    clock = FakeClock()
    quota = _quota(QuotaPolicy([Window.per_second(5)], margin=0.0), clock)
    clock.sleep(0.9)
    assert all(quota.reserve("GET", "/x").wait == 0 for _ in range(5))
    clock.sleep(0.2)  # a fixed-window counter would have reset here
    assert quota.reserve("GET", "/x").wait == pytest.approx(0.8)


def test_fifo_with_mixed_costs() -> None:
    """A cheap call queued after an expensive one is never admitted before it."""
    clock = FakeClock()
    policy = QuotaPolicy([Window.per_second(4)], costs={"GET /big": 3}, margin=0.0)
    quota = _quota(policy, clock)
    quota.reserve("GET", "/x")
    quota.reserve("GET", "/x")
    big = quota.reserve("GET", "/big")
    small = quota.reserve("GET", "/x")
    assert big.wait == pytest.approx(1.0)
    assert small.at >= big.at


def test_multi_window_rejection_commits_nothing() -> None:
    """A call refused by one window leaves every other window untouched."""
    clock = FakeClock()
    policy = QuotaPolicy([Window.per_second(10), Window.per_minute(3)], margin=0.0)
    quota = _quota(policy, clock, on_quota="raise")
    for _ in range(3):
        quota.reserve("GET", "/x")
    with pytest.raises(QuotaExceededError) as info:
        quota.reserve("GET", "/x")
    assert info.value.window == "3/min"
    assert info.value.retry_after == pytest.approx(60.0)
    assert [w.used for w in quota.status().windows] == [3, 3]


def test_max_wait_raises_without_committing() -> None:
    """A wait above max_wait raises with the wait as retry_after, and commits nothing."""
    clock = FakeClock()
    quota = _quota(QuotaPolicy([Window.per_minute(2)], margin=0.0), clock, max_wait=10.0)
    quota.reserve("GET", "/x")
    quota.reserve("GET", "/x")
    with pytest.raises(QuotaExceededError) as info:
        quota.reserve("GET", "/x")
    assert info.value.retry_after == pytest.approx(60.0)
    clock.sleep(60.0)
    assert quota.reserve("GET", "/x").wait == 0


def test_free_routes_are_not_counted() -> None:
    """A route of cost 0 never waits and never counts."""
    clock = FakeClock()
    quota = _quota(QuotaPolicy([Window.per_second(1)], costs={"/health": 0}), clock)
    quota.reserve("GET", "/x")
    assert quota.reserve("GET", "/health").wait == 0
    assert quota.status().windows[0].used == 1


def test_clock_minute_resets_on_the_boundary() -> None:
    """A clock-aligned minute refills at :00, not 60 s after the first call."""
    clock = FakeClock(START + 50.0)
    quota = _quota(QuotaPolicy([Window.per_minute(3, calendar=True)], margin=0.0), clock)
    for _ in range(3):
        quota.reserve("GET", "/x")
    assert quota.reserve("GET", "/x").at == START + 60.0


def test_calendar_margin_counts_late_calls_in_the_next_slot() -> None:
    """A call admitted just before the boundary also counts in the next slot."""
    clock = FakeClock(START + 59.99)
    quota = _quota(QuotaPolicy([Window.per_minute(2, calendar=True)], margin=0.05), clock)
    quota.reserve("GET", "/x")
    clock.sleep(0.02)
    quota.reserve("GET", "/x")
    assert quota.reserve("GET", "/x").at == START + 120.0


def test_month_rolls_over_in_utc() -> None:
    """The monthly budget refills at 00:00 UTC on the 1st."""
    end_of_jan = month_start(month_id(START) + 1) - 1.0
    clock = FakeClock(end_of_jan)
    quota = _quota(QuotaPolicy([Window.per_month(2)], margin=0.0), clock, max_wait=1e9)
    quota.reserve("GET", "/x")
    quota.reserve("GET", "/x")
    r = quota.reserve("GET", "/x")
    assert r.wait == pytest.approx(1.0)
    assert quota.status().windows[0].resets_at is not None


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [(0.0, 1970 * 12), (1_798_761_599.0, 2026 * 12 + 11), (1_798_761_600.0, 2027 * 12)],
)
def test_month_id_is_the_utc_month(stamp: float, expected: int) -> None:
    """Month ids follow the UTC calendar, including a year rollover."""
    assert month_id(stamp) == expected
    assert month_start(expected) <= stamp < month_start(expected + 1)


def test_rolling_log_compacts_and_keeps_sums() -> None:
    """After many prunes the ring buffer compacts and its running sums stay right."""
    log = RollingLog(1.0)
    for i in range(1000):
        log.prune(i * 0.01)
        log.commit(i * 0.01, 1 + i % 3)
    log.prune(9.995)
    assert log.used() == sum(c for _, c in log.entries())
    assert len(log.times) < 1000


def test_sixteen_threads_stay_exact() -> None:
    """16 threads hammering one memory store never over-admit."""
    lock = threading.Lock()
    ticks = [START]

    def clock() -> float:
        with lock:
            ticks[0] += 0.0003
            return ticks[0]

    store = MemoryStore()
    policy = QuotaPolicy([Window.per_second(20), Window(50, 5.0)], margin=0.0)
    admitted: list[tuple[float, int]] = []

    def work() -> None:
        quota = Quota(policy, store=store, key_id="k", clock=clock, max_wait=1e9, persist=None)
        mine = [(quota.reserve("GET", "/x").at, 1) for _ in range(200)]
        with lock:
            admitted.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 3200
    assert max_in_rolling(admitted, 1.0) <= 20
    assert max_in_rolling(admitted, 5.0) <= 50
