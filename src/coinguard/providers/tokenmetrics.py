"""Token Metrics data API (https://developers.tokenmetrics.com).

Sourced: base URL ``https://api.tokenmetrics.com/v2`` and the ``x-api-key`` header
(docs/authentication); "each request made to any endpoint counts as 1 call = 1 credit"; monthly
calls by tier, Advanced 10,000, Premium 50,000, VIP 250,000 (docs/token-metrics-trading-api);
answers wrapped in ``{success, message, length, data}``; pagination by ``limit`` and ``page``.
Not documented: a per-second or per-minute limit (none is assumed: a 429 and its Retry-After
put the key in the penalty box), key scopes, and a key-info route (``verify_key()`` checks that
the key authenticates with one cheap read, and says the scopes were not checked).

>>> from coinguard import get_provider
>>> get_provider("tokenmetrics").with_plan("premium").quota.windows[0].limit
50000
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._endpoints import Endpoint, Pager, Param
from .._models import Candle, Grade, Price, Signal, Token
from .._provider import HeaderKey, Plan, Provider
from .._quota import QuotaPolicy, Window
from .._verify import KeyCheck, KeyPermissions

_SOURCE = "monthly calls per tier, developers.tokenmetrics.com (1 request = 1 credit)"


def _monthly(calls: int) -> Plan:
    return Plan(QuotaPolicy([Window.per_month(calls)]), source=_SOURCE)


def authenticates(body: Any) -> KeyPermissions:
    """A successful read: the key works. Token Metrics has no route that reports scopes."""
    return KeyPermissions(
        can_read=True,
        can_trade=False,
        can_withdraw=False,
        note=(
            "Token Metrics documents no key-info route: the key authenticates (one read of "
            "/tokens), its scopes and usage were not checked (see the API dashboard)"
        ),
    )


_SELECT = (
    Param("symbol", str, doc="comma-separated symbols, e.g. 'BTC,ETH'"),
    Param("token_id", str, doc="comma-separated token ids"),
)
_PAGE = (Param("limit", int, doc="rows per page"), Param("page", int, doc="page number, from 1"))
_RANGE = (
    Param("startDate", str, doc="first day, YYYY-MM-DD"),
    Param("endDate", str, doc="last day, YYYY-MM-DD"),
)


def _paged(max_span: timedelta | None = None) -> Pager:
    # "limit: default 50, maximum 100" (Token Metrics' own MCP server's tool schema). The range
    # per call is coinguard's own chunk: a long range is fetched a chunk at a time.
    if max_span is None:
        return Pager("page", max_limit=100)
    return Pager(
        "page", max_limit=100, start_param="startDate", end_param="endDate", max_span=max_span
    )


def endpoints(ohlcv_cost: int = 1) -> tuple[Endpoint, ...]:
    """The main read endpoints (``ohlcv_cost``: credits of an OHLCV call, 1 on Token Metrics)."""
    data = ("data",)
    return (
        Endpoint("tokens", "/tokens", Token, params=(*_SELECT, *_PAGE), rows=data,
                 paging=_paged(), doc="listed tokens"),
        Endpoint("price", "/price", Price, params=(*_SELECT, *_PAGE), rows=data,
                 paging=_paged(), doc="current prices in USD"),
        Endpoint("daily_ohlcv", "/daily-ohlcv", Candle, cost=ohlcv_cost,
                 params=(*_SELECT, *_RANGE, *_PAGE), rows=data,
                 paging=_paged(timedelta(days=365)), doc="daily candles, days ascending"),
        Endpoint("hourly_ohlcv", "/hourly-ohlcv", Candle, cost=ohlcv_cost,
                 params=(*_SELECT, *_RANGE, *_PAGE), rows=data,
                 paging=_paged(timedelta(days=30)), doc="hourly candles, hours ascending"),
        Endpoint("trader_grades", "/trader-grades", Grade,
                 params=(*_SELECT, *_RANGE, *_PAGE), rows=data,
                 paging=_paged(timedelta(days=365)), doc="daily trader grades"),
        Endpoint("trading_signals", "/trading-signals", Signal,
                 params=(*_SELECT, *_RANGE, *_PAGE), rows=data,
                 paging=_paged(timedelta(days=365)), doc="daily trading signals"),
    )  # fmt: skip


PROFILE = Provider(
    name="tokenmetrics",
    base_url="https://api.tokenmetrics.com/v2",
    auth=HeaderKey("x-api-key"),
    read_key_env="TOKENMETRICS_API_KEY",
    envelope=True,
    plans={"advanced": _monthly(10_000), "premium": _monthly(50_000), "vip": _monthly(250_000)},
    key_check=KeyCheck("GET", "/tokens", authenticates, params=(("limit", "1"),)),
    endpoints=endpoints(),
).with_plan("advanced")
