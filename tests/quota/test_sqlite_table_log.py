"""SQLite's rolling windows answer like the in-memory log, with work that does not grow with
the calls still in a window."""

from __future__ import annotations

import pathlib
import random
import sqlite3

import pytest
from quota_support import START, FakeClock

from coinguard._quota import Quota, QuotaPolicy, SQLiteStore, Window
from coinguard._quota._log import RollingLog
from coinguard._quota._sqlite import TableLog


@pytest.mark.parametrize("seed", range(6))
def test_table_log_answers_like_the_rolling_log(tmp_path: pathlib.Path, seed: int) -> None:
    """Random commits, adds in the past, removals and prunes: every question gets the same
    answer from the table as from the in-memory log."""
    store = SQLiteStore(tmp_path / "q.db")
    rng = random.Random(seed)
    length, now, limit = 2.0, START, 12
    memory = RollingLog(length)
    with store.transaction() as conn:
        table = TableLog(conn, "k", "w", length, now)
        live: list[tuple[float, int]] = []
        for _ in range(400):
            now += rng.choice([0.0, 0.01, 0.1, 0.4])
            memory.prune(now)
            table.prune(now)
            op = rng.random()
            if op < 0.5:
                t, cost = max([now, *(t for t, _ in live)]), rng.choice([1, 1, 2, 3])
                memory.commit(t, cost)
                table.commit(t, cost)
                live.append((t, cost))
            elif op < 0.65:
                t, cost = now + rng.choice([-0.5, -0.1, 0.0, 0.2]), rng.choice([1, 2])
                memory.add(t, cost)
                table.add(t, cost)
                live.append((t, cost))
            elif op < 0.85 and live:
                t, cost = live.pop(rng.randrange(len(live)))
                assert memory.remove(t, cost) == table.remove(t, cost)
            x = now + rng.uniform(-0.5, 2.5)
            cost = rng.choice([1, 2, 5])
            assert table.used() == memory.used()
            assert table.earliest(now, cost, limit) == memory.earliest(now, cost, limit)
            assert table.count_at(x) == memory.count_at(x)
            assert table.earliest_at(x, cost, limit) == memory.earliest_at(x, cost, limit)
            assert table.used_until(x) == memory.used_until(x)
            assert table.oldest() == memory.oldest()
            assert table.newest() == memory.newest()
            assert sorted(table.entries()) == sorted(memory.entries())
    store.close()


def _steps(store: SQLiteStore, work: object) -> int:
    """SQLite virtual-machine steps run by ``work()``: the work a call does, not its time."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    store._conn.set_progress_handler(tick, 10)
    try:
        work()  # type: ignore[operator]
    finally:
        store._conn.set_progress_handler(None, 0)
    return counted[0]


def test_sqlite_work_per_call_is_flat_in_live_calls(tmp_path: pathlib.Path) -> None:
    """A reserve and a re-check at 3,000 live calls do no more work than at 30."""
    policy = QuotaPolicy([Window.per_minute(10**6), Window.per_hour(10**7)], margin=0.05)
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "q.db")
    quota = Quota(policy, store=store, key_id="k", clock=clock, persist=None)
    bucket = quota._bucket

    def call() -> None:
        clock.now += 0.001
        at, _ = bucket.reserve(1, clock(), 1e9)
        clock.now += 0.001
        bucket.settle(at, 1, clock(), 1e9)

    def fill(n: int) -> None:
        for _ in range(n):
            clock.now += 0.001
            bucket.reserve(1, clock(), 1e9)

    fill(30)
    few = _steps(store, call)
    fill(3000)
    many = _steps(store, call)
    assert quota.status().windows[0].used > 3000
    assert many <= few * 1.5 + 20
    store.close()


def test_a_file_with_the_old_log_is_carried_over(tmp_path: pathlib.Path) -> None:
    """Rolling entries a previous version wrote (without running sums) still count."""
    path = tmp_path / "q.db"
    policy = QuotaPolicy([Window.per_minute(5)], margin=0.0)
    sig = policy.specs()[0].sig
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE quota_log (key TEXT, win TEXT, t REAL, cost INTEGER)")
    conn.executemany(
        "INSERT INTO quota_log VALUES (?, ?, ?, ?)",
        [("k", sig, START - 10.0, 2), ("k", sig, START - 5.0, 1), ("k", sig, START - 70.0, 4)],
    )
    conn.commit()
    conn.close()
    clock = FakeClock()
    quota = Quota(policy, store=f"sqlite:///{path}", key_id="k", clock=clock, persist=None)
    assert quota.status().windows[0].used == 3
    assert quota.reserve("GET", "/a").wait == 0.0
    assert quota.reserve("GET", "/a").wait == 0.0
    assert quota.reserve("GET", "/a").wait == pytest.approx(50.0)
    quota.close()
