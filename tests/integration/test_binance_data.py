"""Binance's typed read endpoints and the unified calls against the emulation, over real
sockets: prices, candles over a range longer than one call answers (every day present, in
order, none twice), balances and orders as models."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest

import coinguard
from coinguard.providers import binance
from coinguard.sandbox import Sandbox, SandboxConfig

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "10"}


@pytest.fixture
def bn() -> Sandbox:
    with Sandbox(SandboxConfig(profile="binance", orders_per_10s=10_000)) as sandbox:
        yield sandbox


def _client(sb: Sandbox, **kw: object) -> coinguard.Client:
    return coinguard.Client(
        provider=dataclasses.replace(binance.PROFILE, base_url=sb.origin),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        **kw,  # type: ignore[arg-type]
    )


def test_the_binance_endpoints_are_listed(bn: Sandbox) -> None:
    with _client(bn) as client:
        endpoints = client.endpoints
    assert set(endpoints) == {"ticker_price", "klines", "account", "open_orders", "all_orders"}
    assert endpoints["account"].cost == 20


def test_unified_prices_map_tickers_to_usdt_pairs(bn: Sandbox) -> None:
    with _client(bn) as client:
        prices = client.prices(["BTC", "ETH"])
        assert client.symbol_map["BTC"] == "BTCUSDT"
        with pytest.raises(coinguard.ConfigurationError, match="NOPE"):
            client.prices(["NOPE"])
    assert [p.symbol for p in prices] == ["BTC", "ETH"]
    assert all(p.price > 0 and p.time is not None for p in prices)


def test_daily_candles_over_three_years_are_all_there(bn: Sandbox) -> None:
    """1,100 days: more than one call's 1,000 candles, so two calls; every day once, in
    order, UTC midnight, with volume."""
    today = datetime.now(timezone.utc).date()
    start = today - timedelta(days=1099)
    with _client(bn) as client:
        rows = client.ohlcv("BTC", interval="1d", start=start, end=today, progress=False)
    days = [c.time.date() for c in rows]
    assert days == [start + timedelta(days=i) for i in range(1100)]
    assert all(c.symbol == "BTC" and c.volume is not None for c in rows)
    assert all(c.time.tzinfo is not None and c.time.hour == 0 for c in rows)
    klines = [e for e in bn.ledger.entries() if e.path == "/api/v3/klines"]
    assert len(klines) == 2


def test_hourly_candles_of_two_days(bn: Sandbox) -> None:
    today = datetime.now(timezone.utc).date()
    start = today - timedelta(days=2)
    end = today - timedelta(days=1)
    with _client(bn) as client:
        rows = client.ohlcv(["ETH"], interval="1h", start=start, end=end, progress=False)
    assert len(rows) == 48
    assert rows[0].time == datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    assert len({c.time for c in rows}) == 48


def test_balances_and_orders_are_models(bn: Sandbox) -> None:
    with _client(
        bn, trade_key=bn.keys.trade, trade_secret=bn.keys.trade_secret, allow_trading=True
    ) as client:
        placed = client.post("/api/v3/order", params=ORDER)
        (account,) = client.call("account")
        open_orders = client.call("open_orders", symbol="BTCUSDT")
    assert {b.asset for b in account.balances} >= {"USDT", "BTC"}
    assert all(isinstance(b.free, float) for b in account.balances)
    (order,) = open_orders
    assert order.clientOrderId == placed["clientOrderId"]
    assert order.price == 10.0
    assert order.side == "BUY"


def test_a_date_range_reaches_the_emulation_as_epoch_ms(bn: Sandbox) -> None:
    """The typed klines endpoint takes startTime/endTime in ms, as Binance does."""
    day = date(2026, 1, 5)
    ms = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    with _client(bn) as client:
        rows = client.call("klines", symbol="SOLUSDT", interval="1d", startTime=ms, limit=3)
    assert [c.time.date() for c in rows] == [day + timedelta(days=i) for i in range(3)]
