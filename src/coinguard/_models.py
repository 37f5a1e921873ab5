"""Response models: pydantic classes for what the typed endpoints return.

Every model keeps the fields it does not declare (``model_extra``), so a provider adding a
field loses nothing; times are tz-aware UTC ``datetime`` values whatever the wire form (an ISO
string, a bare date, epoch seconds or milliseconds); prices and volumes are floats.

>>> Candle.model_validate({"date": "2026-11-01", "open": "1", "high": 2, "low": 1,
...                        "close": 1.5, "volume": 10, "symbol": "BTC"}).time.isoformat()
'2026-11-01T00:00:00+00:00'
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "BinanceAccount",
    "BinanceBalance",
    "BinanceOrder",
    "BinancePrice",
    "Candle",
    "CmcCoin",
    "CmcOhlcv",
    "CmcOhlcvQuote",
    "CmcQuote",
    "Grade",
    "Market",
    "MarketChart",
    "Model",
    "Price",
    "Signal",
    "SimplePrice",
    "Token",
    "UTCDateTime",
]

_MS_THRESHOLD = 100_000_000_000  # larger epoch numbers are milliseconds (year 5138 in seconds)


def _utc(value: Any) -> Any:
    """Any wire form of a moment as a tz-aware UTC datetime (naive ones are UTC)."""
    if isinstance(value, bool):
        raise ValueError("a time is not a boolean")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            value = date.fromisoformat(text)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value


#: A tz-aware UTC datetime from an ISO string, a date, or epoch seconds/milliseconds.
UTCDateTime = Annotated[datetime, BeforeValidator(_utc)]


class Model(BaseModel):
    """Base of every response model: immutable, and keeps undeclared fields."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Token(Model):
    """A listed token (Token Metrics ``/tokens``)."""

    token_id: int
    symbol: str
    name: str


class Price(Model):
    """A current price: ``symbol`` priced in ``currency`` at ``time``.

    The unified result of :meth:`coinguard.Client.prices`, and Token Metrics' ``/price`` row.
    """

    symbol: str
    price: float
    time: UTCDateTime | None = Field(
        default=None, validation_alias=AliasChoices("time", "timestamp", "last_updated")
    )
    currency: str = "USD"


class Candle(Model):
    """One OHLCV candle starting at ``time`` (UTC); ``volume`` is None where the provider
    sends none (CoinGecko's ``/ohlc``)."""

    time: UTCDateTime = Field(validation_alias=AliasChoices("time", "date", "timestamp"))
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    symbol: str | None = None


class Grade(Model):
    """Token Metrics trader grades of one token on one day."""

    symbol: str
    date: UTCDateTime
    ta_grade: float
    quant_grade: float
    tm_trader_grade: float


class Signal(Model):
    """A Token Metrics trading signal: 1 bullish, -1 bearish, 0 neutral."""

    symbol: str
    date: UTCDateTime
    trading_signal: int


class SimplePrice(Model):
    """CoinGecko ``/simple/price``: one coin id and its price per currency."""

    id: str
    prices: dict[str, float]


class Market(Model):
    """One row of CoinGecko ``/coins/markets``."""

    id: str
    symbol: str
    name: str
    current_price: float | None = None
    market_cap: float | None = None
    market_cap_rank: int | None = None
    total_volume: float | None = None
    high_24h: float | None = None
    low_24h: float | None = None
    last_updated: UTCDateTime | None = None


class MarketChart(Model):
    """CoinGecko ``/coins/{id}/market_chart``: ``(time, value)`` series."""

    prices: list[tuple[UTCDateTime, float]]
    market_caps: list[tuple[UTCDateTime, float]] = []
    total_volumes: list[tuple[UTCDateTime, float]] = []


class CmcQuote(Model):
    """A CoinMarketCap quote in one currency."""

    price: float
    market_cap: float | None = None
    last_updated: UTCDateTime | None = None


class CmcCoin(Model):
    """A coin in CoinMarketCap's listings and quotes, with a :class:`CmcQuote` per currency."""

    id: int
    name: str
    symbol: str
    cmc_rank: int | None = None
    last_updated: UTCDateTime | None = None
    quote: dict[str, CmcQuote]


class CmcOhlcvQuote(Model):
    """One CoinMarketCap OHLCV period's values in one currency."""

    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    market_cap: float | None = None


class CmcOhlcv(Model):
    """One period of CoinMarketCap ``/v2/cryptocurrency/ohlcv/historical``."""

    time_open: UTCDateTime
    time_close: UTCDateTime | None = None
    quote: dict[str, CmcOhlcvQuote]


class BinancePrice(Model):
    """Binance ``/api/v3/ticker/price``: the last price of one trading pair."""

    symbol: str
    price: float


class BinanceBalance(Model):
    """One asset of a Binance account: ``free`` to trade, ``locked`` in open orders."""

    asset: str
    free: float
    locked: float


class BinanceAccount(Model):
    """Binance ``/api/v3/account`` (a signed read): permissions and balances."""

    canTrade: bool | None = None
    balances: list[BinanceBalance] = []


class BinanceOrder(Model):
    """A Binance spot order, as ``/api/v3/openOrders`` and ``/api/v3/allOrders`` list it."""

    symbol: str
    orderId: int
    clientOrderId: str
    side: str
    type: str
    status: str
    price: float | None = None
    origQty: float | None = None
    executedQty: float | None = None
    time: UTCDateTime | None = Field(
        default=None, validation_alias=AliasChoices("time", "transactTime")
    )
