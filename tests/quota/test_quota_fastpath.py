"""The inlined paths of ``KeyState.reserve`` decide exactly what the general loop decides."""

from __future__ import annotations

import random

import pytest
from quota_support import START

from coinguard._exceptions import QuotaExceededError
from coinguard._quota import QuotaPolicy, Window
from coinguard._quota._log import KeyState, Meta


def general_reserve(state: KeyState, now: float, cost: int, max_wait: float) -> float:
    """The reference: every window through ``_fit`` and ``commit``, no inlining (the path
    the SQLite store takes)."""
    return state.reserve_reference(now, cost, max_wait)


POLICIES = {
    "one rolling": QuotaPolicy([Window.per_second(5)]),
    "two rolling": QuotaPolicy([Window.per_second(5), Window.per_minute(40)]),
    "rolling and calendar": QuotaPolicy(
        [Window.per_second(5), Window.per_minute(30, calendar=True), Window.per_month(200)],
        margin=0.05,
    ),
}


@pytest.mark.parametrize("steps", [False, True], ids=["forward", "steps back"])
@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("seed", range(4))
def test_fast_paths_match_the_general_loop(name: str, seed: int, steps: bool) -> None:
    """The inlined paths and the reference agree on every answer, with a clock that only
    moves forward and with one that steps back now and then (moving calendar slots on the
    key's timeline)."""
    specs = POLICIES[name].specs()
    fast = KeyState(specs, tuple(KeyState.new_log(s) for s in specs), Meta())
    slow = KeyState(specs, tuple(KeyState.new_log(s) for s in specs), Meta())
    rng = random.Random(seed)
    now = START + 59.5  # a minute boundary comes up early
    admitted: list[tuple[float, int]] = []
    for _ in range(600):
        now += rng.choice([0.0, 0.001, 0.05, 0.3, 1.2, -5.0 if steps else 0.0])
        op = rng.random()
        if op < 0.8:
            cost, max_wait = rng.choice([0, 1, 1, 2]), rng.choice([0.0, 0.5, 1e9])
            results = []
            for state, reserve in ((fast, KeyState.reserve), (slow, general_reserve)):
                try:
                    results.append(reserve(state, now, cost, max_wait))
                except QuotaExceededError as exc:
                    results.append(("raised", exc.window, exc.retry_after))
            assert results[0] == results[1]
            if isinstance(results[0], float) and cost:
                admitted.append((results[0], cost))
        elif op < 0.9 and admitted:
            at, cost = rng.choice(admitted)
            answered = max(at, now) + rng.uniform(0.0, 0.2)
            assert fast.correct(at, cost, answered, now) == slow.correct(at, cost, answered, now)
        elif admitted:
            at, cost = admitted.pop(rng.randrange(len(admitted)))
            left = [s.settle(at, cost, max(at, now), 1e9) for s in (fast, slow)]
            assert left[0] == left[1]
            admitted.append((left[0], cost))
        assert fast.snapshot(now) == slow.snapshot(now)
