"""Binance spot REST API (https://developers.binance.com/docs/binance-spot-api-docs).

Sourced from Binance's spot API docs (rest-api.md, errors.md, CHANGELOG.md): root
``https://api.binance.com``; the key in ``X-MBX-APIKEY``; every security type but NONE and
MARKET_DATA is SIGNED: ``timestamp``, ``recvWindow`` (default 5000 ms, at most 60000) and
``signature`` over query + body, HMAC-SHA256 hex or Ed25519/RSA base64; the server's time at
``GET /api/v3/time`` (weight 1); REQUEST_WEIGHT 6000 per clock-aligned minute per IP, synced
from ``X-MBX-USED-WEIGHT-1M``; ORDERS 50 per 10 s and 160,000 per day per account; a
successful order or cancel weighs 0 since 2026-04 (a failed one pays: the weight is reserved,
and refunded when the answer says the order was placed); RAW_REQUESTS 300,000 per
clock-aligned 5 minutes counts every ``/api`` call as one; each SAPI endpoint has a limiter of
its own (IP 12,000/min or UID 180,000/min, synced from ``X-SAPI-USED-IP-WEIGHT-1M`` /
``X-SAPI-USED-UID-WEIGHT-1M``) and weighs nothing on REQUEST_WEIGHT; errors are
``{"code": -XXXX, "msg": ...}``; 5XX and -1007 mean the execution status is unknown; 418 is
an IP ban until the time in its ``Retry-After`` or message. The key check is
``GET /sapi/v1/account/apiRestrictions``.

Each route is declared once below with its security type and weight: the scope (TRADE needs
the trade key pair), which routes are signed (USER_DATA is a read signed with the read pair)
and the quota cost all come from that table.

>>> from coinguard import get_provider
>>> p = get_provider("binance")
>>> p.scope_of("POST", "/api/v3/order"), p.scope_of("GET", "/api/v3/account")
(<Scope.TRADE: 'trade'>, <Scope.READ: 'read'>)
>>> p.auth.signs("GET", "/api/v3/account"), p.auth.signs("GET", "/api/v3/depth")
(True, False)
"""

from __future__ import annotations

from typing import Literal

from .._endpoints import Endpoint, Param
from .._models import BinanceAccount, BinanceOrder, BinancePrice, Candle
from .._provider import (
    ClientOrderId,
    ErrorCode,
    OrderForm,
    Provider,
    RouteQuota,
    ServerTime,
    SignedKey,
)
from .._quota import QuotaPolicy, Window
from .._signing import BinanceSigner
from .._verify import KeyCheck, binance_api_restrictions

__all__ = [
    "ENDPOINTS",
    "PROFILE",
    "RAW_REQUESTS",
    "ROUTES",
    "SAPI",
    "SYMBOLS",
    "profile",
    "sapi_quotas",
]

Security = Literal["NONE", "MARKET_DATA", "USER_DATA", "TRADE"]

#: route -> (security type, REQUEST_WEIGHT). Weights that depend on a parameter take the
#: documented value for the common case noted beside them.
ROUTES: dict[str, tuple[Security, int]] = {
    "GET /api/v3/ping": ("NONE", 1),
    "GET /api/v3/time": ("NONE", 1),
    "GET /api/v3/exchangeInfo": ("NONE", 20),
    "GET /api/v3/depth": ("MARKET_DATA", 5),  # limit <= 100
    "GET /api/v3/trades": ("MARKET_DATA", 25),
    "GET /api/v3/klines": ("MARKET_DATA", 2),
    "GET /api/v3/avgPrice": ("MARKET_DATA", 2),
    "GET /api/v3/ticker/price": ("MARKET_DATA", 4),  # without a symbol; 2 with one
    "GET /api/v3/account": ("USER_DATA", 20),
    "GET /api/v3/order": ("USER_DATA", 4),
    "GET /api/v3/openOrders": ("USER_DATA", 80),  # without a symbol; 6 with one
    "GET /api/v3/allOrders": ("USER_DATA", 20),
    "GET /api/v3/myTrades": ("USER_DATA", 20),
    "GET /api/v3/rateLimit/order": ("USER_DATA", 40),
    "GET /sapi/v1/system/status": ("NONE", 0),  # SAPI: its own limiters, see SAPI
    "GET /sapi/v1/account/apiRestrictions": ("USER_DATA", 0),
    "GET /sapi/v1/capital/config/getall": ("USER_DATA", 0),
    "POST /sapi/v1/margin/order": ("TRADE", 0),
    "POST /api/v3/order": ("TRADE", 1),
    "POST /api/v3/order/test": ("TRADE", 1),
    "DELETE /api/v3/order": ("TRADE", 1),
    "DELETE /api/v3/openOrders": ("TRADE", 1),
}

SIGNED: tuple[Security, ...] = ("USER_DATA", "TRADE")

#: SAPI route -> (the limiter it counts in, its weight there). Every SAPI endpoint has a
#: limiter of its own: an IP-limited one 12,000 per minute for every key of the address, a
#: UID-limited one 180,000 per minute for the account; over it Binance answers 429 (never 418).
SAPI: dict[str, tuple[Literal["IP", "UID"], int]] = {
    "GET /sapi/v1/system/status": ("IP", 1),
    "GET /sapi/v1/account/apiRestrictions": ("IP", 1),
    "GET /sapi/v1/capital/config/getall": ("IP", 10),
    "POST /sapi/v1/margin/order": ("UID", 6),
}
SAPI_IP_LIMIT = 12_000
SAPI_UID_LIMIT = 180_000

ERROR_CODES = {
    "-1003": ErrorCode(
        "rate_limit",
        "backoff",
        "too much request weight; a repeat gets the IP banned (418)",
        until=r"banned until (\d{10,16})",
    ),
    "-1015": ErrorCode("rate_limit", "backoff", "too many new orders (the ORDERS windows)"),
    "-1007": ErrorCode("unknown", hint="timeout waiting for the backend: execution status unknown"),
    "-1021": ErrorCode("invalid", hint="the timestamp is outside recvWindow of the server's time"),
    "-1022": ErrorCode("auth", hint="the signature is not valid: check the secret of this key"),
    "-2010": ErrorCode("invalid", hint="the order was rejected (a duplicate client order id too)"),
    "-2011": ErrorCode("invalid", hint="the cancel was rejected"),
    "-2013": ErrorCode("not_found", hint="the order does not exist (or is not visible yet)"),
    "-2014": ErrorCode("auth", hint="the API key's format is invalid"),
    "-2015": ErrorCode(
        "permission", hint="invalid API key, IP address, or permissions for this action"
    ),
}

#: Routes whose successful answer weighs 0 (Binance since 2026-04); a failed one pays.
FREE_IF_OK = ("POST /api/v3/order", "DELETE /api/v3/order", "DELETE /api/v3/openOrders")

# A credit window: each call reserves its weight, and a placed order or cancel is refunded
# once its answer says it succeeded (an order whose answer is lost stays counted)
QUOTA = QuotaPolicy(
    [Window.per_minute(6000, calendar=True, name="REQUEST_WEIGHT 6000/min", credits=True)],
    costs={route: weight for route, (_, weight) in ROUTES.items()},
    ok_costs=dict.fromkeys(FREE_IF_OK, 0),
)
RAW_REQUESTS = RouteQuota(
    "RAW_REQUESTS",
    ["* /api/*"],
    QuotaPolicy([Window(300_000, 300.0, calendar=True, name="RAW_REQUESTS 300000/5min")]),
)


def sapi_quotas(
    *, ip_limit: int = SAPI_IP_LIMIT, uid_limit: int = SAPI_UID_LIMIT
) -> tuple[RouteQuota, RouteQuota]:
    """The SAPI limiters: one per endpoint, IP- or UID-limited (``SAPI``), synced from
    ``X-SAPI-USED-IP-WEIGHT-1M`` / ``X-SAPI-USED-UID-WEIGHT-1M``.

    >>> [q.quota.windows[0].limit for q in sapi_quotas(ip_limit=20)]
    [20, 180000]
    """
    return tuple(  # type: ignore[return-value]
        RouteQuota(
            f"SAPI {kind}",
            [r for r, (k, _) in SAPI.items() if k == kind],
            QuotaPolicy(
                [Window.per_minute(limit, calendar=True, name=f"SAPI {kind} {limit}/min")],
                costs={r: w for r, (k, w) in SAPI.items() if k == kind},
            ),
            per="ip" if kind == "IP" else "key",
            each=True,
            headers=(f"x-sapi-used-{kind.lower()}-weight-",),
            separate=True,
        )
        for kind, limit in (("IP", ip_limit), ("UID", uid_limit))
    )


ORDERS = QuotaPolicy(
    [
        Window(50, 10.0, name="ORDERS 50/10s"),
        Window.per_day(160_000, name="ORDERS 160000/day"),
    ],
    costs={"DELETE *": 0},  # cancels are not orders
)


_PAIR = Param("symbol", str, required=True, doc="trading pair, e.g. 'BTCUSDT'")

ENDPOINTS = (
    Endpoint("ticker_price", "/api/v3/ticker/price", BinancePrice, shape="object",
             cost=2, params=(_PAIR,), doc="the last price of one pair"),
    Endpoint("klines", "/api/v3/klines", Candle, shape="arrays", cost=2,
             columns=("time", "open", "high", "low", "close", "volume"),
             params=(_PAIR, Param("interval", str, required=True, doc="'1h', '1d', ..."),
                     Param("startTime", int, doc="epoch ms, first candle's open time"),
                     Param("endTime", int, doc="epoch ms, last candle's open time"),
                     Param("limit", int, default=500, doc="candles, at most 1000")),
             doc="candles of one pair, oldest first"),
    Endpoint("account", "/api/v3/account", BinanceAccount, shape="object", cost=20,
             doc="balances and permissions (signed with the read key pair)"),
    Endpoint("open_orders", "/api/v3/openOrders", BinanceOrder, cost=6, params=(_PAIR,),
             doc="open orders of one pair (signed with the read key pair)"),
    Endpoint("all_orders", "/api/v3/allOrders", BinanceOrder, cost=20, params=(_PAIR,),
             doc="every order of one pair, open or not (signed with the read key pair)"),
)  # fmt: skip

#: The tickers the unified calls accept and the USDT pair each one means on Binance. Written
#: out, never guessed; ``client.prices(..., mapping={"PEPE": "PEPEUSDT"})`` adds more.
SYMBOLS = {
    "BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "BNB": "BNBUSDT", "XRP": "XRPUSDT",
    "ADA": "ADAUSDT", "DOGE": "DOGEUSDT", "AVAX": "AVAXUSDT", "DOT": "DOTUSDT",
    "LINK": "LINKUSDT", "LTC": "LTCUSDT", "TRX": "TRXUSDT", "ATOM": "ATOMUSDT", "UNI": "UNIUSDT",
    "XLM": "XLMUSDT", "ETC": "ETCUSDT", "FIL": "FILUSDT", "APT": "APTUSDT", "ARB": "ARBUSDT",
    "OP": "OPUSDT", "NEAR": "NEARUSDT", "ICP": "ICPUSDT", "HBAR": "HBARUSDT", "VET": "VETUSDT",
    "ALGO": "ALGOUSDT", "AAVE": "AAVEUSDT", "GRT": "GRTUSDT", "SAND": "SANDUSDT",
    "MANA": "MANAUSDT", "AXS": "AXSUSDT", "EGLD": "EGLDUSDT", "XTZ": "XTZUSDT",
    "THETA": "THETAUSDT", "EOS": "EOSUSDT", "FLOW": "FLOWUSDT", "CHZ": "CHZUSDT",
    "KAVA": "KAVAUSDT", "ZEC": "ZECUSDT", "DASH": "DASHUSDT", "NEO": "NEOUSDT",
    "COMP": "COMPUSDT", "CRV": "CRVUSDT", "SUSHI": "SUSHIUSDT", "YFI": "YFIUSDT",
    "BAT": "BATUSDT", "ENJ": "ENJUSDT", "SNX": "SNXUSDT", "MKR": "MKRUSDT",
}  # fmt: skip


def profile(*, recv_window: int = 5000) -> Provider:
    """The Binance spot profile, signing with ``recv_window`` ms (at most 60000).

    >>> profile(recv_window=10_000).auth.sign.recv_window
    10000
    """
    return Provider(
        name="binance",
        base_url="https://api.binance.com",
        auth=SignedKey(
            "X-MBX-APIKEY",
            BinanceSigner(recv_window=recv_window),
            signed_routes=[r for r, (security, _) in ROUTES.items() if security in SIGNED],
        ),
        read_key_env="BINANCE_API_KEY",
        read_secret_env="BINANCE_API_SECRET",  # noqa: S106 - a variable name
        trade_key_env="BINANCE_TRADE_API_KEY",
        trade_secret_env="BINANCE_TRADE_API_SECRET",  # noqa: S106
        server_time=ServerTime("/api/v3/time", "serverTime", resync_codes=frozenset({"-1021"})),
        client_order_id=ClientOrderId(
            routes=["POST /api/v3/order"],
            lookup="GET /api/v3/order",
            not_found_codes=frozenset({"-2013"}),
            duplicate_codes=frozenset({"-2010"}),
        ),
        quota_per="ip",
        quota=QUOTA,
        order_quota=ORDERS,
        route_quotas=(*sapi_quotas(), RAW_REQUESTS),
        request_id_headers=(),
        error_code_at=(("code",),),
        error_codes=ERROR_CODES,
        reload_codes=frozenset({"-2014", "-2015"}),
        key_check=KeyCheck("GET", "/sapi/v1/account/apiRestrictions", binance_api_restrictions),
        endpoints=ENDPOINTS,
        symbols=SYMBOLS,
        order_form=OrderForm(
            "POST /api/v3/order",
            where="params",
            pair=True,
            upper=True,
            text=True,
            limit_extra={"timeInForce": "GTC"},
            unwrap=None,
        ),
    )


PROFILE = profile()
