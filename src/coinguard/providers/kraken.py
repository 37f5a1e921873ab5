"""Kraken spot REST API (https://docs.kraken.com/api/docs/guides/spot-rest-auth).

Sourced from Kraken's spot REST docs (authentication, errors, rate limits, GetApiKeyInfo):
root ``https://api.kraken.com``; private calls are ``POST /0/private/<Method>`` with the fields
form-encoded in the body after a ``nonce`` that must grow with every request of a key; the
key in ``API-Key``, ``API-Sign`` = base64(HMAC-SHA512(path + SHA256(nonce + body), the
base64-decoded secret)). Nonces come from the quota store, so every process and machine that
shares the store (memory, SQLite, Redis) draws from one counter per key; a request refused
with ``EAPI:Invalid nonce`` (overtaken on the way by one signed later) was not executed and
is signed again. Errors come as HTTP 200 with ``{"error": ["EAPI:Invalid key"], ...}``;
``EGeneral:Temporary lockout`` (after repeated invalid keys) holds the key for 15 minutes in
the penalty box shared by every process (Kraken names no duration; 15 minutes is what users
report). The key check is ``POST /0/private/GetApiKeyInfo``.

Fields go as ``params=``; they are sent in the signed body, never in the URL.

Every AddOrder carries a ``cl_ord_id`` (a fresh UUID unless the caller gives one in Kraken's
formats). When an order's answer is lost (a timeout, a dropped connection, a 5xx,
``EService:Unavailable``), coinguard looks it up by that id in OpenOrders, then ClosedOrders,
before anything else, and answers the order found in AddOrder's shape; found nowhere, it is
not sent again (Kraken only refuses a cl_ord_id that is open), and the call raises
:class:`coinguard.OrderOutcomeUnknownError`.

Orders and cancels also fill a trading counter per pair (AddOrder +1, CancelOrder +8 down
to +1 by the order's age; 60 at -1/s for Starter), kept per key and pair in the quota store.

>>> from coinguard import get_provider
>>> p = get_provider("kraken")
>>> p.scope_of("POST", "/0/private/Balance"), p.scope_of("POST", "/0/private/AddOrder")
(<Scope.READ: 'read'>, <Scope.TRADE: 'trade'>)
>>> p.auth.signs("POST", "/0/private/Balance"), p.auth.signs("GET", "/0/public/Time")
(True, False)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .._pairs import TradeCounter
from .._provider import ClientOrderId, ErrorCode, Nonce, Provider, SignedKey
from .._quota import DecayingCounter, QuotaPolicy, Window
from .._signing import KrakenSigner
from .._verify import KeyCheck, kraken_api_key_info

__all__ = [
    "CANCEL_PENALTIES",
    "CL_ORD_ID",
    "ORDER_IDS",
    "PROFILE",
    "READS",
    "TRADING_TIERS",
    "found_order",
    "profile",
    "trading",
]

#: Private methods that read (the read key signs them); every other private POST is a trade.
READS = (
    "Balance",
    "BalanceEx",
    "TradeBalance",
    "OpenOrders",
    "ClosedOrders",
    "QueryOrders",
    "TradesHistory",
    "QueryTrades",
    "OpenPositions",
    "Ledgers",
    "QueryLedgers",
    "TradeVolume",
    "GetApiKeyInfo",
)
#: Calls that add 2 to the REST counter instead of 1.
HISTORY = ("Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades")

LOCKOUT_SECONDS = 900.0

ERROR_CODES = {
    "EAPI:Invalid key": ErrorCode("auth", hint="the API key is wrong, or was deleted"),
    "EAPI:Invalid signature": ErrorCode(
        "auth", hint="the signature is not valid: check the private key (secret) of this key"
    ),
    "EAPI:Invalid nonce": ErrorCode(
        "invalid", hint="the nonce was not above the key's last one (another client shares it?)"
    ),
    "EAPI:Rate limit exceeded": ErrorCode("rate_limit", "backoff", "the REST call counter is full"),
    "EAPI:": ErrorCode("invalid"),
    "EGeneral:Permission denied": ErrorCode(
        "permission", hint="the key lacks the permission this call needs"
    ),
    "EGeneral:Temporary lockout": ErrorCode(
        "rate_limit",
        "backoff",
        "the key is locked out after repeated invalid requests; every client of it waits",
        hold=LOCKOUT_SECONDS,
    ),
    "EGeneral:": ErrorCode("invalid"),
    "EOrder:Rate limit exceeded": ErrorCode(
        "rate_limit", "backoff", "the per-pair trading counter is full"
    ),
    "EOrder:": ErrorCode("invalid", hint="the order was rejected"),
    "EQuery:": ErrorCode("invalid"),
    "ETrade:": ErrorCode("invalid"),
    "EFunding:": ErrorCode("invalid"),
    "EService:Throttled": ErrorCode("rate_limit", "backoff", "too many concurrent requests"),
    "EService:Market in cancel_only mode": ErrorCode("invalid", hint="only cancels are accepted"),
    "EService:Market in post_only mode": ErrorCode("invalid", hint="only post-only orders"),
    # a busy or offline engine may or may not have taken an order: never a plain failure
    "EService:": ErrorCode("unknown", hint="the service was unavailable or ran out of time"),
}

#: Starter tier: the counter's maximum and how fast it decays (per second).
TIERS = {"starter": (15, 0.33), "intermediate": (20, 0.5), "pro": (20, 1.0)}


#: The trading counter per pair of each tier: its threshold and decay per second.
TRADING_TIERS = {"starter": (60, 1.0), "intermediate": (125, 2.34), "pro": (180, 3.75)}
#: What cancelling an order adds to its pair's counter, by the order's age: (younger than, add).
CANCEL_PENALTIES = ((5.0, 8), (10.0, 6), (15.0, 5), (45.0, 4), (90.0, 2), (300.0, 1))


def _txids(answer: Any) -> list[str]:
    return [str(t) for t in answer["result"]["txid"]]


def trading(tier: str) -> TradeCounter:
    """The per-pair trading counter of an account of ``tier``: AddOrder adds 1, CancelOrder
    a penalty by the order's age (8 under 5 s ... 1 under 300 s)."""
    top, decay = TRADING_TIERS[tier]
    return TradeCounter(
        DecayingCounter(top, decay, name=f"trading counter per pair {top} (-{decay}/s)"),
        adds=["POST /0/private/AddOrder"],
        cancels=["POST /0/private/CancelOrder"],
        penalties=CANCEL_PENALTIES,
        pair_param="pair",
        id_params=("txid", "cl_ord_id"),
        placed_ids=_txids,
        full_codes=frozenset({"EOrder:Rate limit exceeded"}),
    )


#: What a call adds to the REST counter: 2 for history, 0 for orders (the trading limiter
#: counts them) and for public calls, else 1.
COSTS = {
    **{f"POST /0/private/{m}": 2 for m in HISTORY},
    "POST /0/private/AddOrder": 0,
    "POST /0/private/CancelOrder": 0,
    "* /0/public/*": 0,
}


#: Kraken's three cl_ord_id formats: a UUID (36 characters with hyphens, or 32 hex digits),
#: or free text of at most 18 characters (kept to letters, digits, '-' and '_' here).
CL_ORD_ID = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[A-Za-z0-9_-]{1,18}"
)


def _new_cl_ord_id() -> str:
    return str(uuid.uuid4())


def found_order(answer: Any, cl_ord_id: str) -> dict[str, Any] | None:
    """The order with ``cl_ord_id`` in an OpenOrders or ClosedOrders answer, as AddOrder
    answers an order (``{"error": [], "result": {"txid": [...], "descr": {...}}}``); None
    when the answer lists no such order.

    >>> listed = {"error": [], "result": {"open": {"OX-1": {"cl_ord_id": "a1", "descr": {}}}}}
    >>> found_order(listed, "a1")["result"]["txid"], found_order(listed, "b2")
    (['OX-1'], None)
    """
    result = answer.get("result") if isinstance(answer, Mapping) else None
    for state in ("open", "closed"):
        orders = result.get(state) if isinstance(result, Mapping) else None
        if not isinstance(orders, Mapping):
            continue
        for txid, order in orders.items():
            # the id is checked, not trusted to the filter: a server that ignored it would
            # list other orders
            if isinstance(order, Mapping) and order.get("cl_ord_id") == cl_ord_id:
                descr = order.get("descr")
                return {"error": [], "result": {"txid": [txid], "descr": descr or {}}}
    return None


ORDER_IDS = ClientOrderId(
    routes=["POST /0/private/AddOrder"],
    lookup=["POST /0/private/OpenOrders", "POST /0/private/ClosedOrders"],
    param="cl_ord_id",
    lookup_param="cl_ord_id",
    copy_params=(),
    found=found_order,
    new_id=_new_cl_ord_id,
    pattern=CL_ORD_ID,
    shape="be a UUID (36 characters, or 32 hex digits) or 1 to 18 letters, digits, '-' or '_'",
    excludes=("userref",),
)


def counter(tier: str) -> DecayingCounter:
    """The REST counter of an account of ``tier``."""
    top, decay = TIERS[tier]
    return DecayingCounter(top, decay, costs=COSTS, name=f"REST counter {top} (-{decay}/s)")


def _quota(tier: str) -> QuotaPolicy:
    # The counter is the limit; this window never binds before it (the counter admits at
    # most its maximum in any second) and holds the key in the penalty box after a lockout.
    # Orders and cancels are outside it, as outside the counter: the trading counter per
    # pair paces them.
    top, _ = TIERS[tier]
    outside = {route: 0 for route, cost in COSTS.items() if cost == 0 and "private" in route}
    return QuotaPolicy([Window.per_second(top, name=f"{tier} burst")], costs=outside)


def profile(*, tier: str = "starter") -> Provider:
    """The Kraken spot profile for an account of ``tier`` (starter, intermediate or pro).

    >>> profile(tier="pro").counter.rate
    1.0
    """
    if tier not in TIERS:
        from .._exceptions import ConfigurationError

        raise ConfigurationError(f"Kraken tier must be one of {', '.join(TIERS)}, got {tier!r}")
    return Provider(
        name="kraken",
        base_url="https://api.kraken.com",
        auth=SignedKey(
            "API-Key",
            KrakenSigner(),
            signed_routes=["POST /0/private/*"],
            secret_params=(),
            secret_headers=("API-Sign",),
        ),
        read_routes=[f"POST /0/private/{m}" for m in READS],
        read_key_env="KRAKEN_API_KEY",
        read_secret_env="KRAKEN_API_SECRET",  # noqa: S106 - a variable name
        trade_key_env="KRAKEN_TRADE_API_KEY",
        trade_secret_env="KRAKEN_TRADE_API_SECRET",  # noqa: S106
        nonce=Nonce(resend_codes=frozenset({"EAPI:Invalid nonce"})),
        client_order_id=ORDER_IDS,
        quota=_quota(tier),
        counter=counter(tier),
        trade_counter=trading(tier),
        request_id_headers=(),
        error_code_at=(("error",),),
        error_codes=ERROR_CODES,
        key_check=KeyCheck("POST", "/0/private/GetApiKeyInfo", kraken_api_key_info),
    )


PROFILE = profile()
