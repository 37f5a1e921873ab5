"""The Binance spot emulation: signed requests, weights, bans, orders that can go missing.

Routes, security types and weights come from :mod:`coinguard.providers.binance` (the table the
client plans with), error codes and limits from Binance's spot docs. Checks run in this order:
route (404 ``-1100``-style) -> RAW_REQUESTS of the clock-aligned 5 minutes (429) -> IP ban
(418) -> weight of the clock-aligned minute (429, and 418
for an IP that keeps sending after its 429; a ``/sapi/*`` route instead counts its weight on
its own IP-limited endpoint's minute, 429 only) -> key (``X-MBX-APIKEY``: -2014 missing, -2015
unknown) -> signature (HMAC-SHA256 hex or Ed25519 base64 over query + body: -1022) ->
timestamp window against the server's clock (``timestamp < server + 1000`` and
``server - timestamp <= recvWindow``: -1021; recvWindow above 60000: -1131) -> the key's
permission for the security type (-2015) -> a UID-limited SAPI endpoint's minute for the
key's account (429) -> ORDERS windows (429 -1015) -> faults -> handler.

Weight is counted per IP (all loopback clients are one IP) and sent back in
``X-MBX-USED-WEIGHT-1M``; a successful order or cancel weighs 0, a failed one its weight.
Each SAPI endpoint (:data:`coinguard.providers.binance.SAPI`) has a limiter of its own, per IP
or per account (UID), reported in ``X-SAPI-USED-IP-WEIGHT-1M`` or ``X-SAPI-USED-UID-WEIGHT-1M``
and never touching REQUEST_WEIGHT.
Faults on orders: ``drop_after_order_rate`` executes the order then drops the connection;
``timeout_after_order_rate`` executes it and answers only after ``stall_seconds`` (the
client's read timeout fires first);
``error_rate`` answers 503 ``-1001`` after executing the order half of the time (the
execution status is unknown either way); ``Faults.invisible_seconds`` hides a new order from
``GET /api/v3/order`` (-2013) for that long after it was placed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from ..providers import binance
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig
from ._data import Market
from ._emulation import Call, Outcome, json_body
from ._ledger import Ledger
from ._wire import Reply

__all__ = ["Binance", "BinanceKey", "store"]

_WEIGHT_LIMIT = 6000
_ORDERS_10S = 50
_ORDERS_DAY = 160_000
_FIRST_BAN = 120.0  # seconds; Binance bans for 2 minutes to 3 days, doubling on repeat
_MAX_BAN = 3 * 86_400.0
_AFTER_429 = 2  # requests an IP may still send over the limit before it is banned
_FLAGS = (
    "enableReading",
    "enableSpotAndMarginTrading",
    "enableWithdrawals",
    "enableInternalTransfer",
    "enableMargin",
    "enableFutures",
    "permitsUniversalTransfer",
    "enableVanillaOptions",
    "enableFixApiTrade",
    "enableFixReadOnly",
    "enablePortfolioMarginTrading",
)


def _new_key() -> str:
    return secrets.token_urlsafe(48)[:64]


def store() -> KeyStore:
    """A key store issuing 64-character Binance-like API keys."""
    return KeyStore(None, _new_key)


@dataclass
class BinanceKey:
    """What the server holds for one API key: how to check its signatures, and its flags."""

    hmac_secret: str | None
    public_key: Any  # an Ed25519 public key, or None for an HMAC key
    flags: dict[str, bool]
    ip_restrict: bool


@dataclass
class _Order:
    account: str
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    quantity: str
    price: str
    status: str
    time_ms: int
    visible_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_id,
            "transactTime": self.time_ms,
            "price": self.price,
            "origQty": self.quantity,
            "executedQty": self.quantity if self.status == "FILLED" else "0.00000000",
            "status": self.status,
            "timeInForce": "GTC" if self.type == "LIMIT" else "IOC",
            "type": self.type,
            "side": self.side,
        }


@dataclass
class _Ip:
    """Weight of the current minute, and the ban state, of one IP."""

    minute: float = -1.0
    used: int = 0
    over: int = 0  # requests sent over the limit since the 429
    banned_until: float = 0.0
    bans: int = 0


@dataclass
class _Minute:
    """What one limiter counted in its current slot (a SAPI endpoint's minute, RAW_REQUESTS'
    5 minutes), for one IP or account."""

    minute: float = -1.0
    used: int = 0


@dataclass
class _Counts:
    ten: dict[float, int] = field(default_factory=dict)
    day: dict[float, int] = field(default_factory=dict)


class BinanceError(Exception):
    """An answer in Binance's shape, ``{"code": -XXXX, "msg": "..."}``."""

    def __init__(
        self, status: int, code: int, msg: str, outcome: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.outcome = status, code, msg, outcome
        self.retry_after = retry_after


class Binance:
    """The emulation: provisioned keys (``read``, ``trade``, ``overprivileged``,
    ``unrestricted``, ``ed25519``) each with its signing secret in ``Keys``."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        self.config = config
        self.store = store
        self.ledger = ledger
        self.market = market
        self.weight_limit = config.weight_limit or _WEIGHT_LIMIT
        self.orders_per_10s = config.orders_per_10s or _ORDERS_10S
        self.secrets: dict[str, BinanceKey] = {}
        self.orders: dict[int, _Order] = {}
        self._ids = itertools.count(1)
        self._ip = _Ip()
        self._counts: dict[str, _Counts] = {}
        self._sapi: dict[tuple[str, str], _Minute] = {}  # (IP or account, route) -> minute
        self._sapi_header: tuple[str, str] | None = None  # the call's SAPI usage header
        self._raw = _Minute()  # RAW_REQUESTS of the IP in the current 5-minute slot
        self.raw_limit = config.raw_limit or binance.RAW_REQUESTS.quota.windows[0].limit
        now = config.clock()
        read = self._provision("read", {"enableReading": True}, now)
        trade_flags = {"enableReading": True, "enableSpotAndMarginTrading": True}
        trade = self._provision("trade", trade_flags, now)
        over = self._provision("overprivileged", {**trade_flags, "enableWithdrawals": True}, now)
        loose = self._provision("unrestricted", trade_flags, now, ip_restrict=False)
        # an Ed25519 key pair needs the 'signing' extra; the demo and HMAC keys do not
        ed: tuple[str | None, str | None] = (None, None)
        try:
            import cryptography  # noqa: F401
        except ImportError:
            pass
        else:
            ed = self._provision("ed25519", trade_flags, now, ed25519=True)
        self.keys = Keys(
            read=read[0],
            trade=trade[0],
            overprivileged=over[0],
            unrestricted=loose[0],
            ed25519=ed[0],
            read_secret=read[1],
            trade_secret=trade[1],
            overprivileged_secret=over[1],
            unrestricted_secret=loose[1],
            ed25519_secret=ed[1],
        )

    def _provision(
        self,
        account: str,
        flags: dict[str, bool],
        now: float,
        *,
        ip_restrict: bool = True,
        ed25519: bool = False,
    ) -> tuple[str, str]:
        # one user's keys: orders placed with the trade key are read with the read key
        value = self.store.issue((account,), "bn-main", now).value
        public: Any = None
        if ed25519:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            private = Ed25519PrivateKey.generate()
            public = private.public_key()
            secret = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            hmac_secret = None
        else:
            secret = hmac_secret = _new_key()
        full = {flag: bool(flags.get(flag)) for flag in _FLAGS}
        self.secrets[value] = BinanceKey(hmac_secret, public, full, ip_restrict)
        return value, secret

    # -- one call ------------------------------------------------------------------------

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call, in the order the module docstring gives."""
        drop, fail, executes, stall = rng.random(), rng.random(), rng.random(), rng.random()
        route = f"{call.request.method} {call.path}"
        entry = binance.ROUTES.get(route)
        out = Outcome(0, "", route=route if entry is not None else None)
        if entry is None:
            return self._error(out, 404, -1100, f"Unknown route {route[:80]}.", "not-found"), out
        security, weight = entry
        sapi = binance.SAPI.get(route)
        self._sapi_header = None
        try:
            if sapi is None:
                self._admit_raw(call.now)
                self._admit_weight(call.now, weight)
            elif sapi[0] == "IP":
                self._admit_sapi(call.now, "ip", route, sapi[1], _SAPI_IP)
            record = self._check(call, security, out) if security in binance.SIGNED else None
            if sapi is not None and sapi[0] == "UID" and record is not None:
                self._admit_sapi(call.now, record.account, route, sapi[1], _SAPI_UID)
            if record is not None and route in _ORDER_ROUTES and route.startswith("POST"):
                self._take_order(record.account, call.now)
            out.admitted = True
            if route in _ORDER_ROUTES and record is not None:
                draws = (drop, fail, executes, stall)
                fault = self._order_fault(call, record, faults, out, draws)
                if fault is not None:
                    return fault, out
            body, extra = self._dispatch(call, route, record, faults)
        except BinanceError as exc:  # a failed order keeps the weight it was charged
            reply = self._error(out, exc.status, exc.code, exc.msg, exc.outcome, exc.retry_after)
            return reply, out
        if route in binance.FREE_IF_OK:
            self._charge(call.now, -weight)  # a successful order or cancel weighs 0
        out.status, out.outcome = 200, "ok"
        return self._reply(200, body, extra, sapi is not None), out

    def _check(self, call: Call, security: str, out: Outcome) -> KeyRecord:
        presented = call.request.headers.get("x-mbx-apikey")
        out.presented = presented
        if not presented:
            raise BinanceError(400, -2014, "API-key format invalid.", "unauthorized")
        record = self.store.lookup(presented, call.now)
        key = self.secrets.get(presented)
        if record is None or key is None:
            raise BinanceError(401, -2015, _INVALID_KEY, "unauthorized")
        out.record = record
        self._verify(call, key)
        self._timing(call)
        needed = "enableSpotAndMarginTrading" if security == "TRADE" else "enableReading"
        if not key.flags.get(needed):
            raise BinanceError(401, -2015, _INVALID_KEY, "forbidden")
        return record

    def _verify(self, call: Call, key: BinanceKey) -> None:
        query = call.request.target.partition("?")[2]
        body = call.request.body.decode("utf-8", "replace")
        payload, signature = _split_signature(query, body)
        if signature is None:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent.", "bad")
        if key.public_key is None:
            assert key.hmac_secret is not None
            good = hmac.new(key.hmac_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(good, signature.lower())
        else:
            valid = _ed25519_valid(key.public_key, payload, signature)
        if not valid:
            raise BinanceError(400, -1022, _BAD_SIGNATURE, "bad-signature")

    def _timing(self, call: Call) -> None:
        server = call.now * 1000
        try:
            stamp = int(call.params["timestamp"])
            window = float(call.params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent.", "bad"
            ) from None
        if window > 60_000 or window <= 0:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000", "bad")
        if stamp >= server + 1000:
            raise BinanceError(
                400,
                -1021,
                "Timestamp for this request was 1000ms ahead of the server's time.",
                "bad-timestamp",
            )
        if server - stamp > window:
            raise BinanceError(
                400,
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
                "bad-timestamp",
            )

    # -- limits --------------------------------------------------------------------------

    def _minute(self, now: float) -> _Ip:
        ip = self._ip
        start = math.floor(now / 60.0) * 60.0
        if ip.minute != start:
            ip.minute, ip.used, ip.over = start, 0, 0
        return ip

    def _admit_weight(self, now: float, weight: int) -> None:
        ip = self._minute(now)
        if now < ip.banned_until:
            raise BinanceError(418, -1003, self._ban_message(ip), "banned")
        if ip.used + weight <= self.weight_limit:
            ip.used += weight
            return
        ip.over += 1
        if ip.over > _AFTER_429:
            ip.bans += 1
            ban = min(_FIRST_BAN * 2 ** (ip.bans - 1), _MAX_BAN)
            ip.banned_until = now + ban
            raise BinanceError(418, -1003, self._ban_message(ip), "banned")
        raise BinanceError(
            429,
            -1003,
            f"Too much request weight used; current limit is {self.weight_limit} request "
            "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
            "the API.",
            "rate-limited",
        )

    def _admit_raw(self, now: float) -> None:
        """Count one request of the IP's 5-minute slot (RAW_REQUESTS, whatever its weight):
        over its limit a 429."""
        start = math.floor(now / 300.0) * 300.0
        if self._raw.minute != start:
            self._raw.minute, self._raw.used = start, 0
        if self._raw.used >= self.raw_limit:
            raise BinanceError(
                429,
                -1003,
                f"Too many requests; current limit is {self.raw_limit} requests per 5 MINUTE.",
                "rate-limited",
                retry_after=start + 300.0 - now,
            )
        self._raw.used += 1

    def _admit_sapi(self, now: float, who: str, route: str, weight: int, limit: int) -> None:
        """Count ``weight`` on one SAPI endpoint's minute for ``who`` (the IP, or an account):
        over its limit a 429 (Binance never bans for SAPI use)."""
        limit = self.config.sapi_limit or limit
        kind = "ip" if who == "ip" else "uid"
        counter = self._sapi.setdefault((who, route), _Minute())
        start = math.floor(now / 60.0) * 60.0
        if counter.minute != start:
            counter.minute, counter.used = start, 0
        if counter.used + weight > limit:
            self._sapi_header = (f"x-sapi-used-{kind}-weight-1m", str(counter.used))
            raise BinanceError(
                429,
                -1003,
                f"Too much request weight used; current limit is {limit} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                "rate-limited",
                retry_after=start + 60.0 - now,
            )
        counter.used += weight
        self._sapi_header = (f"x-sapi-used-{kind}-weight-1m", str(counter.used))

    def _ban_message(self, ip: _Ip) -> str:
        until = int(ip.banned_until * 1000)
        return (
            f"Way too much request weight used; IP banned until {until}. Please use WebSocket "
            "Streams for live updates to avoid bans."
        )

    def _charge(self, now: float, weight: int) -> None:
        ip = self._minute(now)
        ip.used = max(0, ip.used + weight)

    def _take_order(self, account: str, now: float) -> None:
        counts = self._counts.setdefault(account, _Counts())
        ten, day = math.floor(now / 10) * 10, math.floor(now / 86_400) * 86_400
        if counts.ten.get(ten, 0) >= self.orders_per_10s or counts.day.get(day, 0) >= _ORDERS_DAY:
            raise BinanceError(
                429,
                -1015,
                f"Too many new orders; current limit is {self.orders_per_10s} orders per "
                "10 SECOND.",
                "rate-limited",
                retry_after=ten + 10 - now,
            )
        counts.ten = {ten: counts.ten.get(ten, 0) + 1}
        counts.day = {day: counts.day.get(day, 0) + 1}

    def _order_counts(self, account: str) -> list[tuple[str, str]]:
        counts = self._counts.get(account, _Counts())
        return [
            ("x-mbx-order-count-10s", str(sum(counts.ten.values()))),
            ("x-mbx-order-count-1d", str(sum(counts.day.values()))),
        ]

    # -- faults and handlers -------------------------------------------------------------

    def _order_fault(
        self,
        call: Call,
        record: KeyRecord,
        faults: Faults,
        out: Outcome,
        draws: tuple[float, float, float, float],
    ) -> Reply | None:
        drop, fail, executes, stall = draws
        if call.request.method != "POST":
            return None
        if stall < faults.timeout_after_order_rate:
            order = self._place(call, record, faults)
            out.status, out.outcome = 200, "stalled-after-order"
            reply = self._reply(200, order.as_json(), self._order_counts(record.account), False)
            return Reply(reply.status, reply.headers, reply.body, "respond", faults.stall_seconds)
        if drop < faults.drop_after_order_rate:
            self._place(call, record, faults)
            out.status, out.outcome = 0, "dropped-after-order"
            return Reply(0, [], b"", "drop")
        if fail < faults.error_rate:
            if executes < 0.5:
                self._place(call, record, faults)
            out.status, out.outcome = 503, "fault-5xx"
            body = {"code": -1001, "msg": "Internal error; unable to process your request."}
            return Reply(503, [("content-type", "application/json")], json_body(body))
        return None

    def _dispatch(
        self, call: Call, route: str, record: KeyRecord | None, faults: Faults
    ) -> tuple[Any, list[tuple[str, str]]]:
        if route in ("GET /api/v3/ping",):
            return {}, []
        if route == "GET /api/v3/time":
            return {"serverTime": int(call.now * 1000)}, []
        if route == "GET /api/v3/exchangeInfo":
            return {"timezone": "UTC", "serverTime": int(call.now * 1000), "symbols": []}, []
        if route in ("GET /api/v3/ticker/price", "GET /api/v3/avgPrice", "GET /api/v3/depth"):
            return self._price(call), []
        if route == "GET /api/v3/klines":
            return self._klines(call), []
        if route == "GET /sapi/v1/system/status":
            return {"status": 0, "msg": "normal"}, []
        assert record is not None
        key = self.secrets[record.value]
        if route == "GET /sapi/v1/capital/config/getall":
            return [{"coin": "BTC", "name": "Bitcoin", "free": "0.5"}], []
        if route == "POST /sapi/v1/margin/order":
            params = {
                **call.params,
                **dict(parse_qsl(call.request.body.decode("utf-8", "replace"))),
            }
            return {
                "symbol": params.get("symbol", ""),
                "orderId": next(self._ids),
                "clientOrderId": params.get("newClientOrderId") or f"x-{secrets.token_hex(10)}",
                "transactTime": int(call.now * 1000),
                "isIsolated": False,
            }, []
        if route == "GET /sapi/v1/account/apiRestrictions":
            body = {"ipRestrict": key.ip_restrict, "createTime": int(record.created_at * 1000)}
            return {**body, **key.flags}, []
        if route == "GET /api/v3/account":
            balances = [
                {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"},
                {"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"},
            ]
            return {"canTrade": key.flags["enableSpotAndMarginTrading"], "balances": balances}, []
        if route == "POST /api/v3/order":
            order = self._place(call, record, faults)
            return order.as_json(), self._order_counts(record.account)
        if route in ("GET /api/v3/order", "DELETE /api/v3/order"):
            order = self._find(call, record)
            if route.startswith("DELETE"):
                if order.status != "NEW":
                    raise BinanceError(400, -2011, "Unknown order sent.", "rejected")
                order.status = "CANCELED"
            return order.as_json(), []
        if route in ("GET /api/v3/openOrders", "GET /api/v3/allOrders"):
            mine = [o for o in self.orders.values() if o.account == record.account]
            if route.endswith("openOrders"):
                mine = [o for o in mine if o.status == "NEW"]
            return [o.as_json() for o in mine], []
        return {}, []

    def _klines(self, call: Call) -> list[list[Any]]:
        """Candles of the synthetic market: ``1h`` or ``1d``, oldest first, at most ``limit``
        (500, at most 1000) from ``startTime``, else the latest ones up to ``endTime``."""
        token = self.market.by_symbol.get(call.params.get("symbol", "").removesuffix("USDT"))
        if token is None:
            raise BinanceError(400, -1121, "Invalid symbol.", "bad")
        step = {"1h": 3600, "1d": 86_400}.get(call.params.get("interval", ""))
        if step is None:
            raise BinanceError(400, -1120, "Invalid interval.", "bad")
        try:
            limit = int(call.params.get("limit", "500"))
            start = call.params.get("startTime")
            end = call.params.get("endTime")
            low = int(start) / 1000 if start is not None else None
            high = min(int(end) / 1000, call.now) if end is not None else call.now
        except ValueError:
            raise BinanceError(
                400, -1100, "Illegal characters found in a parameter.", "bad"
            ) from None
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1100, "limit must be 1..1000.", "bad")
        first = low if low is not None else high - step * (limit - 1)
        day = datetime.fromtimestamp(first - first % 86_400, tz=timezone.utc).date()
        candles: list[Any] = []
        while day <= datetime.fromtimestamp(high, tz=timezone.utc).date():
            candles += (
                self.market.hourly(token, day) if step == 3600 else [self.market.daily(token, day)]
            )
            day += timedelta(days=1)
        chosen = [c for c in candles if first <= c.start.timestamp() <= high]
        chosen = chosen[:limit] if low is not None else chosen[-limit:]
        return [
            [
                int(c.start.timestamp() * 1000),
                *(f"{x:.8f}" for x in (c.open, c.high, c.low, c.close, c.volume)),
                int((c.start.timestamp() + step) * 1000) - 1,
            ]
            for c in chosen
        ]

    def _price(self, call: Call) -> dict[str, Any]:
        symbol = call.params.get("symbol", "BTCUSDT")
        token = self.market.by_symbol.get(symbol.removesuffix("USDT"))
        if token is None:
            raise BinanceError(400, -1121, "Invalid symbol.", "bad")
        return {"symbol": symbol, "price": f"{self.market.price(token, call.now):.8f}"}

    def _place(self, call: Call, record: KeyRecord, faults: Faults) -> _Order:
        params = {**call.params, **dict(parse_qsl(call.request.body.decode("utf-8", "replace")))}
        symbol, side = params.get("symbol"), params.get("side")
        kind = params.get("type", "LIMIT")
        if not symbol or side not in ("BUY", "SELL") or kind not in ("LIMIT", "MARKET"):
            raise BinanceError(400, -1102, "Mandatory parameter was not sent or malformed.", "bad")
        client_id = params.get("newClientOrderId") or f"x-{secrets.token_hex(10)}"
        if not _client_id_ok(client_id):
            raise BinanceError(400, -1100, "Illegal characters found in newClientOrderId.", "bad")
        for order in self.orders.values():
            open_same = order.account == record.account and order.status == "NEW"
            if open_same and order.client_id == client_id:
                raise BinanceError(400, -2010, "Duplicate order sent.", "rejected")
        order = _Order(
            record.account,
            next(self._ids),
            client_id,
            symbol,
            side,
            kind,
            params.get("quantity", "1"),
            params.get("price", "0"),
            "NEW" if kind == "LIMIT" else "FILLED",
            int(call.now * 1000),
            call.now + faults.invisible_seconds,
        )
        self.orders[order.order_id] = order
        return order

    def _find(self, call: Call, record: KeyRecord) -> _Order:
        wanted_id = call.params.get("orderId")
        wanted_client = call.params.get("origClientOrderId")
        if wanted_id is None and wanted_client is None:
            raise BinanceError(
                400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent.", "bad"
            )
        for order in self.orders.values():
            mine = order.account == record.account and order.visible_at <= call.now
            same = (wanted_id is not None and str(order.order_id) == wanted_id) or (
                wanted_client is not None and order.client_id == wanted_client
            )
            if mine and same:
                return order
        raise BinanceError(400, -2013, "Order does not exist.", "not-found")

    # -- answers -------------------------------------------------------------------------

    def _headers(self, sapi: bool) -> list[tuple[str, str]]:
        headers = [("content-type", "application/json;charset=UTF-8")]
        if sapi:
            return headers if self._sapi_header is None else [*headers, self._sapi_header]
        return [*headers, ("x-mbx-used-weight-1m", str(self._ip.used))]

    def _reply(self, status: int, body: Any, extra: list[tuple[str, str]], sapi: bool) -> Reply:
        return Reply(status, [*self._headers(sapi), *extra], json.dumps(body).encode())

    def _error(
        self,
        out: Outcome,
        status: int,
        code: int,
        msg: str,
        outcome: str,
        retry_after: float | None = None,
    ) -> Reply:
        out.status, out.outcome = status, outcome
        headers = self._headers(out.route is not None and out.route in binance.SAPI)
        if status in (418, 429):
            if retry_after is None:
                until = self._ip.banned_until if status == 418 else self._ip.minute + 60.0
                retry_after = until - self._last_now()
            headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
        return Reply(status, headers, json_body({"code": code, "msg": msg}))

    def _last_now(self) -> float:
        return self.config.clock()


_SAPI_IP = binance.SAPI_IP_LIMIT
_SAPI_UID = binance.SAPI_UID_LIMIT
_INVALID_KEY = "Invalid API-key, IP, or permissions for action."
_BAD_SIGNATURE = "Signature for this request is not valid."
_ORDER_ROUTES = frozenset({"POST /api/v3/order", "DELETE /api/v3/order"})


def _client_id_ok(value: str) -> bool:
    """``^[a-zA-Z0-9-_]{1,36}$``."""
    return 1 <= len(value) <= 36 and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)


def _split_signature(query: str, body: str) -> tuple[str, str | None]:
    """The signed payload (query + body without ``signature``) and the signature sent."""
    signature = None
    kept = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        if name == "signature":
            signature = value
        else:
            kept.append(part)
    body_kept = []
    for part in body.split("&") if body else []:
        name, _, value = part.partition("=")
        if name == "signature":
            signature = value
        else:
            body_kept.append(part)
    payload = "&".join(kept) + "&".join(body_kept)
    if signature is not None:
        signature = signature.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    return payload, signature


def _ed25519_valid(public_key: Any, payload: str, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature, validate=True), payload.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
