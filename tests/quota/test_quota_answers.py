"""Late answers: a call counts until a window after its answer, and calls reserved ahead of a
recount are re-checked as they leave. Simulated with a fake clock and an exact server."""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from quota_support import START, FakeClock, max_in_rolling

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import MemoryStore, Quota, QuotaPolicy, Reservation, Window
from conftest import StoreFactory

Lag = Callable[[random.Random], float]


def simulate(
    quota: Quota,
    clock: FakeClock,
    *,
    workers: int,
    calls: int,
    lag: Lag,
    answer: Lag,
    seed: int,
    tell_answers: bool = True,
    tell_trips: bool = False,
) -> list[tuple[float, int]]:
    """Run ``workers`` callers that reserve, sleep, send, and are answered; return the server's
    arrival stamps. A call arrives ``lag`` after it left and is answered ``answer`` later.
    ``tell_trips``: also tell the quota each round trip (``Quota.took``), as the client does."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, Reservation | None]] = []
    left: dict[int, float] = {}
    seq = 0
    arrivals: list[tuple[float, int]] = []
    started = 0

    def push(t: float, kind: str, r: Reservation | None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, r))

    for _ in range(workers):
        push(START, "start", None)
    while events:
        t, _, kind, r = heapq.heappop(events)
        clock.now = max(clock.now, t)
        if kind == "start":
            if started == calls:
                continue
            started += 1
            r = quota.reserve("GET", "/x")
            push(clock.now + r.wait, "wake", r)
        elif kind == "wake":
            assert r is not None
            r = quota.sent(r, at=clock.now)
            if r.wait > 0:
                push(clock.now + r.wait, "wake", r)
                continue
            stamp = clock.now + lag(rng)
            arrivals.append((stamp, r.cost))
            left[id(r)] = clock.now
            push(stamp + answer(rng), "answer", r)
        else:
            assert r is not None
            if tell_trips:
                quota.took(left.pop(id(r)), clock.now)
            if tell_answers:
                quota.answered(r, at=clock.now)
            push(clock.now, "start", None)
    return arrivals


def on_store(
    make_store: StoreFactory,
    clock: FakeClock,
    *windows: Window,
    margin: float,
    max_wait: float = 60.0,
) -> Quota:
    """A quota on a fresh store of the parametrized kind, on the fake clock."""
    policy = QuotaPolicy(windows, margin=margin)
    return Quota(
        policy, store=make_store(), key_id="k", clock=clock, max_wait=max_wait, persist=None
    )


def spiky(rng: random.Random) -> float:
    """Mostly a few ms; one call in ten stalls up to 150 ms (a busy server, a GC pause)."""
    return rng.uniform(0.0, 0.004) if rng.random() < 0.9 else rng.uniform(0.02, 0.15)


def quick(rng: random.Random) -> float:
    return rng.uniform(0.0, 0.003)


@pytest.mark.parametrize("margin", [0.0, 0.01, 0.05])
def test_late_arrivals_never_exceed_the_servers_window(margin: float) -> None:
    """Arrival stamps up to 150 ms after sending, far beyond the margin: never over 20/s."""
    clock = FakeClock()
    quota = Quota(
        QuotaPolicy([Window.per_second(20)], margin=margin),
        store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None,
    )  # fmt: skip
    arrivals = simulate(quota, clock, workers=32, calls=2000, lag=spiky, answer=quick, seed=1)
    assert max_in_rolling(arrivals, 1.0) <= 20
    span = max(t for t, _ in arrivals) - START
    assert len(arrivals) / (20 * (span + 1)) > 0.85  # and the limit is still well used


def test_without_answers_the_same_load_trips_the_server() -> None:
    """The control: a margin alone does not cover such stalls."""
    clock = FakeClock()
    quota = Quota(
        QuotaPolicy([Window.per_second(20)], margin=0.01),
        store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None,
    )  # fmt: skip
    arrivals = simulate(
        quota, clock, workers=32, calls=2000, lag=spiky, answer=quick, seed=1, tell_answers=False
    )
    assert max_in_rolling(arrivals, 1.0) > 20


def test_every_store_keeps_the_window_under_late_arrivals(make_store: StoreFactory) -> None:
    """The same guarantee through SQLite and Redis, whose re-checks and recounts are store ops."""
    clock = FakeClock()
    quota = on_store(
        make_store, clock, Window.per_second(10), Window.per_minute(200), margin=0.01, max_wait=1e9
    )
    arrivals = simulate(quota, clock, workers=12, calls=300, lag=spiky, answer=quick, seed=2)
    assert max_in_rolling(arrivals, 1.0) <= 10
    assert max_in_rolling(arrivals, 60.0) <= 200


def test_an_on_time_answer_changes_nothing(make_store: StoreFactory, clock: FakeClock) -> None:
    """Answered within the margin: no recount, and no store I/O is needed."""
    quota = on_store(make_store, clock, Window.per_second(2), margin=0.05)
    r = quota.reserve("GET", "/x")
    assert not quota.late(r, clock() + 0.05)
    quota.answered(r, at=clock() + 0.05)
    quota.reserve("GET", "/x")
    assert quota.reserve("GET", "/x").wait == pytest.approx(1.05)


def test_a_late_answer_moves_the_call_without_counting_it_twice(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Answered 0.3 s after admission, a call counts until 1 s after its answer, once."""
    quota = on_store(make_store, clock, Window.per_second(2), margin=0.05)
    first = quota.reserve("GET", "/x")
    quota.reserve("GET", "/x")
    clock.sleep(0.3)
    assert quota.late(first, clock())
    quota.answered(first, at=clock())
    assert quota.status().windows[0].used == 2
    third = quota.reserve("GET", "/x")  # the other call leaves at 1.05
    assert third.wait == pytest.approx(1.05 - 0.3)
    fourth = quota.reserve("GET", "/x")  # the late one leaves at 0.3 + 1.0
    assert fourth.at - START == pytest.approx(1.3)


def test_a_reservation_made_ahead_is_rechecked_after_a_recount(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Reserved for 1.05 s on the strength of a call that was then answered late: at 1.05 s
    it no longer fits, so it is admitted again for when the late call leaves."""
    quota = on_store(make_store, clock, Window.per_second(1), margin=0.05)
    first = quota.reserve("GET", "/x")
    ahead = quota.reserve("GET", "/x")
    assert ahead.wait == pytest.approx(1.05)
    clock.sleep(0.4)
    quota.answered(first, at=clock())  # may have arrived as late as 0.4 s
    clock.sleep(ahead.wait - 0.4)
    again = quota.sent(ahead, at=clock())
    assert again.wait == pytest.approx(0.35)
    assert again.at - START == pytest.approx(1.4)
    clock.sleep(again.wait)
    final = quota.sent(again, at=clock())
    assert final.wait == 0
    assert final.at == again.at
    assert quota.status().windows[0].used == 1  # the re-admission replaced the first one


def test_a_crowded_reservation_moves_only_as_far_as_it_must(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Re-admitted at the earliest time that fits among the calls counting then (1.4 s, when
    the late call leaves), not behind the calls reserved for 2.02 s; those re-check in turn."""
    quota = on_store(make_store, clock, Window.per_second(2), margin=0.01, max_wait=1e9)
    a, _b = quota.reserve("GET", "/x"), quota.reserve("GET", "/x")
    c, d = quota.reserve("GET", "/x"), quota.reserve("GET", "/x")
    e, f = quota.reserve("GET", "/x"), quota.reserve("GET", "/x")
    assert [round(r.at - START, 6) for r in (c, d, e, f)] == [1.01, 1.01, 2.02, 2.02]
    clock.sleep(0.4)
    quota.answered(a, at=clock())  # a counts until 1.4 now
    clock.now = c.at
    c2 = quota.sent(c, at=clock())
    assert c2.at - START == pytest.approx(1.4)
    assert quota.sent(d, at=clock()).wait == 0  # d still fits: only a and d count at 1.01
    clock.now = e.at
    e2 = quota.sent(e, at=clock())  # c moved into e's window: e waits for c to leave
    assert e2.at - START == pytest.approx(2.41)
    assert quota.sent(f, at=clock()).wait == 0  # d left at 2.02: only c and f count


def test_with_a_journal_rechecks_work_and_each_call_is_journaled_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A memory store with day windows persisted takes the store path (no epoch shortcut):
    the re-check still moves a crowded call, and a restart restores each call once."""
    policy = QuotaPolicy([Window.per_second(1), Window.per_day(100)], margin=0.01)

    def make() -> Quota:
        return Quota(
            policy, store=MemoryStore(), key_id="k", clock=clock, persist=tmp_path / "j.db"
        )

    quota = make()
    assert quota.blocking
    first = quota.reserve("GET", "/x")
    ahead = quota.reserve("GET", "/x")
    clock.sleep(0.4)
    quota.answered(first, at=clock())
    clock.now = ahead.at
    again = quota.sent(ahead, at=clock())
    assert again.at - START == pytest.approx(1.4)
    assert make().status().windows[1].used == 2


def test_an_answer_told_twice_counts_once(make_store: StoreFactory, clock: FakeClock) -> None:
    """The entry moved by the first answer is not added again by a second one."""
    quota = on_store(make_store, clock, Window.per_second(5), margin=0.01)
    r = quota.reserve("GET", "/x")
    clock.sleep(0.3)
    quota.answered(r, at=clock())
    clock.sleep(0.3)
    quota.answered(r, at=clock())
    assert quota.status().windows[0].used == 1


@pytest.mark.parametrize("calendar", [False, True])
def test_a_call_that_leaves_late_counts_from_when_it_leaves(
    make_store: StoreFactory, clock: FakeClock, calendar: bool
) -> None:
    """Reserved for 1.01 s (slot 2 s), a call that wakes only after the next call left must
    not go with it in one window: it is admitted again after that one."""
    window = Window(1, 2.0, calendar=True) if calendar else Window.per_second(1)
    quota = on_store(make_store, clock, window, margin=0.01, max_wait=1e9)
    quota.reserve("GET", "/x")
    ahead, after = quota.reserve("GET", "/x"), quota.reserve("GET", "/x")
    step = 2.0 if calendar else 1.01
    assert (ahead.at - START, after.at - START) == pytest.approx((step, 2 * step))
    clock.now = after.at
    assert quota.sent(after, at=clock()).wait == 0
    clock.sleep(0.48)  # the one reserved first wakes only now
    again = quota.sent(ahead, at=clock())
    assert again.at - START == pytest.approx(3 * step)
    assert again.wait == pytest.approx(3 * step - 2 * step - 0.48)


def test_a_reservation_made_ahead_does_not_leave_into_the_penalty_box(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A 429 after the reservation: at its time the call is re-admitted after the penalty, or
    refused beyond max_wait, and then nothing of it stays counted."""
    quota = on_store(make_store, clock, Window.per_second(1), margin=0.01, max_wait=5.0)
    quota.reserve("GET", "/x")
    ahead = quota.reserve("GET", "/x")
    quota.observe(429, {"retry-after": "30"})
    clock.now = ahead.at
    with pytest.raises(QuotaExceededError):
        quota.sent(ahead, at=clock())
    assert quota.status().windows[0].used == 0  # the first has left, the refused one is gone


def test_a_sleep_that_ends_early_sleeps_the_rest(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Timers may fire a little early: the call is told to wait the remainder, not to go."""
    quota = on_store(make_store, clock, Window.per_second(1), margin=0.01)
    quota.reserve("GET", "/x")
    ahead = quota.reserve("GET", "/x")
    clock.now = ahead.at - 0.004
    early = quota.sent(ahead, at=clock())
    assert early.wait == pytest.approx(0.004, abs=1e-6)
    assert early.at == ahead.at
    clock.sleep(early.wait)
    assert quota.sent(early, at=clock()).wait == 0


def far(rng: random.Random) -> float:
    """A network 50-100 ms away, all of its jitter on the way out (the benchmark's sandbox)."""
    return rng.uniform(0.05, 0.1)


def both_ways(rng: random.Random) -> float:
    """25-50 ms each way, independently: the fastest round trip seen is rarely the minimum."""
    return rng.uniform(0.025, 0.05)


def utilisation(arrivals: list[tuple[float, int]], per_second: int) -> float:
    span = max(t for t, _ in arrivals) - min(t for t, _ in arrivals)
    return len(arrivals) / (per_second * (span + 1))


@pytest.mark.parametrize("margin", [0.0, 0.01])
@pytest.mark.parametrize(("lag", "answer"), [(far, quick), (both_ways, both_ways), (spiky, quick)])
def test_round_trips_count_late_answers_earlier_and_never_over(
    margin: float, lag: Lag, answer: Lag
) -> None:
    """Told the round trips, a late answer counts until a window after it less what the fastest
    trips prove: never over the server's 20/s, whichever leg the jitter is on."""
    for seed in range(3):
        clock = FakeClock()
        quota = Quota(
            QuotaPolicy([Window.per_second(20)], margin=margin),
            store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None,
        )  # fmt: skip
        arrivals = simulate(
            quota, clock, workers=32, calls=1500, lag=lag, answer=answer, seed=seed,
            tell_trips=True,
        )  # fmt: skip
        assert max_in_rolling(arrivals, 1.0) <= 20


def test_round_trips_win_back_the_latency() -> None:
    """50-100 ms away: a late answer no longer costs its whole round trip (about 93 % of the
    limit), only its spread above the fastest (about 96 %)."""
    used = {}
    for told in (False, True):
        clock = FakeClock()
        quota = Quota(
            QuotaPolicy([Window.per_second(20)], margin=0.01),
            store=MemoryStore(), key_id="k", clock=clock, max_wait=1e9, persist=None,
        )  # fmt: skip
        arrivals = simulate(
            quota, clock, workers=32, calls=2000, lag=far, answer=quick, seed=4, tell_trips=told
        )
        assert max_in_rolling(arrivals, 1.0) <= 20
        used[told] = utilisation(arrivals, 20)
    assert used[False] < 0.935
    assert used[True] > 0.955
    assert quota.lead > 0.03


def test_only_a_memory_store_counts_late_answers_earlier(make_store: StoreFactory) -> None:
    """A process's own store applies the lead its Quotas learned; a store other processes
    share (SQLite, Redis) does not: their clients may sit nearer the server. Never over."""
    clock = FakeClock()
    quota = on_store(
        make_store, clock, Window.per_second(10), Window.per_minute(500), margin=0.01, max_wait=1e9
    )
    arrivals = simulate(
        quota, clock, workers=12, calls=400, lag=far, answer=quick, seed=5, tell_trips=True
    )
    assert quota.lead > 0.03
    assert max_in_rolling(arrivals, 1.0) <= 10
    assert max_in_rolling(arrivals, 60.0) <= 500
    if isinstance(quota.store, MemoryStore):
        assert quota.applied_lead == quota.lead
        assert utilisation(arrivals, 10) > 0.95
    else:
        assert quota.applied_lead == 0.0
        assert utilisation(arrivals, 10) < 0.95


def test_a_client_that_has_not_learned_holds_the_others_back() -> None:
    """Two Quotas of one key on one memory store: the smallest lead applies, 0 until both
    learned; a closed (or collected) Quota no longer counts."""
    store = MemoryStore()
    policy = QuotaPolicy([Window.per_second(5)])
    far, near = (Quota(policy, store=store, key_id="k", persist=None) for _ in range(2))
    for _ in range(8):
        far.took(0.0, 0.1)
    assert far.lead == pytest.approx(0.1)
    assert far.applied_lead == near.applied_lead == 0.0
    for _ in range(8):
        near.took(0.0, 0.002)
    assert far.applied_lead == near.applied_lead == pytest.approx(0.002)
    near.close()
    assert far.applied_lead == pytest.approx(0.1)
    third = Quota(policy, store=store, key_id="k", persist=None)
    assert far.applied_lead == 0.0
    del third
    gc.collect()
    assert far.applied_lead == pytest.approx(0.1)


def test_no_lead_before_enough_round_trips() -> None:
    """Seven fast trips prove nothing yet; a negative or a slower trip changes nothing."""
    quota = Quota(QuotaPolicy([Window.per_second(5)]), key_id="k", persist=None)
    for _ in range(7):
        quota.took(0.0, 0.05)
    assert quota.lead == 0.0
    quota.took(1.0, 0.5)  # a clock that went back: no trip
    assert quota.lead == 0.0
    quota.took(0.0, 0.05)
    assert quota.lead == pytest.approx(0.05)
    quota.took(0.0, 0.2)
    assert quota.lead == pytest.approx(0.05)
    quota.took(0.0, 0.03)  # a faster one lowers it at once, by twice as much
    assert quota.lead == pytest.approx(2 * 0.03 - 0.05)
