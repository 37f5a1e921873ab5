"""Anomaly alerts: each injected anomaly raises exactly its alert; a clean run raises none."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import Attempt, Thresholds, Watch

START = 1_795_780_800.0  # 2026-11-27 12:00 UTC
ROUTES = ["/price", "/daily-ohlcv", "/tokens"]


def steady(
    start: float, seconds: float, per_second: float, *, seed: int = 7, **changes: Any
) -> Iterator[Attempt]:
    """A clean pipeline: calls spread over routes with jitter, the odd 429 and 500."""
    rng = random.Random(seed)
    t = start
    while t < start + seconds:
        status = rng.choices([200, 429, 500], weights=[97, 2, 1])[0]
        yield Attempt.example(
            started=t,
            route=rng.choice(ROUTES),
            status=status,
            outcome="ok" if status == 200 else "rate_limited",
            **changes,
        )
        t += rng.expovariate(per_second)


def burst(start: float, calls: int, seconds: float, **changes: Any) -> list[Attempt]:
    return [Attempt.example(started=start + i * seconds / calls, **changes) for i in range(calls)]


def rules(alerts: list[coinguard.Alert]) -> list[str]:
    return [a.rule for a in alerts]


def test_a_clean_run_raises_nothing() -> None:
    """Two hours of steady traffic (1/s, three routes, some 429/500, a lone 401): no alert."""
    records = list(steady(START, 7200, 1.0))
    records.insert(3000, Attempt.example(started=records[3000].started, status=401))
    assert len(records) > 6000
    assert Watch().check(records) == []


def test_a_clean_ten_minutes_at_a_high_rate_raises_nothing() -> None:
    """Ten minutes at 20 calls/s from the first second: a fresh key has no baseline to beat."""
    assert Watch().check(steady(START, 600, 20.0)) == []


def test_a_burst_raises_one_rate_alert() -> None:
    """After 30 minutes at 0.5/s, 600 calls in a minute: one ``rate`` alert, not one per call."""
    before = list(steady(START, 1800, 0.5))
    spike = burst(START + 1800, 600, 60)
    after = list(steady(START + 1860, 600, 0.5, seed=8))
    alerts = Watch().check([*before, *spike, *after])
    assert rules(alerts) == ["rate"]
    assert "calls in the last 60s" in alerts[0].message


def test_a_new_route_after_the_learning_period_raises_one_alert() -> None:
    """A route first used after an hour and 100 calls alerts once; repeated calls do not."""
    history = list(steady(START, 3700, 0.5))
    new = [Attempt.example(started=START + 3700 + i, route="/withdrawals") for i in range(5)]
    alerts = Watch().check([*history, *new])
    assert rules(alerts) == ["new_route"]
    assert "GET /withdrawals" in alerts[0].message


def test_a_new_scope_for_a_key_raises_an_alert() -> None:
    """A key that only read, then trades: ``new_scope`` (and ``new_route``)."""
    history = list(steady(START, 3700, 0.5))
    trade = Attempt.example(started=START + 3701, scope="trade", method="POST", route="/orders")
    assert sorted(rules(Watch().check([*history, trade]))) == ["new_route", "new_scope"]


def test_a_401_storm_raises_one_alert() -> None:
    """Ten 401/403 answers in 20 seconds: one ``auth_failures`` alert."""
    history = list(steady(START, 600, 0.5))
    storm = burst(START + 600, 10, 20, status=401, outcome="auth", error="AuthenticationError")
    storm[3] = Attempt.example(started=storm[3].started, status=403, outcome="permission")
    alerts = Watch().check([*history, *storm])
    assert rules(alerts) == ["auth_failures"]


def test_trades_outside_hours_or_symbols() -> None:
    """Orders at 03h UTC or for an unlisted symbol alert; reads and allowed orders do not."""
    watch = Watch(Thresholds(trade_hours=(8, 20), trade_symbols=frozenset({"btcusdt"})))

    def order(hour: int, symbol: str) -> Attempt:
        return Attempt.example(
            started=START - 12 * 3600 + hour * 3600,
            scope="trade",
            method="POST",
            route="/orders",
            symbol=symbol,
            key_fp="fp:trade0000000",
        )

    records = [order(10, "BTCUSDT"), order(3, "BTCUSDT"), order(11, "DOGEUSDT")]
    records.append(Attempt.example(started=START - 12 * 3600 + 2 * 3600))  # a read at night
    alerts = watch.check(records)
    assert rules(alerts) == ["trade_hours", "trade_symbol"]
    assert "03h" in alerts[0].message
    assert "DOGEUSDT" in alerts[1].message


def test_a_key_idle_for_long_then_active_raises_one_alert() -> None:
    """Forty days without a call, then calls again: one ``idle_key`` alert."""
    records = [
        Attempt.example(started=START),
        Attempt.example(started=START + 40 * 86400),
        Attempt.example(started=START + 40 * 86400 + 1),
    ]
    alerts = Watch().check(records)
    assert rules(alerts) == ["idle_key"]
    assert "40.0 days" in alerts[0].message


def test_monthly_burn_on_course_to_exhaust_before_the_reset() -> None:
    """1,000 credits a day against 20,000 a month: alerted once after 3 days, not again that
    day; 500 a day is on course and never alerts."""
    month_start = 1_793_491_200.0  # 2026-11-01 00:00 UTC

    def daily(per_day: int, days: int) -> list[Attempt]:
        step = 86400 / per_day
        return [
            Attempt.example(started=month_start + i * step, cost=1) for i in range(per_day * days)
        ]

    watch = Watch(Thresholds(monthly_credits={"sandbox": 20_000}))
    alerts = watch.check(daily(1000, 4))
    assert rules(alerts) == ["monthly_burn"]
    assert "before the reset 2026-12-01" in alerts[0].message
    assert Watch(Thresholds(monthly_credits=20_000)).check(daily(500, 6)) == []


def test_thresholds_are_settable() -> None:
    """A lower ``auth_failures`` fires on fewer 401s; wrong values are refused."""
    storm = burst(START, 3, 5, status=401)
    assert Watch().check(storm) == []
    assert rules(Watch(Thresholds(auth_failures=3)).check(storm)) == ["auth_failures"]
    with pytest.raises(coinguard.ConfigurationError, match="baseline_window"):
        Thresholds(rate_window=600, baseline_window=300)
    with pytest.raises(coinguard.ConfigurationError, match="trade_hours"):
        Thresholds(trade_hours=(8, 25))


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_live_alerts_warn_log_and_call_the_hook(log_capture: Any) -> None:
    """A client answered 401 five times in a row: a warning, a log line, the hook; once."""
    clock = FakeClock()

    def deny(request: httpx.Request) -> httpx.Response:
        clock.now += 1.0
        return httpx.Response(401, json={})

    paged: list[coinguard.Alert] = []
    provider = coinguard.Provider(name="watched", base_url="https://api.watched.test")
    with coinguard.Client(
        provider=provider,
        read_key="watched-read-key-0123456789",
        http_client=httpx.Client(transport=httpx.MockTransport(deny)),
        clock=clock,
        sleep=clock.sleep,
        observers=[Watch(hook=paged.append)],
    ) as client:
        for _ in range(4):
            with pytest.raises(coinguard.AuthenticationError):
                client.get("/price")
        with (
            pytest.warns(coinguard.AnomalyWarning, match="401/403"),
            pytest.raises(coinguard.AuthenticationError),
        ):
            client.get("/price")
        with pytest.raises(coinguard.AuthenticationError):
            client.get("/price")  # within the cooldown: no second alert
    assert [a.rule for a in paged] == ["auth_failures"]
    assert paged[0].key_fp == coinguard.fingerprint("watched-read-key-0123456789")
    assert [line for line in log_capture.lines if line.startswith("coinguard.alerts WARNING")]


def test_learn_takes_history_without_alerting() -> None:
    """A Watch seeded from yesterday's log knows the key: today's new route alerts at once."""
    watch = Watch(warn=False)
    watch.learn(steady(START, 3700, 0.5))
    assert list(watch.alerts) == []
    watch.attempt(Attempt.example(started=START + 3800, route="/withdrawals"))
    assert [a.rule for a in watch.alerts] == ["new_route"]


def test_an_alert_made_an_error_by_a_warnings_filter_does_not_fail_the_call(
    log_capture: Any,
) -> None:
    """Under ``-W error`` the alert's warning raises inside the observer: the order still
    returns its answer (a caller told it failed might place it again), the hook still runs and
    the failure is logged."""
    clock = FakeClock()
    paged: list[coinguard.Alert] = []
    provider = coinguard.Provider(name="watched", base_url="https://api.watched.test")
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    watch = Watch(Thresholds(trade_symbols=frozenset({"BTC"})), hook=paged.append)
    with coinguard.Client(
        provider=provider,
        read_key="watched-read-key-0123456789",
        trade_key="watched-trade-key-0123456789",
        allow_trading=True,
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        observers=[watch],
    ) as client:
        assert client.post("/orders", json={"symbol": "DOGE"}) == {}
    assert [a.rule for a in paged] == ["trade_symbol"]
    assert any("observer Watch failed" in line for line in log_capture.lines)
