"""One call for prices and OHLCV across providers, over real sockets; symbols mapped explicitly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import coinguard
from coinguard import Candle, ConfigurationError, PaginationError, PermissionDeniedError, Price
from coinguard.sandbox import Sandbox, SandboxConfig

# (sandbox profile, client provider): the same synthetic market behind three API shapes
SETUPS = (
    ("tokenmetrics", "sandbox"),
    ("coingecko", "coingecko"),
    ("coinmarketcap", "coinmarketcap"),
)


@pytest.fixture(params=SETUPS, ids=[s[1] for s in SETUPS])
def client(request: pytest.FixtureRequest) -> Iterator[coinguard.Client]:
    profile, provider = request.param
    with (
        Sandbox(profile=profile) as sb,
        coinguard.Client(provider=provider, base_url=sb.base_url, read_key=sb.keys.read) as c,
    ):
        yield c


def test_prices_are_the_same_model_in_the_callers_order(client: coinguard.Client) -> None:
    """prices(): Price rows for the symbols asked, in that order, with a UTC time."""
    rows = client.prices(["ETH", "BTC", "SOL"])
    assert [type(r) for r in rows] == [Price] * 3
    assert [r.symbol for r in rows] == ["ETH", "BTC", "SOL"]
    assert all(r.price > 0 and r.time is not None and r.time.utcoffset() is not None for r in rows)


def test_ohlcv_is_the_same_call_and_result_on_every_provider() -> None:
    """ohlcv() through the Token Metrics, CoinGecko and CoinMarketCap shapes: equal candles,
    sorted by time then symbol."""
    closes = []
    for profile, provider in SETUPS:
        plan = "startup" if profile == "coinmarketcap" else None  # OHLCV is not on Basic
        with (
            Sandbox(SandboxConfig(profile=profile, plan=plan)) as sb,
            coinguard.Client(
                provider=provider, plan=plan, base_url=sb.base_url, read_key=sb.keys.read
            ) as c,
        ):
            rows = c.ohlcv(["BTC", "ETH"], start="2026-11-20", end="2026-11-22", progress=False)
        assert all(isinstance(r, Candle) for r in rows)
        assert [(r.time.day, r.symbol) for r in rows] == [
            (d, s) for d in (20, 21, 22) for s in ("BTC", "ETH")
        ]
        closes.append([round(r.close, 2) for r in rows])
    assert closes[0] == closes[1] == closes[2]


def test_coinmarketcap_basic_plan_ohlcv_is_refused_by_the_provider_with_its_reason() -> None:
    """On the Basic plan the emulation answers 1006: the error says the plan lacks the route."""
    with (
        Sandbox(profile="coinmarketcap") as sb,
        coinguard.Client(
            provider="coinmarketcap", base_url=sb.base_url, read_key=sb.keys.read
        ) as c,
        pytest.raises(PaginationError) as info,
    ):
        c.ohlcv("BTC", start="2026-11-01", progress=False)
    assert isinstance(info.value.error, PermissionDeniedError)
    assert "1006" in str(info.value.error)


def test_symbol_mapping_is_explicit_inspectable_and_extendable() -> None:
    """CoinGecko's table is shown; an unknown ticker is refused with the fix, mapping= adds it."""
    with (
        Sandbox(profile="coingecko") as sb,
        coinguard.Client(provider="coingecko", base_url=sb.base_url, read_key=sb.keys.read) as c,
    ):
        assert c.symbol_map["BNB"] == "binancecoin"
        assert "BTC->bitcoin" in repr(c.symbol_map)
        with pytest.raises(ConfigurationError, match=r"no id for the symbol 'WBTC'.*mapping="):
            c.prices(["BTC", "WBTC"])
        (row,) = c.prices(["XBT"], mapping={"XBT": "bitcoin"})
    assert row.symbol == "XBT"
    assert sb.ledger.count(status=200) == 1  # the refused call sent nothing


@pytest.mark.anyio
async def test_async_unified_calls() -> None:
    """AsyncClient.prices and .ohlcv answer the same models."""
    with Sandbox() as sb:
        async with coinguard.AsyncClient(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read
        ) as c:
            prices = await c.prices("BTC")
            candles = await c.ohlcv("BTC", start="2026-11-01", end="2026-11-03", progress=False)
    assert prices[0].symbol == "BTC"
    assert len(candles) == 3
