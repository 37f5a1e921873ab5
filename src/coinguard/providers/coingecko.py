"""CoinGecko (https://docs.coingecko.com): the Demo plan and the paid (Pro) plans.

Sourced: demo root ``https://api.coingecko.com/api/v3`` with header ``x-cg-demo-api-key``, Pro
root ``https://pro-api.coingecko.com/api/v3`` with ``x-cg-pro-api-key`` (docs, authentication);
demo keys and Pro keys share the ``CG-`` prefix, so the plan cannot be told from the key: say
``plan=`` (or use ``coingecko-pro``); a key sent to the other root answers 10010 (a Pro key on
the demo root) or 10011 (a demo key on the Pro root); demo 100 calls/min (docs, errors and
rate limits); "each successful request (HTTP 200) deducts 1 credit"; 429 bodies
``{"status": {"error_code": 429, ...}}`` with ``retry-after``, sometimes a Cloudflare HTML page
(a 429 whatever its body); ``GET /key`` (Pro) reports plan, per-minute limit and monthly use.
Third-party figures, to be overridden by ``GET /key`` at run time: demo 10,000 credits a month;
Basic 250/min and 100,000; Analyst 500/min and 500,000; Lite 500/min and 2,000,000.

>>> from coinguard import get_provider
>>> pro = get_provider("coingecko").with_plan("analyst")
>>> pro.auth.name, [w.limit for w in pro.quota.windows]
('x-cg-pro-api-key', [500, 500000])
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .._endpoints import Endpoint, Pager, Param
from .._models import Candle, Market, MarketChart, SimplePrice
from .._provider import ErrorCode, HeaderKey, Plan, Provider
from .._quota import MONTH, QuotaPolicy, Window
from .._verify import KeyCheck, KeyPermissions, Usage

DEMO_URL = "https://api.coingecko.com/api/v3"
PRO_URL = "https://pro-api.coingecko.com/api/v3"
_DEMO_KEY = HeaderKey("x-cg-demo-api-key")
_PRO_KEY = HeaderKey("x-cg-pro-api-key")


def _plan(per_minute: int, per_month: int, *, pro: bool, source: str) -> Plan:
    # every request counts against the minute; only a successful one spends a credit
    month = Window.per_month(per_month, credits=True)
    quota = QuotaPolicy([Window.per_minute(per_minute), month])
    if not pro:
        return Plan(quota, source=source)
    usage = KeyCheck("GET", "/key", key_usage)
    return Plan(quota, PRO_URL, _PRO_KEY, "COINGECKO_PRO_API_KEY", usage, source)


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def key_usage(body: Any) -> KeyPermissions:
    """Parse ``GET /key``: the plan, the per-minute limit and the month's use.

    Every CoinGecko key only reads: the check reports usage, never a privilege finding.
    """
    data = body if isinstance(body, dict) else {}
    now = datetime.now(timezone.utc)
    month_end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=timezone.utc)
    usage = (
        Usage("per minute", None, _count(data.get("rate_limit_request_per_minute")), None, 60.0),
        Usage(
            "this month",
            _count(data.get("current_total_monthly_calls")),
            _count(data.get("monthly_call_credit")),
            month_end,
            MONTH,
        ),
    )
    plan = data.get("plan")
    return KeyPermissions(
        can_read=True,
        can_trade=False,
        can_withdraw=False,
        plan=plan if isinstance(plan, str) else None,
        usage=usage,
    )


def authenticates(body: Any) -> KeyPermissions:
    """A successful read with a demo key (``GET /key`` is a Pro route)."""
    return KeyPermissions(
        can_read=True,
        can_trade=False,
        can_withdraw=False,
        plan="demo",
        note="demo keys have no usage route: the key authenticates (one /simple/price read, "
        "1 credit); see the developer dashboard for usage",
    )


_THIRD = "third-party plan table; GET /key reports the real figures"
PLANS = {
    "demo": _plan(
        100, 10_000, pro=False, source="100/min: CoinGecko docs; 10,000/month: " + _THIRD
    ),
    "basic": _plan(250, 100_000, pro=True, source=_THIRD),
    "analyst": _plan(500, 500_000, pro=True, source=_THIRD),
    "lite": _plan(500, 2_000_000, pro=True, source=_THIRD),
}

ERROR_CODES = {
    "429": ErrorCode("rate_limit", "backoff", "the per-minute rate limit"),
    "10002": ErrorCode("auth", hint="no API key was sent"),
    "10005": ErrorCode("permission", hint="the plan does not include this endpoint"),
    "10010": ErrorCode(
        "wrong_host",
        hint="this is a Pro key sent to the demo root: pass your paid plan (plan='basic', ...) "
        "or provider='coingecko-pro'",
    ),
    "10011": ErrorCode(
        "wrong_host",
        hint="this is a Demo key sent to the Pro root: pass plan='demo' (or provider='coingecko')",
    ),
}

_CURRENCY = Param("vs_currency", str, default="usd", doc="quote currency, e.g. 'usd'")
_DAYS = Param("days", int, default=1, doc="days back from now")
_ID = Param("id", str, required=True, doc="coin id, e.g. 'bitcoin'")

ENDPOINTS = (
    Endpoint("simple_price", "/simple/price", SimplePrice, shape="mapping", value_field="prices",
             params=(Param("ids", str, required=True, doc="comma-separated coin ids"),
                     Param("vs_currencies", str, default="usd", doc="comma-separated")),
             doc="current prices by coin id"),
    Endpoint("markets", "/coins/markets", Market,
             params=(_CURRENCY, Param("ids", str), Param("per_page", int), Param("page", int)),
             paging=Pager("page", limit_param="per_page", max_limit=250),
             doc="coins by market cap, with prices and volumes"),
    Endpoint("ohlc", "/coins/{id}/ohlc", Candle, shape="arrays",
             columns=("time", "open", "high", "low", "close"), params=(_ID, _CURRENCY, _DAYS),
             doc="candles: hourly for days <= 2, daily beyond; no volume"),
    Endpoint("market_chart", "/coins/{id}/market_chart", MarketChart, shape="object",
             params=(_ID, _CURRENCY, _DAYS), doc="price, market cap and volume series"),
)  # fmt: skip

#: CoinGecko keys coins by id, not ticker: the symbols the unified calls accept and the
#: CoinGecko id each one means. Written out, never guessed (several coins share a ticker);
#: ``client.prices(..., mapping={"PEPE": "pepe"})`` adds more.
SYMBOLS = {
    "BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "BNB": "binancecoin",
    "XRP": "ripple", "ADA": "cardano", "DOGE": "dogecoin", "AVAX": "avalanche-2",
    "DOT": "polkadot", "MATIC": "matic-network", "LINK": "chainlink", "LTC": "litecoin",
    "TRX": "tron", "ATOM": "cosmos", "UNI": "uniswap", "XLM": "stellar",
    "ETC": "ethereum-classic", "FIL": "filecoin", "APT": "aptos", "ARB": "arbitrum",
    "OP": "optimism", "NEAR": "near", "ICP": "internet-computer", "HBAR": "hedera-hashgraph",
    "VET": "vechain", "ALGO": "algorand", "AAVE": "aave", "MKR": "maker", "SNX": "havven",
    "GRT": "the-graph", "SAND": "the-sandbox", "MANA": "decentraland", "AXS": "axie-infinity",
    "EGLD": "elrond-erd-2", "XTZ": "tezos", "THETA": "theta-token", "FTM": "fantom",
    "EOS": "eos", "FLOW": "flow", "CHZ": "chiliz", "KAVA": "kava", "ZEC": "zcash",
    "DASH": "dash", "NEO": "neo", "COMP": "compound-governance-token",
    "CRV": "curve-dao-token", "SUSHI": "sushi", "YFI": "yearn-finance",
    "BAT": "basic-attention-token", "ENJ": "enjincoin",
}  # fmt: skip


PROFILE = Provider(
    name="coingecko",
    base_url=DEMO_URL,
    auth=_DEMO_KEY,
    read_key_env="COINGECKO_DEMO_API_KEY",
    request_id_headers=("cf-ray", "x-request-id"),
    plans=PLANS,
    error_code_at=(("status", "error_code"), ("error", "status", "error_code")),
    error_codes=ERROR_CODES,
    key_check=KeyCheck(
        "GET", "/simple/price", authenticates, (("ids", "bitcoin"), ("vs_currencies", "usd"))
    ),
    endpoints=ENDPOINTS,
    symbols=SYMBOLS,
).with_plan("demo")

PRO = Provider(
    name="coingecko-pro",
    base_url=PRO_URL,
    auth=_PRO_KEY,
    read_key_env="COINGECKO_PRO_API_KEY",
    request_id_headers=("cf-ray", "x-request-id"),
    plans={name: plan for name, plan in PLANS.items() if name != "demo"},
    error_code_at=PROFILE.error_code_at,
    error_codes=ERROR_CODES,
    key_check=PLANS["basic"].key_check,
    endpoints=ENDPOINTS,
    symbols=SYMBOLS,
).with_plan("basic")
