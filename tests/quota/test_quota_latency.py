"""A simulated server enforcing the same limits on arrival times never answers 429."""

from __future__ import annotations

import random
from collections import deque

import pytest
from quota_support import START, FakeClock

from coinguard._quota import MemoryStore, Quota, QuotaPolicy, Window


class ExactServer:
    """Counts arrivals in a rolling (or clock-aligned) window and answers 429 above the limit."""

    def __init__(self, limit: int, seconds: float, *, aligned: bool = False) -> None:
        self.limit, self.seconds, self.aligned = limit, seconds, aligned
        self.arrivals: deque[float] = deque()
        self.rejected = 0

    def arrive(self, t: float) -> None:
        if self.aligned:
            slot = t // self.seconds
            while self.arrivals and self.arrivals[0] // self.seconds != slot:
                self.arrivals.popleft()
        else:
            while self.arrivals and self.arrivals[0] + self.seconds <= t:
                self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            self.rejected += 1
        else:
            self.arrivals.append(t)


@pytest.mark.parametrize(
    ("window", "calls", "utilisation"),
    [
        (Window.per_second(10), 3000, 0.92),  # a 1 s window spans 1 s + the 40-85 ms answer
        (Window.per_minute(100), 3000, 0.99),
        (Window.per_minute(100, calendar=True), 3000, 0.98),
    ],
)
def test_latency_jitter_never_trips_the_server(
    window: Window, calls: int, utilisation: float
) -> None:
    """30-75 ms from admission to arrival, answered 10 ms later, one caller at a time: the
    default margin (10 ms) plus recounting late answers avoids every 429 at high utilisation."""
    rng = random.Random(3)
    clock = FakeClock()
    policy = QuotaPolicy([window])
    quota = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None)
    server = ExactServer(window.limit, window.seconds, aligned=window.calendar)
    arrivals = []
    for _ in range(calls):
        r = quota.reserve("GET", "/x")
        clock.sleep(r.wait)
        r = quota.sent(r)
        assert r.wait == 0
        arrival = clock.now + 0.030 + rng.uniform(0.0, 0.045)
        arrivals.append(arrival)
        quota.answered(r, at=arrival + 0.010)
    for t in sorted(arrivals):
        server.arrive(t)
    assert server.rejected == 0
    span = arrivals[-1] - START
    periods = span / window.seconds + 1
    assert calls / (window.limit * periods) >= utilisation
