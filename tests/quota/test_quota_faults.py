"""Quota faults: headers that describe another window, duplicate windows, store failures,
released reservations, a wall clock that steps, and what the status says."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from quota_support import FakeClock

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import Quota, QuotaPolicy, QuotaStore, SQLiteStore, Window
from conftest import StoreFactory

LEGACY_MINUTE = {
    "X-RateLimit-Limit": "30",
    "X-RateLimit-Remaining": "29",
    "X-RateLimit-Reset": "60",
}


def _quota(store: QuotaStore, clock: FakeClock, *windows: Window, key: str = "k") -> Quota:
    return Quota(QuotaPolicy(windows), store=store, key_id=key, clock=clock, persist=None)


def test_a_per_minute_header_never_spends_the_month(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """With only a month window, an X-RateLimit header for a 30/min limit leaves the month be."""
    q = _quota(make_store(), clock, Window.per_month(10_000))
    q.reserve("GET", "/x")
    q.observe(200, LEGACY_MINUTE)
    assert q.status().windows[0].used == 1


def test_an_exhausted_foreign_server_window_waits_for_its_reset(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A server window of its own that is empty blocks until its reset, without touching ours."""
    q = _quota(make_store(), clock, Window.per_month(10_000), key="foreign")
    q.observe(200, {**LEGACY_MINUTE, "X-RateLimit-Remaining": "0"})
    status = q.status()
    assert status.windows[0].used == 0
    assert status.blocked_until is not None
    assert "x-ratelimit" in status.blocked_by
    assert q.reserve("GET", "/x").wait == pytest.approx(60.0)


def test_two_windows_of_one_length_count_each_call_once(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """[10/min, 100 per 60 s] admits 10 a minute, not 5: the stricter of the two applies once."""
    q = _quota(make_store(), clock, Window.per_minute(10), Window(100, 60.0), key="dup")
    assert [q.reserve("GET", "/x").wait for _ in range(10)] == [0.0] * 10
    with pytest.raises(QuotaExceededError) as info:
        q.reserve("GET", "/x")
    assert info.value.window == "10/min"
    assert [w.used for w in q.status().windows] == [10]


@pytest.mark.parametrize("step", [30.0, 120.0, 86400.0])
def test_a_wall_clock_stepped_back_blocks_at_most_one_window(
    make_store: StoreFactory, clock: FakeClock, step: float
) -> None:
    """After the clock steps back, a full 5/s plan waits about one second, not the step."""
    q = _quota(make_store(), clock, Window.per_second(5), key=f"back{step:g}")
    for _ in range(5):
        q.reserve("GET", "/x")
    clock.now -= step
    wait = q.reserve("GET", "/x").wait
    assert 0.0 < wait <= 1.02
    clock.sleep(wait)
    assert q.reserve("GET", "/x").wait <= 1.02


def test_a_penalty_survives_a_clock_step_as_a_duration(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A 10 s penalty stays 10 s when the wall clock steps back a minute."""
    q = _quota(make_store(), clock, Window.per_second(5), key="penalty-step")
    q.observe(429, {"Retry-After": "10"})
    clock.now -= 60.0
    assert q.reserve("GET", "/x").wait == pytest.approx(10.0, abs=0.01)


def test_every_quota_exceeded_error_names_its_window(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """Refused after a step back, the error names the window that is full, never ''."""
    store = make_store()
    q = Quota(
        QuotaPolicy([Window.per_second(5)]),
        store=store,
        key_id="named",
        clock=clock,
        persist=None,
        on_quota="raise",
    )
    for _ in range(5):
        q.reserve("GET", "/x")
    clock.now -= 120.0
    with pytest.raises(QuotaExceededError) as info:
        q.reserve("GET", "/x")
    assert info.value.window == "5/s"
    assert info.value.retry_after <= 1.02


def test_a_wait_across_a_step_back_still_ends_within_a_window(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    """A call that sleeps while the clock steps back 60 s is re-checked to wait at most a window."""
    q = _quota(make_store(), clock, Window.per_second(1), key="across")
    q.reserve("GET", "/x")
    waiting = q.reserve("GET", "/x")
    clock.sleep(waiting.wait)
    clock.now -= 60.0
    again = q.sent(waiting)
    assert again.wait <= 1.02
    clock.sleep(again.wait)
    assert q.sent(again).wait == 0.0


def test_a_late_call_rechecked_with_an_older_reading_goes_behind_calls_already_sent(
    make_store: StoreFactory,
) -> None:
    """C waits, is descheduled past its slot, D and E are admitted and sent; C's re-check with
    the clock reading it took just before theirs must not put three calls in a 2/s window."""
    now = [1_000_000.0]
    quota = Quota(
        QuotaPolicy([Window.per_second(2)]),
        store=make_store(),
        key_id="late-settle",
        clock=lambda: now[0],
        persist=None,
    )
    sent = [now[0], now[0]]
    for _ in range(2):
        assert quota.sent(quota.reserve("GET", "/x")).wait == 0
    late = quota.reserve("GET", "/x")
    assert late.wait > 0
    now[0] += 3.0
    reading = now[0] - 0.01  # C read the clock just before D and E did
    for _ in range(2):
        assert quota.sent(quota.reserve("GET", "/x")).wait == 0
        sent.append(now[0])
    again = quota.sent(late, at=reading)
    sent.append(reading + again.wait)
    worst = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert worst <= 2


def test_a_stale_leave_reading_is_not_used_to_stamp_the_call(make_store: StoreFactory) -> None:
    """A reading taken before a worker thread ran the re-check (0.3 s earlier) must not stamp
    the call earlier than it leaves: the calls after it would count it gone too soon."""
    now = [1_000_000.0]
    quota = Quota(
        QuotaPolicy([Window.per_second(2)]),
        store=make_store(),
        key_id="stale-leave",
        clock=lambda: now[0],
        persist=None,
    )
    late = quota.reserve("GET", "/x")
    assert quota.sent(late, at=now[0]).wait == 0
    parked = quota.reserve("GET", "/x")
    now[0] += 1.0  # leaves at 1.0 with a reading of 0.7
    left = quota.sent(parked, at=now[0] - 0.3)
    sent = [1_000_000.0, now[0] + left.wait]
    now[0] += 0.71
    for _ in range(2):
        r = quota.reserve("GET", "/x")
        now[0] += r.wait
        assert quota.sent(r, at=now[0]).wait == 0
        sent.append(now[0])
    worst = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert worst <= 2


def test_a_floating_usage_figure_is_not_learned_into_a_store(make_store: StoreFactory) -> None:
    """``learn()`` with a count that is not an int (2.5) leaves the store readable."""
    from coinguard._quota import ServerWindow

    quota = Quota(
        QuotaPolicy([Window.per_day(100)]), store=make_store(), key_id="floats", persist=None
    )
    quota.learn([ServerWindow(used=2.5, seconds=86400.0)])  # type: ignore[arg-type]
    assert quota.status().windows[0].used == 0
    quota.reserve("GET", "/x")


def test_a_release_reads_the_clock_in_every_store_alike(make_store: StoreFactory) -> None:
    """Reserve, give a reservation back at +0.9 s, step the clock back 0.6 s: every store
    takes the release as a reading of its timeline and decides the next call the same way."""
    start = 1_800_000_000.0
    now = [start]
    quota = Quota(
        QuotaPolicy([Window.per_second(1)], margin=0.0),
        store=make_store(),
        key_id="release-reading",
        clock=lambda: now[0],
        persist=None,
        max_wait=10.0,
    )
    quota.reserve("GET", "/x")
    parked = quota.reserve("GET", "/x")
    now[0] = start + 0.9
    quota.release(parked)
    now[0] = start + 0.3
    nxt = quota.reserve("GET", "/x")
    assert (round(nxt.wait, 3), round(nxt.at - start, 3)) == (0.1, 1.0)


def test_sqlite_writers_wait_their_turn_in_the_kernel_not_in_sqlites_busy_loop(
    tmp_path: Path,
) -> None:
    """With no busy timeout at all, a second writer still gets the lock as soon as the first
    lets go: writers queue on a lock file, woken at once, instead of SQLite's busy handler
    sleeping up to 100 ms between tries (seconds of starvation for one of four processes)."""
    path = tmp_path / "q.db"
    first, second = SQLiteStore(path, timeout=0.0), SQLiteStore(path, timeout=0.0)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.transaction():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    threading.Timer(0.05, release.set).start()
    with second.transaction() as conn:  # "database is locked" at once without the turnstile
        conn.execute("SELECT 1")
    holder.join(5)
    first.close()
    second.close()
    assert (tmp_path / "q.db-turn").exists()
