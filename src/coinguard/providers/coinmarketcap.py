"""CoinMarketCap Pro API (https://coinmarketcap.com/api/documentation).

Sourced: root ``https://pro-api.coinmarketcap.com``, header ``X-CMC_PRO_API_KEY`` (the query
form is "a convenience", not used); credits per call are what each body's
``status.credit_count`` says (coinguard debits that, never its own estimate); rate limits
"reset every 60 seconds"; error codes 1001-1011 and their HTTP statuses, and the retry advice
for each (retry 1008 after the minute, 1011 with less concurrency, 1009 only after the daily
reset, never 1010 nor 1001-1007); "check error_code even on HTTP 200"; ``GET /v1/key/info``
reports the plan's minute, daily and monthly limits and their use. Plan figures below are
third-party and conflicting: the lower one is used (Basic 30/min and 10,000 credits a month;
the paid plans' per-minute floors, and no monthly figure where the sources agree on none);
``verify_key()`` reads the real ones from ``/v1/key/info``.

>>> from coinguard import get_provider
>>> get_provider("coinmarketcap").error_codes["1009"].wait
'day'
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._endpoints import Endpoint, Pager, Param
from .._models import CmcCoin, CmcOhlcv
from .._provider import ErrorCode, HeaderKey, Plan, Provider
from .._quota import MONTH, QuotaPolicy, Window
from .._verify import KeyCheck, KeyPermissions, Usage, parse_time

_THIRD = (
    "third-party plan tables, which conflict: the lower figure is used; "
    "GET /v1/key/info reports the real ones"
)


def _plan(per_minute: int, per_month: int | None = None) -> Plan:
    # the minute counts calls; the month counts the credits each body says it billed
    windows = [Window.per_minute(per_minute)]
    if per_month is not None:
        windows.append(Window.per_month(per_month, credits=True))
    return Plan(QuotaPolicy(windows), source=_THIRD)


# Only Basic's monthly credits are known (10,000 or 15,000 by source); for the paid plans the
# sources agree on no monthly figure, so none is declared rather than one made up.
PLANS = {
    "basic": _plan(30, 10_000),
    "hobbyist": _plan(30),
    "startup": _plan(60),
    "standard": _plan(60),
    "professional": _plan(60),
}

ERROR_CODES = {
    "1001": ErrorCode("auth", hint="the API key is invalid"),
    "1002": ErrorCode("auth", hint="the API key is missing"),
    "1003": ErrorCode("payment", hint="the key's plan must be activated (payment required)"),
    "1004": ErrorCode("payment", hint="the key's subscription has expired"),
    "1005": ErrorCode("auth", hint="this endpoint needs an API key"),
    "1006": ErrorCode("permission", hint="the key's plan does not include this endpoint"),
    "1007": ErrorCode("auth", hint="the API key has been disabled; contact CoinMarketCap"),
    "1008": ErrorCode("rate_limit", "minute", "the per-minute rate limit"),
    "1009": ErrorCode("rate_limit", "day", "the daily credit limit; it resets at 00:00 UTC"),
    "1010": ErrorCode("rate_limit", "never", "the monthly credit limit; not retried"),
    "1011": ErrorCode("rate_limit", "backoff", "an IP rate limit: send with less concurrency"),
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _section(data: dict[str, Any], *path: str) -> dict[str, Any]:
    for key in path:
        value = data.get(key)
        data = value if isinstance(value, dict) else {}
    return data


def key_info(body: Any) -> KeyPermissions:
    """Parse ``GET /v1/key/info``: minute, day (where the plan has one) and month use.

    Keys only read: the check reports usage, never a privilege finding.
    """
    data = _section(body if isinstance(body, dict) else {}, "data")
    plan, usage = _section(data, "plan"), _section(data, "usage")
    minute, day = _section(usage, "current_minute"), _section(usage, "current_day")
    month = _section(usage, "current_month")
    windows = [
        Usage(
            "per minute",
            _int(minute.get("requests_made")),
            _int(plan.get("rate_limit_minute")),
            None,
            60.0,
        )
    ]
    if _int(plan.get("credit_limit_daily")) is not None:
        windows.append(
            Usage(
                "today",
                _int(day.get("credits_used")),
                _int(plan.get("credit_limit_daily")),
                parse_time(plan.get("credit_limit_daily_reset_timestamp")),
                86400.0,
            )
        )
    windows.append(
        Usage(
            "this month",
            _int(month.get("credits_used")),
            _int(plan.get("credit_limit_monthly")),
            parse_time(plan.get("credit_limit_monthly_reset_timestamp")),
            MONTH,
        )
    )
    return KeyPermissions(can_read=True, can_trade=False, can_withdraw=False, usage=tuple(windows))


_CONVERT = Param("convert", str, doc="comma-separated currencies (USD when absent)")
_BY_POINTS = "1 per 100 coins, +1 per extra convert"
ENDPOINTS = (
    Endpoint("quotes_latest", "/v1/cryptocurrency/quotes/latest", CmcCoin, rows=("data",),
             shape="mapping", key_field="symbol", cost_note=_BY_POINTS,
             params=(Param("symbol", str, doc="comma-separated symbols"),
                     Param("id", str, doc="comma-separated CoinMarketCap ids"), _CONVERT),
             doc="latest quotes by symbol or id"),
    Endpoint("listings_latest", "/v1/cryptocurrency/listings/latest", CmcCoin, rows=("data",),
             cost_note=_BY_POINTS,
             params=(Param("start", int, doc="1-based rank to start at"),
                     Param("limit", int, doc="coins per page"), _CONVERT),
             paging=Pager("offset", page_param="start", max_limit=5000,
                          total_at=("status", "total_count")),
             doc="coins by market cap"),
    Endpoint("ohlcv_historical", "/v2/cryptocurrency/ohlcv/historical", CmcOhlcv,
             rows=("data", "quotes"), cost_note=_BY_POINTS,
             params=(Param("id", str, required=True, doc="one CoinMarketCap id"),
                     Param("time_period", str, default="daily", doc="'daily' or 'hourly'"),
                     Param("time_start", str, doc="first period, ISO 8601 or YYYY-MM-DD"),
                     Param("time_end", str, doc="last period, ISO 8601 or YYYY-MM-DD"),
                     Param("count", int, doc="periods, when no time_start"), _CONVERT),
             paging=Pager("none", start_param="time_start", end_param="time_end",
                          max_span=timedelta(days=365)),
             doc="daily or hourly OHLCV periods of one coin (not on the Basic plan)"),
)  # fmt: skip

#: CoinMarketCap's own ids for the tickers the unified ``ohlcv()`` accepts (its OHLCV route
#: takes ids; quotes take tickers as they are). Written out, never guessed.
IDS = {
    "BTC": "1", "ETH": "1027", "SOL": "5426", "BNB": "1839", "XRP": "52", "ADA": "2010",
    "DOGE": "74", "AVAX": "5805", "DOT": "6636", "MATIC": "3890", "LINK": "1975", "LTC": "2",
    "TRX": "1958", "ATOM": "3794", "UNI": "7083", "XLM": "512", "ETC": "1321", "FIL": "2280",
    "APT": "21794", "ARB": "11841", "OP": "11840", "NEAR": "6535", "ICP": "8916",
    "HBAR": "4642", "VET": "3077", "ALGO": "4030", "AAVE": "7278", "MKR": "1518",
    "SNX": "2586", "GRT": "6719", "SAND": "6210", "MANA": "1966", "AXS": "6783",
    "EGLD": "6892", "XTZ": "2011", "THETA": "2416", "FTM": "3513", "EOS": "1765",
    "FLOW": "4558", "CHZ": "4066", "KAVA": "4846", "ZEC": "1437", "DASH": "131", "NEO": "1376",
    "COMP": "5692", "CRV": "6538", "SUSHI": "6758", "YFI": "5864", "BAT": "1697", "ENJ": "2130",
}  # fmt: skip

PROFILE = Provider(
    name="coinmarketcap",
    base_url="https://pro-api.coinmarketcap.com",
    auth=HeaderKey("X-CMC_PRO_API_KEY"),
    read_key_env="CMC_PRO_API_KEY",
    plans=PLANS,
    error_code_at=(("status", "error_code"),),
    error_codes=ERROR_CODES,
    key_check=KeyCheck("GET", "/v1/key/info", key_info),
    endpoints=ENDPOINTS,
    symbols=IDS,
).with_plan("basic")
