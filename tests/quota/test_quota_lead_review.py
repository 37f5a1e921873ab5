"""The round-trip lead (``Quota.took``) must never let the client exceed a declared limit:
a calendar window still counts a call in the slot its answer came in, and a store shared by
workers on different networks cannot trust one worker's round trips for another's calls."""

from __future__ import annotations

import heapq
import random
from typing import Any

import pytest
from quota_support import START, FakeClock, max_in_rolling

from coinguard._quota import MemoryStore, Quota, QuotaPolicy, Reservation, Window


def _learned(quota: Quota, rtt: float) -> None:
    """Tell the quota eight equal round trips, as a client on a steady network would."""
    for _ in range(8):
        quota.took(0.0, rtt)


@pytest.mark.parametrize("told", [False, True])
def test_a_call_answered_in_the_next_calendar_slot_counts_there(told: bool) -> None:
    """Admitted at .95, stamped at 1.00 and answered at 1.05 (100 ms round trips): the server
    counts it in the next clock-aligned second, so that second admits only 19 more."""
    clock = FakeClock(START + 0.95)
    quota = Quota(
        QuotaPolicy([Window(20, 1.0, calendar=True)], margin=0.01),
        store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None,
    )  # fmt: skip
    if told:
        _learned(quota, 0.1)
        assert quota.lead == pytest.approx(0.1)
    first = quota.reserve("GET", "/x")
    assert first.wait == 0
    clock.now = START + 1.05
    quota.answered(first, at=clock())
    waits = [quota.reserve("GET", "/x").wait for _ in range(20)]
    assert waits[-1] > 0, "21 calls would reach the server in one clock-aligned second"


def _two_networks(told: bool, seed: int) -> tuple[int, float]:
    """Sixteen workers 50 ms each way from the server and sixteen 1 ms away, one key, one
    store (a 20/s rolling window); the most the server stamps in a second, and the far
    workers' lead."""
    clock = FakeClock()
    store = MemoryStore()
    policy = QuotaPolicy([Window.per_second(20)], margin=0.01)
    hosts = [
        (Quota(policy, store=store, key_id="k", clock=clock, max_wait=1e9, persist=None), legs)
        for legs in ((0.05, 0.052), (0.0005, 0.001))
    ]
    rng = random.Random(seed)
    events: list[tuple[float, int, str, int, Reservation | None, float]] = []
    arrivals: list[tuple[float, int]] = []
    seq = started = 0

    def push(t: float, kind: str, host: int, r: Reservation | None, left: float = 0.0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, host, r, left))

    for host in (0, 1):
        for _ in range(16):
            push(START, "start", host, None)
    while events:
        t, _, kind, host, r, left = heapq.heappop(events)
        clock.now = max(clock.now, t)
        quota, legs = hosts[host]
        if kind == "start":
            if started == 1200:
                continue
            started += 1
            r = quota.reserve("GET", "/x")
            push(clock.now + r.wait, "wake", host, r)
        elif kind == "wake":
            assert r is not None
            r = quota.sent(r, at=clock.now)
            if r.wait > 0:
                push(clock.now + r.wait, "wake", host, r)
                continue
            stamp = clock.now + rng.uniform(*legs)
            arrivals.append((stamp, r.cost))
            push(stamp + rng.uniform(*legs), "answer", host, r, clock.now)
        else:
            assert r is not None
            if told:
                quota.took(left, clock.now)
            quota.answered(r, at=clock.now)
            push(clock.now, "start", host, None)
    return max_in_rolling(arrivals, 1.0), hosts[0][0].lead


def test_without_round_trips_two_networks_stay_under_the_limit() -> None:
    """The control: the plain recount keeps workers on two networks under 20/s."""
    assert all(_two_networks(False, seed)[0] <= 20 for seed in range(3))


def test_a_lead_learned_far_away_does_not_overrun_a_near_worker() -> None:
    """A far worker's round trips say nothing about how soon a near worker's call is stamped."""
    for seed in range(3):
        most, lead = _two_networks(True, seed)
        assert lead > 0.09  # the far worker did learn its 100 ms round trips
        assert most <= 20


class _Interleaved(list[float]):
    """The quota's list of fastest trips, where another thread's trip lands between one
    thread's look at how many trips there are and its insert (as a thread switch may)."""

    def __init__(self, quota: Quota) -> None:
        super().__init__()
        self.quota, self.armed = quota, True

    def insert(self, index: Any, value: float) -> None:
        if self.armed and len(self) == 7:
            self.armed = False
            self.quota.took(0.0, 0.06)
        super().insert(index, value)


def test_trips_told_from_two_threads_at_once_keep_eight() -> None:
    """Threads tell the quota their trips without a lock: the list stays 8 long and the
    lead is set once 8 are in, however two of them interleave."""
    quota = Quota(QuotaPolicy([Window.per_second(5)]), key_id="k", persist=None)
    quota._fast = _Interleaved(quota)
    for _ in range(8):
        quota.took(0.0, 0.05)
    for _ in range(100):
        quota.took(0.0, 0.07)
    assert len(quota._fast) == 8
    assert quota.lead == pytest.approx(0.05)  # the 60 ms trip fell out: 2 * 50 ms - 50 ms
