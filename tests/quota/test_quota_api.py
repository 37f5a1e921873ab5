"""Policies, store URLs, persistence and the public surface of the quota package."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from quota_support import START, FakeClock

import coinguard._quota as quota_pkg
from coinguard._exceptions import ConfigurationError
from coinguard._quota import (
    MemoryStore,
    Quota,
    QuotaPolicy,
    SQLiteStore,
    Window,
    default_persist_path,
    open_store,
)
from coinguard._quota._limiter import Reservation


def test_public_names_equal_all() -> None:
    """The package exports exactly its __all__."""
    public = {n for n in dir(quota_pkg) if n[0] not in "_@"}
    assert public - {"annotations"} == set(quota_pkg.__all__)


def test_window_constructors_and_names() -> None:
    """The constructors give the expected lengths, alignment and readable names."""
    assert Window.per_second(5).name == "5/s"
    assert Window.per_minute(30).calendar is False
    assert Window.per_hour(100).name == "100/h"
    assert Window.per_day(1000).calendar is True
    assert Window.per_month(10_000).is_month
    assert Window(7, 10).name == "7/10s"


@pytest.mark.parametrize(
    ("limit", "seconds"), [(0, 1.0), (-1, 1.0), (True, 1.0), (1.5, 1.0), (5, 0), (5, float("nan"))]
)
def test_bad_windows_are_refused(limit: object, seconds: float) -> None:
    """Non-positive or non-integer limits and lengths raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Window(limit, seconds)  # type: ignore[arg-type]


def test_policy_costs_first_match_wins() -> None:
    """Route patterns match method and path, first match wins, query strings are ignored."""
    policy = QuotaPolicy(
        [Window.per_second(10)], costs={"GET /daily-ohlcv*": 3, "/daily*": 2, "POST *": 5}
    )
    assert policy.cost("get", "/daily-ohlcv?symbol=BTC") == 3
    assert policy.cost("PUT", "/daily-x") == 2
    assert policy.cost("POST", "/orders") == 5
    assert policy.cost("GET", "/price") == 1


def test_policy_is_frozen_hashable_and_printable() -> None:
    """A policy is an immutable, hashable value with a readable str."""
    policy = QuotaPolicy([Window.per_second(5)], costs={"GET /x": 2})
    with pytest.raises(AttributeError):
        policy.margin = 1.0  # type: ignore[misc]
    assert hash(policy) == hash(QuotaPolicy([Window.per_second(5)], costs={"GET /x": 2}))
    assert str(policy) == "QuotaPolicy(5/s; default cost 1; costs {'GET /x': 2}; margin 0.01s)"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"windows": []},
        {"windows": [Window.per_second(2)], "costs": {"GET /x": 3}},
        {"windows": [Window.per_second(2)], "costs": {"GET /x": -1}},
        {"windows": [Window.per_second(2)], "margin": -0.1},
        {"windows": [Window.per_second(2)], "costs": {"": 1}},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object]) -> None:
    """Empty windows, impossible or negative costs and negative margins raise."""
    windows = kwargs.pop("windows")
    with pytest.raises(ConfigurationError):
        QuotaPolicy(windows, **kwargs)  # type: ignore[arg-type]


def test_open_store_urls(tmp_path: Path) -> None:
    """Memory, sqlite and redis URLs open the matching store."""
    assert open_store("memory") is open_store("memory://")
    store = open_store(f"sqlite:///{tmp_path}/q.db")
    assert isinstance(store, SQLiteStore)
    assert store.blocking
    store.close()
    assert type(open_store("redis://127.0.0.1:1/0")).__name__ == "RedisStore"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///", "file path"),
        ("sqlite:///:memory:", "file path"),
        ("postgres://x", "unknown quota store"),
        ("", "URL"),
    ],
)
def test_bad_store_urls_say_what_is_wrong(url: str, words: str) -> None:
    """A bad URL raises ConfigurationError explaining the problem."""
    with pytest.raises(ConfigurationError, match=words):
        open_store(url)


def test_missing_redis_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py, the redis store names pip install 'coinguard[redis]'."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"coinguard\[redis\]"):
        open_store("redis://127.0.0.1:6379/0")


def test_blocking_and_reservation_shape(clock: FakeClock) -> None:
    """Memory is non-blocking; Reservation is an immutable (wait, cost, at, epoch)."""
    quota = Quota(QuotaPolicy([Window.per_second(5)]), store=MemoryStore(), key_id="k", clock=clock)
    assert quota.blocking is False
    r = quota.reserve("GET", "/x")
    assert r[:3] == (0.0, 1, START)
    assert r == Reservation(0.0, 1, START, r.epoch)
    with pytest.raises(AttributeError):
        r.wait = 1.0  # type: ignore[misc]
    assert "QuotaPolicy(5/s" in repr(quota)


def test_bad_quota_arguments() -> None:
    """on_quota and key_id are validated."""
    policy = QuotaPolicy([Window.per_second(5)])
    with pytest.raises(ConfigurationError):
        Quota(policy, key_id="k", on_quota="sleep")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Quota(policy, key_id="")


def test_persist_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unset env -> user cache dir; 0 disables; a path relocates."""
    monkeypatch.delenv("COINGUARD_QUOTA_PERSIST")
    assert (
        default_persist_path() == Path(platformdirs.user_cache_dir("coinguard")) / "quota.sqlite3"
    )
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", "off")
    assert default_persist_path() is None
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", str(tmp_path / "q.db"))
    assert default_persist_path() == tmp_path / "q.db"


MONTHLY = QuotaPolicy([Window.per_second(5), Window.per_month(10_000), Window.per_day(2_000)])


def test_month_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """A new Quota (a restarted kernel) on a memory store remembers day and month usage."""
    path = tmp_path / "persist.db"
    first = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    assert first.blocking
    for _ in range(7):
        first.reserve("GET", "/x")
    first.observe(200, {"RateLimit-Policy": '"m";q=10000;w=2592000', "RateLimit": '"m";r=200'})
    first.close()
    clock.sleep(3600)
    second = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    used = [w.used for w in second.status().windows]
    assert used == [0, 9800, 7]


def test_after_a_crash_the_journal_counts_at_most_one_lease_more(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A process that dies without closing leaves its whole lease counted: the restart sees
    at least every call made, and at most one block (1 % of the day's 2,000) more."""
    path = tmp_path / "persist.db"
    first = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    for _ in range(47):
        first.reserve("GET", "/x")
        clock.sleep(0.2)
    crashed = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    _, month, day = (w.used for w in crashed.status().windows)
    assert 47 <= day <= 47 + 20
    assert month == day


def test_the_journal_writes_once_per_lease_not_per_call(tmp_path: Path, clock: FakeClock) -> None:
    """1,000 calls on a 10,000/month plan write the file 16 times (blocks of 64), and reserve
    needs no worker thread while the lease lasts."""
    from coinguard._quota import _limiter

    path = tmp_path / "persist.db"
    policy = QuotaPolicy([Window.per_second(10**6), Window.per_month(10_000)])
    quota = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    store = _limiter._journal_store(path)
    transactions = 0
    real = store.transaction

    def counting() -> Any:
        nonlocal transactions
        transactions += 1
        return real()

    store.transaction = counting  # type: ignore[method-assign]
    try:
        blocking = 0
        for _ in range(1000):
            blocking += quota.blocking
            quota.reserve("GET", "/x")
        quota.close()
    finally:
        del store.transaction
    assert transactions == 1000 // 64 + 1 + 1  # the leases, and the give-back at close
    assert blocking == transactions - 1
    again = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    assert again.status().windows[1].used == 1000


def test_a_lease_does_not_cross_into_the_next_month(tmp_path: Path, clock: FakeClock) -> None:
    """Calls on both sides of a month's end are journaled in their own month."""
    from datetime import datetime, timezone

    path = tmp_path / "persist.db"
    policy = QuotaPolicy([Window.per_second(10**6), Window.per_month(10_000)], margin=0.0)
    clock.now = datetime(2027, 2, 1, tzinfo=timezone.utc).timestamp() - 5.0
    quota = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    for _ in range(3):
        quota.reserve("GET", "/x")
    clock.sleep(10.0)
    for _ in range(4):
        quota.reserve("GET", "/x")
    quota.close()
    again = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    assert again.status().windows[1].used == 4
    clock.now -= 10.0  # read back in January: its own 3
    january = Quota(policy, store=MemoryStore(), key_id="k", clock=clock, persist=path)
    assert january.status().windows[1].used == 3


def test_persist_env_relocates(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COINGUARD_QUOTA_PERSIST=<path> moves the file; per-second-only policies never touch it."""
    path = tmp_path / "env.db"
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", str(path))
    Quota(QuotaPolicy([Window.per_second(5)]), store=MemoryStore(), key_id="k", clock=clock)
    assert not path.exists()
    Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock).reserve("GET", "/x")
    assert path.exists()


def test_persist_disabled_forgets(clock: FakeClock) -> None:
    """With persistence disabled (the test default), a restart starts from zero."""
    Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock).reserve("GET", "/x")
    again = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock)
    assert [w.used for w in again.status().windows] == [0, 0, 0]
    assert again.blocking is False


def test_unusable_persist_path_is_not_fatal(tmp_path: Path, clock: FakeClock) -> None:
    """A persist path that cannot be opened disables persistence instead of failing."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    quota = Quota(MONTHLY, store=MemoryStore(), key_id="k", clock=clock, persist=blocker / "q.db")
    assert quota.blocking is False
    assert quota.reserve("GET", "/x").wait == 0


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_take_commits_a_cost_at_once_or_nothing(store: str, tmp_path: Path) -> None:
    """take(cost) commits the whole cost or raises committing none; a cost above the window's
    limit is refused at once instead of waiting for a room that never comes."""
    from coinguard._exceptions import QuotaExceededError

    clock = FakeClock()
    backend = MemoryStore() if store == "memory" else SQLiteStore(tmp_path / "q.sqlite3")
    q = Quota(
        QuotaPolicy([Window.per_day(100)]), store=backend, key_id="usd", on_quota="raise",
        clock=clock, persist=None,
    )  # fmt: skip
    assert q.take(60).cost == 60
    with pytest.raises(QuotaExceededError):
        q.take(50)
    assert q.status().windows[0].used == 60
    with pytest.raises(QuotaExceededError, match="can never fit") as info:
        q.take(101)
    assert info.value.retry_after == float("inf")
    q.take(40)
    assert q.status().windows[0].remaining == 0
    with pytest.raises(ConfigurationError, match="cost >= 0"):
        q.take(-1)
    q.close()
    backend.close()
