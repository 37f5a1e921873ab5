"""Memory, SQLite and Redis decide alike: one random history of reserves, re-checks, late
answers, releases and server syncs, applied to each store, gets the same answers."""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable

import pytest
from quota_support import START

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import MemoryStore, QuotaPolicy, RedisStore, SQLiteStore, Window
from coinguard._quota._log import Sync
from coinguard._quota._store import QuotaBucket, QuotaStore

POLICIES = {
    "rolling": QuotaPolicy([Window.per_second(5), Window(20, 10.0)], margin=0.05),
    "with slots": QuotaPolicy(
        [Window.per_second(4), Window.per_minute(40, calendar=True)], margin=0.05
    ),
}


class ExactSQLiteStore(SQLiteStore):
    """The SQLite store without its clock correction for lock waits, which depends on how
    busy the machine is: here every store must see the same readings."""

    def fresh(self, now: float) -> float:
        return now


Answer = tuple[float, float] | tuple[str, str, float]


def _try(step: Callable[..., tuple[float, float]], *args: float) -> Answer:
    try:
        return step(*args)
    except QuotaExceededError as exc:
        return ("raised", exc.window, round(exc.retry_after or 0.0, 9))


def _history(seed: int, buckets: list[QuotaBucket], *, ordered: bool = False) -> int:
    """Drive every bucket through one random history; return how many calls were admitted.

    Calls leave at random times after their admission, so readings of the clock arrive out
    of order (as from racing threads); ``ordered`` keeps them in order instead."""
    rng = random.Random(seed)
    now = START + 58.0  # a minute boundary comes up early
    held: list[tuple[float, int]] = []
    admitted = 0
    for _ in range(250):
        now += rng.choice([0.0, 0.001, 0.05, 0.3, 0.9])
        op = rng.random()
        if op < 0.55:
            cost, wait = rng.choice([1, 1, 2]), rng.choice([0.0, 0.5, 1e9])
            answers = [_try(b.reserve, cost, now, wait) for b in buckets]
            if isinstance(answers[0][0], float):
                held.append((answers[0][0], cost))
                admitted += 1
        elif op < 0.7 and held:
            at, cost = held.pop(rng.randrange(len(held)))
            leave = max(at, now) + rng.choice([0.0, 0.01, 0.2])
            if ordered:
                now = leave
            answers = [_try(b.settle, at, cost, leave, 1e9) for b in buckets]
            if isinstance(answers[0][0], float):
                held.append((answers[0][0], cost))
        elif op < 0.8 and held:
            at, cost = rng.choice(held)
            answered = max(at, now) + rng.uniform(0.0, 0.3)
            for b in buckets:
                b.correct(at, cost, answered, now)
            answers = []
        elif op < 0.88 and held:
            at, cost = held.pop(rng.randrange(len(held)))
            for b in buckets:
                b.release(at, cost, now)
            answers = []
        else:
            sync = Sync(((0, rng.randint(0, 5), rng.choice([None, 1.0])),), None, "server", ())
            for b in buckets:
                b.sync(sync, now)
            answers = []
        for answer in answers[1:]:
            assert answer == answers[0]
        snaps = [b.snapshot(now) for b in buckets]
        for snap in snaps[1:]:
            assert snap.windows == snaps[0].windows
            assert snap.blocked_until == snaps[0].blocked_until
    return admitted


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("seed", range(3))
def test_memory_and_sqlite_decide_alike(tmp_path: pathlib.Path, name: str, seed: int) -> None:
    """SQLite's windows in a table answer exactly as the memory store's lists do."""
    specs = POLICIES[name].specs()
    stores: list[QuotaStore] = [MemoryStore(), ExactSQLiteStore(tmp_path / "q.db")]
    assert _history(seed, [s.bind(f"k{seed}", specs) for s in stores]) > 50
    for store in stores:
        store.close()


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("seed", range(3))
def test_memory_and_redis_decide_alike(redis_url: str, name: str, seed: int) -> None:
    """The Lua script answers exactly as the Python algorithm does, with the clock read in
    order. (Out of order, Redis forgets calls as of the latest reading, memory as of the
    reading at hand: Redis may count fewer at an older reading.)"""
    specs = POLICIES[name].specs()
    redis = RedisStore(redis_url, server_clock=False, prefix=f"eq{seed}{name}:")
    stores: list[QuotaStore] = [MemoryStore(), redis]
    assert _history(seed, [s.bind(f"k{seed}", specs) for s in stores], ordered=True) > 50
    redis.close()
