"""The CoinMarketCap emulation: the Pro API's root, auth, error table, limits and credits.

The key goes in ``X-CMC_PRO_API_KEY`` (or the query's ``CMC_PRO_API_KEY``). Every body has a
``status`` object ``{timestamp, error_code, error_message, elapsed, credit_count}``:
``error_code`` is 0 on success and ``credit_count`` is the credits the call was billed.
Error codes 1001-1011 answer with CoinMarketCap's documented HTTP statuses and messages.

Checks run in this order: route (404) -> key (1002 missing, 1001 invalid; HTTP 401; a revoked
key is 1007, disabled, HTTP 403) -> the
plan includes the endpoint (1006, 403) -> the rolling minute window of requests (1008, 429)
-> the handler (400) -> the day's credits (1009, 429, only with a daily cap) and the month's
(1010, 429). Credit rule, from CoinMarketCap's authentication guide: a data call costs 1
credit per 100 data points returned, rounded up (1 credit up to 100 coins, 2 up to 200, ...),
plus 1 per ``convert`` currency beyond the first; ``/v1/key/info`` and error answers are free.
The plan's limits come from :mod:`coinguard.providers.coinmarketcap`.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..providers import coinmarketcap
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig
from ._data import Candle, Market, Token
from ._emulation import (
    FIAT,
    Call,
    EmulatorBase,
    Limits,
    Outcome,
    by_market_cap,
    header_name,
    int_param,
    iso,
    json_body,
    limits_of_plan,
    supply,
)
from ._ledger import Ledger
from ._wire import Reply

__all__ = ["ERRORS", "CoinMarketCap", "credits_for"]

#: code -> (HTTP status, message): CoinMarketCap's error table.
ERRORS: Mapping[str, tuple[int, str]] = {
    "1001": (401, "This API Key is invalid."),
    "1002": (401, "API key missing."),
    "1003": (
        402,
        "Your API Key must be activated. Please go to pro.coinmarketcap.com/account/plan.",
    ),
    "1004": (402, "Your API Key's subscription plan has expired."),
    "1005": (403, "An API Key is required for this call."),
    "1006": (403, "Your API Key subscription plan doesn't support this endpoint."),
    "1007": (403, "This API Key has been disabled. Please contact support."),
    "1008": (
        429,
        "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    ),
    "1009": (429, "You've exceeded your API Key's daily rate limit."),
    "1010": (429, "You've exceeded your API Key's monthly rate limit."),
    "1011": (429, "You've hit an IP rate limit."),
}
_HEADER = header_name(coinmarketcap.PROFILE.auth)
_QUERY = "CMC_PRO_API_KEY"
UNIVERSE = 2000  # the synthetic market's tokens first, then small filler coins
MAX_LIMIT = 5000
_NOT_ON_BASIC = frozenset(
    {"/v1/cryptocurrency/listings/historical", "/v2/cryptocurrency/ohlcv/historical"}
)


class ApiError(Exception):
    """A 400/404 answer: CoinMarketCap puts the HTTP status in ``error_code`` too."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Coin:
    """One listed coin at one moment."""

    id: int
    name: str
    symbol: str
    price: float
    supply: float

    def as_json(self, rank: int, converts: list[str], stamp: str) -> dict[str, Any]:
        """The coin as listings and quotes show it."""
        quote = {}
        for currency in converts:
            rate = FIAT.get(currency.lower()) or 1.0
            quote[currency] = {
                "price": float(f"{self.price * rate:.8g}"),
                "market_cap": round(self.price * rate * self.supply, 2),
                "last_updated": stamp,
            }
        return {
            "id": self.id,
            "name": self.name,
            "symbol": self.symbol,
            "slug": self.name.lower().replace(" ", "-"),
            "cmc_rank": rank,
            "circulating_supply": self.supply,
            "last_updated": stamp,
            "quote": quote,
        }


def credits_for(points: int, converts: int = 1) -> int:
    """Credits of a data call returning ``points`` data points in ``converts`` currencies.

    >>> credits_for(1), credits_for(100), credits_for(101), credits_for(250, converts=2)
    (1, 1, 2, 4)
    """
    return max(1, math.ceil(points / 100)) + max(0, converts - 1)


def store() -> KeyStore:
    """A key store issuing UUID-shaped keys, as CoinMarketCap's are."""
    return KeyStore(None, lambda: str(uuid.uuid4()))


class CoinMarketCap(EmulatorBase):
    """The Pro API root, one key provisioned at start on the configured plan."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        super().__init__(config, store, ledger, market)
        plan = (config.plan or coinmarketcap.PROFILE.plan or "basic").lower()
        if plan not in coinmarketcap.PLANS:
            known = ", ".join(sorted(coinmarketcap.PLANS))
            raise ValueError(f"CoinMarketCap has no plan {plan!r}; its plans: {known}")
        self.plan = plan
        self.plan_limits = limits_of_plan(plan.title(), coinmarketcap.PLANS[plan], config)
        self.keys = Keys(read=self.provision("cmc", self.plan_limits, "read", config.clock()))

    def default_limits(self, record: KeyRecord) -> Limits:
        """Later keys get the configured plan, on their own account."""
        return self.plan_limits

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call, in the order the module docstring gives."""
        handler = _ROUTES.get(call.path)
        if handler is None:
            return _error(call, 404, 404, "Not found"), Outcome(404, "not-found")
        queried = call.params.pop(_QUERY, None)  # never seen (or echoed) by a handler
        presented = call.request.headers.get(_HEADER) or queried
        out = Outcome(0, "", presented, route=call.path)
        if not presented:
            return self._coded(call, out, "1002"), out
        record = self.store.lookup(presented, call.now)
        if record is None:
            # a key this server issued and then revoked is "disabled", any other "invalid"
            return self._coded(call, out, "1007" if self._issued(presented) else "1001"), out
        out.record = record
        if call.path in _NOT_ON_BASIC and self.limits(record).name.lower() == "basic":
            return self._coded(call, out, "1006"), out
        if not self.take_request(record, call.now).admitted:
            return self._coded(call, out, "1008"), out
        out.admitted = True
        faulted = self.fault(
            faults, rng, out, lambda status: _error(call, status, status, "Internal server error")
        )
        if faulted is not None:
            return faulted, out
        try:
            data, credits, extra = handler(self, call, record)
        except ApiError as exc:
            out.status, out.outcome = exc.status, "bad-request"
            return _error(call, exc.status, exc.status, exc.message), out
        refused = self._over_credits(record, credits, call.now)
        if refused is not None:
            return self._coded(call, out, refused), out
        self.bill(record, credits, call.now)
        out.status, out.outcome, out.credits = 200, "ok", credits
        body = {"data": data, "status": {**_status(call, 0, None, credits), **extra}}
        return Reply(200, [("content-type", "application/json")], json_body(body)), out

    def _issued(self, key: str) -> bool:
        try:
            self.store.account_of(key)
        except KeyError:
            return False
        return True

    def _over_credits(self, record: KeyRecord, credits: int, now: float) -> str | None:
        limits = self.limits(record)
        for code, cap, meter in (
            ("1009", limits.daily, self.day),
            ("1010", limits.monthly, self.month),
        ):
            if credits and cap is not None and meter.used(record.account, now) + credits > cap:
                return code
        return None

    def _coded(self, call: Call, out: Outcome, code: str) -> Reply:
        status, message = ERRORS[code]
        out.status, out.outcome = status, f"error-{code}"
        return _error(call, status, int(code), message)

    # -- usage route ---------------------------------------------------------------------

    def key_info(self, call: Call, record: KeyRecord) -> dict[str, Any]:
        """``GET /v1/key/info`` from our own counters (daily fields only with a daily cap)."""
        limits, now = self.limits(record), call.now
        month_used = self.month.used(record.account, now)
        month_end = self.month.bucket(now)[1]
        plan: dict[str, Any] = {}
        day: dict[str, Any] = {"credits_used": self.day.used(record.account, now)}
        if limits.daily is not None:
            day_end = self.day.bucket(now)[1]
            plan["credit_limit_daily"] = limits.daily
            plan["credit_limit_daily_reset"] = _in(day_end - now)
            plan["credit_limit_daily_reset_timestamp"] = iso(day_end)
            day["credits_left"] = max(0, limits.daily - day["credits_used"])
        plan["credit_limit_monthly"] = limits.monthly
        plan["credit_limit_monthly_reset"] = _in(month_end - now)
        plan["credit_limit_monthly_reset_timestamp"] = iso(month_end)
        plan["rate_limit_minute"] = limits.per_minute
        minute = self.minute_used(record, now)
        month_left = None if limits.monthly is None else max(0, limits.monthly - month_used)
        return {
            "plan": plan,
            "usage": {
                "current_minute": {
                    "requests_made": minute,
                    "requests_left": max(0, limits.per_minute - minute),
                },
                "current_day": day,
                "current_month": {"credits_used": month_used, "credits_left": month_left},
            },
        }

    # -- data ----------------------------------------------------------------------------

    def coins(self, now: float) -> list[Coin]:
        """Every listed coin at ``now``, largest market cap first."""
        ranked = [
            Coin(_cmc_id(t, i), t.name, t.symbol, price, supply(self.market, t))
            for i, (t, price, _cap) in enumerate(by_market_cap(self.market, now))
        ]
        smallest = ranked[-1].price * ranked[-1].supply
        for n in range(len(ranked), UNIVERSE):
            # filler coins rank below every real one: caps shrink with n
            price = 0.01 + (n * 7919 % 1000) / 1000
            cap = smallest * 0.9 * (UNIVERSE - n) / UNIVERSE
            ranked.append(
                Coin(100_000 + n, f"Synthetic {n:04d}", f"SYN{n:04d}", price, round(cap / price))
            )
        return ranked


def _cmc_id(token: Token, rank: int) -> int:
    """The coin's CoinMarketCap id, from the client's own table (a rank-based one if absent)."""
    return int(coinmarketcap.IDS.get(token.symbol, str(50_000 + rank)))


# -- answers ---------------------------------------------------------------------------------


def _status(call: Call, code: int, message: str | None, credits: int) -> dict[str, Any]:
    return {
        "timestamp": iso(call.now),
        "error_code": code,
        "error_message": message,
        "elapsed": 1,
        "credit_count": credits,
        "notice": None,
    }


def _error(call: Call, status: int, code: int, message: str) -> Reply:
    body = {"status": _status(call, code, message, 0)}
    return Reply(status, [("content-type", "application/json")], json_body(body))


def _in(seconds: float) -> str:
    minutes = max(0, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} days"] if days else []
    return "In " + ", ".join([*parts, f"{hours} hours", f"{minutes} minutes"])


# -- routes ----------------------------------------------------------------------------------

Handled = tuple[Any, int, dict[str, Any]]


def _int(call: Call, name: str, default: int, low: int, high: int) -> int:
    value = int_param(call, name, default, low, high)
    if value is None:
        raise ApiError(400, f'"{name}" must be an integer between {low} and {high}')
    return value


def _converts(call: Call) -> list[str]:
    raw = call.params.get("convert", "USD")
    converts = [c.strip().upper() for c in raw.split(",") if c.strip()]
    bad = [c for c in converts if FIAT.get(c.lower()) is None]
    if bad or not converts:
        raise ApiError(400, f'Invalid value for "convert": "{",".join(bad)[:40]}"')
    return converts


def _listings(emu: CoinMarketCap, call: Call, record: KeyRecord) -> Handled:
    start = _int(call, "start", 1, 1, UNIVERSE + 1)
    limit = _int(call, "limit", 100, 1, MAX_LIMIT)
    converts, stamp = _converts(call), iso(call.now)
    coins = emu.coins(call.now)
    page = coins[start - 1 : start - 1 + limit]
    data = [c.as_json(start + i, converts, stamp) for i, c in enumerate(page)]
    return data, credits_for(len(data), len(converts)), {"total_count": len(coins)}


def _quotes(emu: CoinMarketCap, call: Call, record: KeyRecord) -> Handled:
    converts, stamp = _converts(call), iso(call.now)
    coins = emu.coins(call.now)
    by_symbol = {c.symbol: (rank, c) for rank, c in enumerate(coins, start=1)}
    by_id = {str(c.id): (rank, c) for rank, c in enumerate(coins, start=1)}
    field, table = ("symbol", by_symbol) if "symbol" in call.params else ("id", by_id)
    wanted = [w.strip().upper() for w in call.params.get(field, "").split(",") if w.strip()]
    if not wanted:
        raise ApiError(400, '"value" must contain at least one of [id, symbol, slug]')
    missing = [w for w in wanted if w not in table]
    if missing:
        raise ApiError(400, f'Invalid value for "{field}": "{",".join(missing)[:40]}"')
    data = {w: table[w][1].as_json(table[w][0], converts, stamp) for w in dict.fromkeys(wanted)}
    return data, credits_for(len(data), len(converts)), {}


def _moment(call: Call, name: str) -> datetime | None:
    raw = call.params.get(name)
    if raw is None:
        return None
    try:
        text = raw.strip()
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f'Invalid value for "{name}": "{raw[:40]}"') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _ohlcv(emu: CoinMarketCap, call: Call, record: KeyRecord) -> Handled:
    """``/v2/cryptocurrency/ohlcv/historical`` for one ``id``: daily or hourly periods, oldest
    first, from ``time_start`` to ``time_end`` (the last ``count`` periods without a start)."""
    wanted = call.params.get("id", "").strip()
    token = next((t for i, t in enumerate(emu.market.tokens) if str(_cmc_id(t, i)) == wanted), None)
    if token is None:
        raise ApiError(400, f'Invalid value for "id": "{wanted[:40]}"')
    period = call.params.get("time_period", "daily")
    if period not in ("daily", "hourly"):
        raise ApiError(400, f'Invalid value for "time_period": "{period[:40]}"')
    step = timedelta(days=1) if period == "daily" else timedelta(hours=1)
    converts = _converts(call)
    count = _int(call, "count", 10, 1, 10_000)
    now = datetime.fromtimestamp(call.now, tz=timezone.utc)
    end = _moment(call, "time_end") or now
    if period == "daily" and len(call.params.get("time_end", "").strip()) == 10:
        end += timedelta(days=1) - timedelta(microseconds=1)  # a date ends with its day
    end = min(end, now)
    start = _moment(call, "time_start")
    first = _floor(start, period) if start else _floor(end, period) - step * (count - 1)
    quotes: list[dict[str, Any]] = []
    moment = first
    while moment <= end and len(quotes) < 10_000:
        if period == "daily":
            candle = emu.market.daily(token, moment.date())
        else:
            candle = emu.market.hourly(token, moment.date())[moment.hour]
        quotes.append(_period(candle, step, converts))
        moment += step
    data = {"id": int(wanted), "name": token.name, "symbol": token.symbol, "quotes": quotes}
    return data, credits_for(len(quotes), len(converts)), {}


def _floor(moment: datetime, period: str) -> datetime:
    if period == "daily":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _period(candle: Candle, step: timedelta, converts: list[str]) -> dict[str, Any]:
    close_at = candle.start + step - timedelta(milliseconds=1)
    quote = {}
    for currency in converts:
        rate = FIAT.get(currency.lower()) or 1.0
        values = (candle.open, candle.high, candle.low, candle.close)
        o, h, low, c = (float(f"{v * rate:.8g}") for v in values)
        quote[currency] = {
            "open": o, "high": h, "low": low, "close": c,
            "volume": round(candle.volume * rate, 2), "timestamp": iso(close_at.timestamp()),
        }  # fmt: skip
    return {
        "time_open": iso(candle.start.timestamp()),
        "time_close": iso(close_at.timestamp()),
        "quote": quote,
    }


def _key_info(emu: CoinMarketCap, call: Call, record: KeyRecord) -> Handled:
    return emu.key_info(call, record), 0, {}


_ROUTES: Mapping[str, Callable[[CoinMarketCap, Call, KeyRecord], Handled]] = {
    "/v1/cryptocurrency/listings/latest": _listings,
    "/v1/cryptocurrency/listings/historical": _listings,
    "/v1/cryptocurrency/quotes/latest": _quotes,
    "/v2/cryptocurrency/ohlcv/historical": _ohlcv,
    "/v1/key/info": _key_info,
}
