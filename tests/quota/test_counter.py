"""The decaying counter (Kraken's REST limit) in every store: exact admissions, waits that
commit nothing when refused, the provider's "full" learnt, state shared by handles and
threads; the three stores agree to the last bit."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

import pytest

from coinguard import ConfigurationError, DecayingCounter, QuotaExceededError
from coinguard._quota._counter import CounterStore

if TYPE_CHECKING:
    from conftest import StoreFactory

NOW = 1_800_000_000.0
COUNTER = DecayingCounter(15, 0.5, costs={"POST /0/private/Ledgers": 2})  # ceiling 14.5


@pytest.fixture(autouse=True)
def _fake_time_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests drive a fake clock: a real wait for SQLite's write lock (a loaded machine)
    must not be added to it as time passed (``SQLiteStore.fresh``)."""
    from coinguard._quota import _sqlite

    monkeypatch.setattr(_sqlite, "_STALE", float("inf"))


def _store(make_store: StoreFactory) -> CounterStore:
    store = make_store()
    assert isinstance(store, CounterStore)
    return store


def _level(admitted: list[tuple[float, int]], at: float, rate: float) -> float:
    """The counter as the server keeps it, replaying admissions in order up to ``at``."""
    level, last = 0.0, None
    for t, cost in admitted:
        if t > at:
            break
        level = max(0.0, level - rate * (t - last)) if last is not None else 0.0
        level += cost
        last = t
    return max(0.0, level - rate * (at - last)) if last is not None else 0.0


def test_fills_to_the_ceiling_then_waits_for_the_drain(make_store: StoreFactory) -> None:
    """14 calls go at once (ceiling 15 - 1 s x 0.5/s); the 15th waits 1 s, the next 2 s more."""
    store = _store(make_store)
    times = [store.counter_take("k", COUNTER, 1, NOW, 100.0)[0] for _ in range(16)]
    assert times[:14] == [NOW] * 14
    assert times[14] == pytest.approx(NOW + 1.0)
    assert times[15] == pytest.approx(NOW + 3.0)


def test_a_wait_past_max_wait_raises_and_commits_nothing(make_store: StoreFactory) -> None:
    """Full counter, max_wait 0: QuotaExceededError with the wait; the level is unchanged."""
    store = _store(make_store)
    for _ in range(14):
        store.counter_take("k", COUNTER, 1, NOW, 0.0)
    before = store.counter_level("k", COUNTER, NOW)
    with pytest.raises(QuotaExceededError) as info:
        store.counter_take("k", COUNTER, 2, NOW, 0.0)
    assert info.value.retry_after == pytest.approx(3.0)
    assert store.counter_level("k", COUNTER, NOW) == pytest.approx(before) == pytest.approx(14)


def test_the_provider_saying_full_is_counted(make_store: StoreFactory) -> None:
    """counter_fill: the level is the maximum; the next call waits for the drain to the
    ceiling minus its cost, and a second handle sees the same counter."""
    store = _store(make_store)
    store.counter_fill("k", COUNTER, NOW)
    assert store.counter_level("k", COUNTER, NOW) == pytest.approx(15.0)
    other = _store(make_store)
    at, _ = other.counter_take("k", COUNTER, 1, NOW, 100.0)
    assert at == pytest.approx(NOW + (15 - 13.5) / 0.5)


def test_admissions_are_exact_and_the_stores_agree(make_store: StoreFactory) -> None:
    """300 random calls (cost 1 or 2, arriving at random): replayed as the server counts them,
    the counter never passes the ceiling, every call goes at the earliest moment it fits, and
    the admission times equal the pure algorithm's to the last bit."""
    from coinguard._quota._counter import admit

    store = _store(make_store)
    rng = random.Random(14)
    now, tat = NOW, 0.0
    admitted: list[tuple[float, int]] = []
    for _ in range(300):
        now += rng.choice((0.0, 0.0, 0.1, 0.5, 2.0))
        cost = rng.choice((1, 1, 2))
        at, _ = store.counter_take("k", COUNTER, cost, now, 1e9)
        want, tat = admit(tat, COUNTER.ceiling, COUNTER.rate, cost, now, 1e9)
        assert at == want
        before = _level(admitted, at, COUNTER.rate)
        assert before + cost <= COUNTER.ceiling + 1e-9
        if at > now:  # it waited: any earlier moment would have passed the ceiling
            assert _level(admitted, at - 1e-3, COUNTER.rate) + cost > COUNTER.ceiling
        admitted.append((at, cost))


def test_threads_sharing_a_counter_never_overfill_it(make_store: StoreFactory) -> None:
    """8 threads x 25 calls on one counter at one instant: 200 admissions whose replay never
    passes the ceiling."""
    store = _store(make_store)
    got: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(25):
            at, _ = store.counter_take("shared", COUNTER, 1, NOW, 1e9)
            with lock:
                got.append(at)

    pool = [threading.Thread(target=run) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    admitted = sorted((at, 1) for at in got)
    assert len(admitted) == 200
    for i, (at, _) in enumerate(admitted):
        assert _level(admitted[:i], at, COUNTER.rate) + 1 <= COUNTER.ceiling + 1e-9


def test_counter_values_are_checked() -> None:
    """A counter a call could never fit, or a rate that is not positive, is refused."""
    with pytest.raises(ConfigurationError, match="never fits"):
        DecayingCounter(2, 1.0, default_cost=2)
    with pytest.raises(ConfigurationError, match="rate"):
        DecayingCounter(15, 0.0)
