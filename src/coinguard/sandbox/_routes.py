"""Endpoint handlers: pure functions of (parsed request, state) that return data or raise."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ._data import FIRST_DAY, Market, Token, candle_json

__all__ = ["READ_HANDLERS", "ROUTES", "ApiError", "Ctx", "Page", "Route", "match_route"]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_LIMIT = 1000


class ApiError(Exception):
    """An error answer: HTTP ``status`` and the envelope ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path template under ``/v2`` and the scope it needs."""

    method: str
    template: str
    scope: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/tokens", "read"),
    Route("GET", "/price", "read"),
    Route("GET", "/daily-ohlcv", "read"),
    Route("GET", "/hourly-ohlcv", "read"),
    Route("GET", "/trader-grades", "read"),
    Route("GET", "/trading-signals", "read"),
    Route("GET", "/key", "any"),
    Route("GET", "/orders", "trade"),
    Route("POST", "/orders", "trade"),
    Route("GET", "/orders/{id}", "trade"),
    Route("DELETE", "/orders/{id}", "trade"),
)
_ORDER_PATH = re.compile(r"^/orders/([A-Za-z0-9_-]{1,64})$")


def match_route(method: str, path: str) -> tuple[Route | None, list[str], str | None]:
    """Return ``(route, allowed_methods, order_id)`` for a path under ``/v2``."""
    template, order_id = path, None
    found = _ORDER_PATH.match(path)
    if found:
        template, order_id = "/orders/{id}", found[1]
    candidates = [r for r in ROUTES if r.template == template]
    route = next((r for r in candidates if r.method == method), None)
    return route, [r.method for r in candidates], order_id


@dataclass(frozen=True)
class Ctx:
    """What a read handler gets: the last value of each query parameter, and the time."""

    params: Mapping[str, str]
    now: float
    market: Market


@dataclass(frozen=True)
class Page:
    """A page of rows plus the message of the envelope."""

    rows: list[dict[str, Any]]


def _int_param(ctx: Ctx, name: str, default: int, low: int, high: int | None) -> int:
    raw = ctx.params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw.strip()):
        raise ApiError(400, f"Invalid value for parameter '{name}': expected an integer")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(400, f"Invalid value for parameter '{name}': must be {bound}")
    return value


def _pagination(ctx: Ctx) -> tuple[int, int]:
    limit = _int_param(ctx, "limit", 50, 1, MAX_LIMIT)
    page = _int_param(ctx, "page", 1, 1, None)
    return (page - 1) * limit, limit


def _tokens(ctx: Ctx) -> list[Token]:
    """Tokens chosen by ``symbol`` and/or ``token_id`` (comma-separated); all when neither."""
    market = ctx.market
    chosen: list[Token] = []
    for name in ("symbol", "token_id"):
        raw = ctx.params.get(name)
        if raw is None:
            continue
        items = [part.strip() for part in raw.split(",")]
        if not all(items):
            raise ApiError(400, f"Invalid value for parameter '{name}': empty item")
        for item in items:
            token = _resolve(market, name, item)
            if token not in chosen:
                chosen.append(token)
    return chosen or list(market.tokens)


def _resolve(market: Market, name: str, item: str) -> Token:
    token = None
    if name == "symbol":
        token = market.by_symbol.get(item.upper())
    elif item.isdigit():
        token = market.by_id.get(int(item))
    if token is None:
        raise ApiError(400, f"Invalid value for parameter '{name}': unknown {name} {item[:32]!r}")
    return token


def _today(ctx: Ctx) -> date:
    return datetime.fromtimestamp(ctx.now, tz=timezone.utc).date()


def _date_param(ctx: Ctx, name: str, default: date) -> date:
    raw = ctx.params.get(name)
    if raw is None:
        return default
    try:
        if not _DATE_RE.match(raw):
            raise ValueError(raw)
        value = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for parameter '{name}': expected YYYY-MM-DD") from None
    if value < FIRST_DAY:
        raise ApiError(400, f"Invalid value for parameter '{name}': no data before {FIRST_DAY}")
    return value


def _days(ctx: Ctx, default_span: int) -> list[date]:
    today = _today(ctx)
    end = min(_date_param(ctx, "endDate", today), today)
    start = _date_param(ctx, "startDate", max(FIRST_DAY, end - timedelta(days=default_span - 1)))
    if start > end:
        raise ApiError(400, "Invalid value for parameter 'startDate': after endDate (or today)")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _paged_grid(
    ctx: Ctx, outer: int, inner: int, build: Callable[[int, int], dict[str, Any]]
) -> Page:
    """Build only the requested page of an ``outer x inner`` grid of rows."""
    offset, limit = _pagination(ctx)
    total = outer * inner
    return Page([build(*divmod(i, inner)) for i in range(offset, min(total, offset + limit))])


def tokens(ctx: Ctx) -> Page:
    """``GET /tokens``."""
    chosen = _tokens(ctx)
    return _paged_grid(ctx, len(chosen), 1, lambda i, _: chosen[i].as_json())


def price(ctx: Ctx) -> Page:
    """``GET /price``: spot prices at the server clock."""
    chosen = _tokens(ctx)
    stamp = datetime.fromtimestamp(ctx.now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def row(i: int, _: int) -> dict[str, Any]:
        token = chosen[i]
        value = ctx.market.price(token, ctx.now)
        return {
            "token_id": token.token_id,
            "symbol": token.symbol,
            "name": token.name,
            "price": float(f"{value:.6g}"),
            "timestamp": stamp,
        }

    return _paged_grid(ctx, len(chosen), 1, row)


def daily_ohlcv(ctx: Ctx) -> Page:
    """``GET /daily-ohlcv``: one row per (day, token), days ascending."""
    chosen, days = _tokens(ctx), _days(ctx, 30)
    return _paged_grid(
        ctx,
        len(days),
        len(chosen),
        lambda d, t: candle_json(chosen[t], ctx.market.daily(chosen[t], days[d]), hourly=False),
    )


def hourly_ohlcv(ctx: Ctx) -> Page:
    """``GET /hourly-ohlcv``: one row per (hour, token); hours of today by default."""
    chosen, days = _tokens(ctx), _days(ctx, 1)
    now = ctx.now

    def row(h: int, t: int) -> dict[str, Any]:
        candle = ctx.market.hourly(chosen[t], days[h // 24])[h % 24]
        return candle_json(chosen[t], candle, hourly=True)

    hours = len(days) * 24
    # Hours that have not started yet are not served.
    last_day_start = datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=timezone.utc)
    future = max(0, 24 - 1 - int((now - last_day_start.timestamp()) // 3600))
    return _paged_grid(ctx, max(0, hours - future), len(chosen), row)


def _daily_feature(ctx: Ctx, feature: Callable[[Token, date], dict[str, Any]]) -> Page:
    chosen, days = _tokens(ctx), _days(ctx, 1)

    def row(d: int, t: int) -> dict[str, Any]:
        token = chosen[t]
        head = {"token_id": token.token_id, "symbol": token.symbol, "name": token.name}
        return {**head, "date": days[d].isoformat(), **feature(token, days[d])}

    return _paged_grid(ctx, len(days), len(chosen), row)


def trader_grades(ctx: Ctx) -> Page:
    """``GET /trader-grades``: one row per (day, token); today by default."""
    return _daily_feature(ctx, ctx.market.grade)


def trading_signals(ctx: Ctx) -> Page:
    """``GET /trading-signals``: one row per (day, token); today by default."""
    return _daily_feature(ctx, ctx.market.signal)


READ_HANDLERS: Mapping[str, Callable[[Ctx], Page]] = {
    "/tokens": tokens,
    "/price": price,
    "/daily-ohlcv": daily_ohlcv,
    "/hourly-ohlcv": hourly_ohlcv,
    "/trader-grades": trader_grades,
    "/trading-signals": trading_signals,
}
