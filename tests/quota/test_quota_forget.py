"""A memory store forgets a key once no open Quota is bound to it and it holds nothing, and
never sooner: a process that opens a client per user does not grow with its users."""

from __future__ import annotations

from pathlib import Path

import pytest
from quota_support import FakeClock

from coinguard import ConfigurationError
from coinguard._quota import MemoryStore, Quota, QuotaPolicy, Window

SHORT = QuotaPolicy([Window.per_second(5), Window.per_minute(100)], margin=0.0)


def _quota(store: MemoryStore, clock: FakeClock, key: str, policy: QuotaPolicy = SHORT) -> Quota:
    return Quota(policy, store=store, key_id=key, clock=clock, persist=None)


def _keys(store: MemoryStore) -> int:
    return len(store._metas)


def test_thousands_of_closed_keys_do_not_pile_up(clock: FakeClock) -> None:
    store = MemoryStore()
    for i in range(5000):
        q = _quota(store, clock, f"user-{i}")
        q.reserve("GET", "/a")
        q.reserve("GET", "/a")
        q.close()
        clock.sleep(0.1)  # 600 keys still hold calls in their minute window at any time
    assert _keys(store) <= 2 * 600 + 64
    assert len(store._logs) == 2 * _keys(store)
    clock.sleep(61)
    q = _quota(store, clock, "last")
    q.close()
    assert _keys(store) <= 2 * 600 + 64  # the next sweep takes the rest, none is lost early


def test_an_empty_key_goes_at_close(clock: FakeClock) -> None:
    store = MemoryStore()
    q = _quota(store, clock, "k")
    q.reserve("GET", "/a")
    clock.sleep(60.0)
    q.close()
    assert _keys(store) == 0


def test_a_key_whose_windows_hold_calls_is_kept(clock: FakeClock) -> None:
    """Forgetting it would let the next client of the key send 5 more in the same second."""
    store = MemoryStore()
    q = _quota(store, clock, "k")
    for _ in range(5):
        q.reserve("GET", "/a")
    q.close()
    again = _quota(store, clock, "k")
    assert again.reserve("GET", "/a").wait == pytest.approx(1.0)


def test_a_key_in_the_penalty_box_is_kept(clock: FakeClock) -> None:
    store = MemoryStore()
    q = _quota(store, clock, "k")
    q.observe(429, {"Retry-After": "120"})
    clock.sleep(61.0)  # the windows are empty, the penalty is not over
    q.close()
    q = _quota(store, clock, "k")
    assert q.reserve("GET", "/a").wait == pytest.approx(59.0)


def test_a_key_still_bound_elsewhere_is_kept(clock: FakeClock) -> None:
    store = MemoryStore()
    first, second = _quota(store, clock, "k"), _quota(store, clock, "k")
    for _ in range(5):
        first.reserve("GET", "/a")
    first.close()
    assert second.reserve("GET", "/a").wait == pytest.approx(1.0)
    clock.sleep(60.0)
    assert _keys(store) == 1
    assert second.reserve("GET", "/a").wait == 0.0  # the second saw the first's calls go
    clock.sleep(60.0)
    second.close()
    assert _keys(store) == 0


def test_a_month_window_without_persistence_is_kept(clock: FakeClock) -> None:
    store = MemoryStore()
    policy = QuotaPolicy([Window.per_second(5), Window.per_month(10)], margin=0.0)
    q = _quota(store, clock, "k", policy)
    q.reserve("GET", "/a")
    clock.sleep(3600.0)
    q.close()
    assert _keys(store) == 1
    assert _quota(store, clock, "k", policy).status().windows[1].used == 1


def test_a_closed_quota_refuses_to_reserve_and_still_reports(clock: FakeClock) -> None:
    store = MemoryStore()
    q = _quota(store, clock, "k")
    q.reserve("GET", "/a")
    q.close()
    q.close()
    with pytest.raises(ConfigurationError, match="closed"):
        q.reserve("GET", "/a")
    assert q.status().windows[0].used == 1


def test_a_persisted_month_stays_in_memory_too(clock: FakeClock, tmp_path: Path) -> None:
    """With the journal on, a closed key's month is kept in memory as well: the next Quota
    of the key may have no journal (persistence off, or its file unusable), and must still
    see the month's calls."""
    store = MemoryStore()
    policy = QuotaPolicy([Window.per_second(5), Window.per_month(10)], margin=0.0)
    q = Quota(policy, store=store, key_id="k", clock=clock, persist=tmp_path / "journal.db")
    for _ in range(3):
        q.reserve("GET", "/a")
    clock.sleep(3600.0)
    q.close()
    assert _keys(store) == 1
    again = Quota(policy, store=store, key_id="k", clock=clock, persist=None)
    assert again.status().windows[1].used == 3
