"""One surface over every data provider: current prices and OHLCV candles.

``client.prices(["BTC", "ETH"])`` and ``client.ohlcv("BTC", start=..., end=...)`` are the same
call, with the same result models (:class:`coinguard.Price`, :class:`coinguard.Candle`),
whichever provider is behind the client. Each provider's adapter turns the call into typed
endpoint calls (sans-I/O: a list of :class:`Fetch`), and the rows back into the unified models.

Symbols are mapped explicitly: a provider keyed by its own ids (CoinGecko's ``bitcoin``) has a
written table, :class:`SymbolMap`, that ``client.symbol_map`` shows; a symbol not in it is an
error naming the fix, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ._exceptions import ConfigurationError
from ._models import Candle, Price

__all__ = ["Adapter", "Fetch", "SymbolMap", "adapter_for"]

INTERVALS = ("1h", "1d")


@dataclass(frozen=True)
class Fetch:
    """One typed endpoint call an adapter needs: ``paginate`` walks it (with the range)."""

    endpoint: str
    params: Mapping[str, Any]
    convert: Callable[[Sequence[Any]], list[Any]]
    paginate: bool = False
    start: date | None = None
    end: date | None = None


class SymbolMap(Mapping[str, str]):
    """Which provider id each symbol means; ``identity`` providers take symbols as they are.

    >>> m = SymbolMap("coingecko", {"BTC": "bitcoin"})
    >>> m["btc"], m.symbol_of("bitcoin")
    ('bitcoin', 'BTC')
    """

    def __init__(self, provider: str, table: Mapping[str, str], *, identity: bool = False):
        self.provider = provider
        self.identity = identity
        self._table = {k.upper(): v for k, v in table.items()}

    def __getitem__(self, symbol: str) -> str:
        key = symbol.strip().upper()
        if self.identity:
            return key
        try:
            return self._table[key]
        except KeyError:
            raise ConfigurationError(
                f"{self.provider} has no id for the symbol {symbol!r} (tickers are ambiguous, "
                f"so none is guessed); pass mapping={{{key!r}: '<{self.provider} id>'}}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def symbol_of(self, provider_id: str) -> str:
        """The symbol a provider id stands for (the id itself when not in the table)."""
        for symbol, pid in self._table.items():
            if pid == provider_id:
                return symbol
        return provider_id.upper()

    def with_(self, extra: Mapping[str, str] | None) -> SymbolMap:
        """This table plus ``extra`` (the caller's entries win)."""
        if not extra:
            return self
        return SymbolMap(self.provider, {**self._table, **extra}, identity=self.identity)

    def __repr__(self) -> str:
        if self.identity:
            return f"SymbolMap({self.provider!r}: symbols are sent as they are)"
        pairs = ", ".join(f"{k}->{v}" for k, v in list(self._table.items())[:6])
        more = f", ... ({len(self._table)} in all)" if len(self._table) > 6 else ""
        return f"SymbolMap({self.provider!r}: {pairs}{more})"


def _symbols(symbols: str | Sequence[str]) -> list[str]:
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    out = [s.strip().upper() for s in items if isinstance(s, str) and s.strip()]
    if not out or len(out) != len(items):
        raise ConfigurationError(f"symbols must be non-empty strings, got {symbols!r}")
    return list(dict.fromkeys(out))


def _interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ConfigurationError(
            f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}"
        )
    return interval


@dataclass(frozen=True)
class Adapter:
    """How one provider answers the unified calls."""

    provider: str
    symbol_map: SymbolMap
    prices: Callable[[list[str], SymbolMap], list[Fetch]]
    ohlcv: Callable[[list[str], str, date, date, SymbolMap, date], list[Fetch]]
    notes: tuple[str, ...] = field(default=())

    def price_fetches(
        self, symbols: str | Sequence[str], mapping: Mapping[str, str] | None
    ) -> list[Fetch]:
        """The calls behind ``client.prices``."""
        return self.prices(_symbols(symbols), self.symbol_map.with_(mapping))

    def ohlcv_fetches(
        self,
        symbols: str | Sequence[str],
        interval: str,
        start: date,
        end: date | None,
        mapping: Mapping[str, str] | None,
        today: date,
    ) -> list[Fetch]:
        """The calls behind ``client.ohlcv``."""
        last = end or today
        if last < start:
            raise ConfigurationError(f"the range ends ({last}) before it starts ({start})")
        table = self.symbol_map.with_(mapping)
        return self.ohlcv(_symbols(symbols), _interval(interval), start, last, table, today)


# -- Token Metrics (and the sandbox, which emulates it) ----------------------------------------


def _tm_prices(symbols: list[str], table: SymbolMap) -> list[Fetch]:
    def convert(rows: Sequence[Any]) -> list[Any]:
        ordered = sorted(rows, key=lambda r: symbols.index(r.symbol))  # the caller's order
        return [Price(symbol=r.symbol, price=r.price, time=r.time) for r in ordered]

    return [Fetch("price", {"symbol": ",".join(symbols)}, convert, paginate=True)]


def _tm_ohlcv(
    symbols: list[str], interval: str, start: date, end: date, table: SymbolMap, today: date
) -> list[Fetch]:
    endpoint = "daily_ohlcv" if interval == "1d" else "hourly_ohlcv"

    def convert(rows: Sequence[Any]) -> list[Any]:
        fields = ("time", "open", "high", "low", "close", "volume", "symbol")
        return [Candle(**{f: getattr(r, f) for f in fields}) for r in rows]

    return [
        Fetch(endpoint, {"symbol": ",".join(symbols)}, convert, paginate=True, start=start, end=end)
    ]


# -- CoinGecko -------------------------------------------------------------------------------


def _cg_prices(symbols: list[str], table: SymbolMap) -> list[Fetch]:
    ids = [table[s] for s in symbols]

    def convert(rows: Sequence[Any]) -> list[Any]:
        now = datetime.now(timezone.utc)
        by_id = {r.id: r for r in rows}
        return [
            Price(symbol=symbol, price=by_id[i].prices["usd"], time=now)
            for symbol, i in zip(symbols, ids, strict=True)
            if i in by_id and "usd" in by_id[i].prices
        ]

    return [Fetch("simple_price", {"ids": ",".join(ids), "vs_currencies": "usd"}, convert)]


def _cg_ohlcv(
    symbols: list[str], interval: str, start: date, end: date, table: SymbolMap, today: date
) -> list[Fetch]:
    days = (today - start).days + 1
    if interval == "1h" and days > 2:
        raise ConfigurationError(
            "coingecko's /ohlc has hourly candles only for the last 2 days; use interval='1d'"
        )
    if interval == "1d":
        days = max(days, 3)  # CoinGecko answers hourly candles for 1 or 2 days
    if days > 365:
        raise ConfigurationError("coingecko's /ohlc reaches back 365 days on this plan")
    low = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    high = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1)
    fetches = []
    for symbol in symbols:

        def convert(rows: Sequence[Any], symbol: str = symbol) -> list[Any]:
            return [r.model_copy(update={"symbol": symbol}) for r in rows if low <= r.time < high]

        fetches.append(Fetch("ohlc", {"id": table[symbol], "days": days}, convert))
    return fetches


# -- CoinMarketCap ---------------------------------------------------------------------------


def _cmc_prices(symbols: list[str], table: SymbolMap) -> list[Fetch]:
    def convert(rows: Sequence[Any]) -> list[Any]:
        by_symbol = {r.symbol: r for r in rows}
        return [
            Price(symbol=s, price=by_symbol[s].quote["USD"].price,
                  time=by_symbol[s].quote["USD"].last_updated)
            for s in symbols
            if s in by_symbol
        ]  # fmt: skip

    return [Fetch("quotes_latest", {"symbol": ",".join(symbols)}, convert)]


def _cmc_ohlcv(
    symbols: list[str], interval: str, start: date, end: date, table: SymbolMap, today: date
) -> list[Fetch]:
    period = "daily" if interval == "1d" else "hourly"
    fetches = []
    for symbol in symbols:

        def convert(rows: Sequence[Any], symbol: str = symbol) -> list[Any]:
            out = []
            for r in rows:
                q = r.quote["USD"]
                out.append(Candle(time=r.time_open, open=q.open, high=q.high, low=q.low,
                                  close=q.close, volume=q.volume, symbol=symbol))  # fmt: skip
            return out

        params = {"id": table[symbol], "time_period": period}
        fetches.append(
            Fetch("ohlcv_historical", params, convert, paginate=True, start=start, end=end)
        )
    return fetches


# -- Binance ---------------------------------------------------------------------------------

_KLINES = 1000  # candles Binance answers at most per call
_STEP = {"1d": 86_400_000, "1h": 3_600_000}


def _bn_prices(symbols: list[str], table: SymbolMap) -> list[Fetch]:
    fetches = []
    for symbol in symbols:

        def convert(rows: Sequence[Any], symbol: str = symbol) -> list[Any]:
            now = datetime.now(timezone.utc)
            return [Price(symbol=symbol, price=r.price, time=now) for r in rows]

        fetches.append(Fetch("ticker_price", {"symbol": table[symbol]}, convert))
    return fetches


def _bn_ohlcv(
    symbols: list[str], interval: str, start: date, end: date, table: SymbolMap, today: date
) -> list[Fetch]:
    step = _STEP[interval]
    first = int(datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp())
    last = int(datetime(end.year, end.month, end.day, tzinfo=timezone.utc).timestamp())
    low, high = first * 1000, last * 1000 + 86_400_000 - step  # the last day's last candle
    fetches = []
    for symbol in symbols:

        def convert(rows: Sequence[Any], symbol: str = symbol) -> list[Any]:
            return [r.model_copy(update={"symbol": symbol}) for r in rows]

        # a range longer than one call answers is split into calls of at most 1000 candles
        for chunk in range(low, high + 1, step * _KLINES):
            params = {
                "symbol": table[symbol],
                "interval": interval,
                "startTime": chunk,
                "endTime": min(high, chunk + step * (_KLINES - 1)),
                "limit": _KLINES,
            }
            fetches.append(Fetch("klines", params, convert))
    return fetches


_TM = (_tm_prices, _tm_ohlcv)
_ADAPTERS: Mapping[str, tuple[Any, Any]] = {
    "tokenmetrics": _TM,
    "sandbox": _TM,
    "coingecko": (_cg_prices, _cg_ohlcv),
    "coingecko-pro": (_cg_prices, _cg_ohlcv),
    "coinmarketcap": (_cmc_prices, _cmc_ohlcv),
    "binance": (_bn_prices, _bn_ohlcv),
}


def adapter_for(name: str, symbols: Mapping[str, str]) -> Adapter:
    """The unified adapter of a provider profile, with its symbol table."""
    found = _ADAPTERS.get(name)
    if found is None:
        known = ", ".join(_ADAPTERS)
        raise ConfigurationError(
            f"provider {name!r} has no unified prices/ohlcv; providers that have: {known}"
        )
    table = SymbolMap(name, symbols, identity=not symbols)
    return Adapter(name, table, found[0], found[1])
