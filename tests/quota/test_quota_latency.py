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
        (Window.per_second(10), 3000, 0.95),
        (Window.per_minute(100), 3000, 0.98),
        (Window.per_minute(100, calendar=True), 3000, 0.98),
    ],
)
def test_latency_jitter_never_trips_the_server(
    window: Window, calls: int, utilisation: float
) -> None:
    """With up to 45 ms of latency jitter the default margin avoids 429 at high utilisation."""
    rng = random.Random(3)
    clock = FakeClock()
    policy = QuotaPolicy([window])
    quota = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None)
    server = ExactServer(window.limit, window.seconds, aligned=window.calendar)
    arrivals = []
    for _ in range(calls):
        r = quota.reserve("GET", "/x")
        clock.sleep(r.wait)
        arrivals.append(clock.now + 0.030 + rng.uniform(0.0, 0.045))
    for t in sorted(arrivals):
        server.arrive(t)
    assert server.rejected == 0
    rate = calls / (clock.now - START + window.seconds)
    assert rate >= utilisation * window.limit / window.seconds
