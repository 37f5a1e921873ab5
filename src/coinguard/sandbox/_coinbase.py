"""The Coinbase Advanced Trade emulation: a JWT per request, rate headers, orders that fail
with HTTP 200, client order ids that guard against duplicates, key permissions.

Routes live under ``/api/v3/brokerage``. A call is checked in this order: route (404) ->
``Authorization: Bearer <JWT>`` (401 ``Unauthorized``, as Coinbase answers, for a missing or
malformed token, an unknown ``kid``, a signature the key's public half does not verify, claims
that are not ``iss`` "cdp", ``sub`` the key name, ``nbf`` not in the future, ``exp`` not past
and at most 120 s after ``nbf``, ``uri`` "METHOD host/path" of this very request, or a
``nonce`` seen before) -> the key's requests in the last second, at most the client profile's
30 (``SandboxConfig.weight_limit`` overrides; counted per key; 429 beyond, or 401
``Unauthorized`` for a share ``Faults.throttle_as_401_rate`` of them, as Coinbase has been
seen to throttle) -> the key's permission (403) -> faults -> handler. Every answer carries
``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (epoch seconds).

Orders (``POST /orders``) answer HTTP 200 either way: ``success: true`` with
``success_response``, or ``success: false`` with ``error_response`` (``INVALID_SIDE``,
``UNSUPPORTED_ORDER_CONFIGURATION``, ``INVALID_PRODUCT_ID``, ``INSUFFICIENT_FUND``). A
``client_order_id`` the user already used answers with the order it placed, never a second
one: the duplicate guard Coinbase's SDK documents. Faults on orders:
``timeout_after_order_rate`` places the order then answers only after ``stall_seconds``;
``drop_after_order_rate`` places it then drops the connection; ``error_rate`` answers 503
after placing it half of the time.

Key pairs need the ``signing`` extra (PyJWT and cryptography); it is imported only when this
profile starts, so the other profiles run on a bare install.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..providers import coinbase
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig
from ._data import Market
from ._emulation import Call, Outcome, iso, json_body
from ._ledger import Ledger
from ._wire import Reply

__all__ = ["Coinbase", "CoinbaseKey", "store"]

PREFIX = "/api/v3/brokerage"
_LIFETIME = 120  # the longest a token may live, as Coinbase's own SDK signs them
#: route -> the permission it needs (None: any valid key)
ROUTES: dict[str, str | None] = {
    "GET /key_permissions": None,
    "GET /accounts": "can_view",
    "GET /orders/historical/batch": "can_view",
    "GET /orders/historical/*": "can_view",
    "POST /orders": "can_trade",
    "POST /orders/batch_cancel": "can_trade",
}
_PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")
_BALANCE = 1_000_000.0  # quote currency a buy may spend


def _limit() -> int:
    quota = coinbase.PROFILE.quota
    assert quota is not None
    return quota.windows[0].limit


def _new_key() -> str:
    return f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"


def store() -> KeyStore:
    """A key store issuing CDP key names (``organizations/<org>/apiKeys/<id>``)."""
    return KeyStore(None, _new_key)


@dataclass
class CoinbaseKey:
    """What the server holds for one CDP key: its public half and its permissions."""

    public_key: Any
    can_view: bool
    can_trade: bool
    can_transfer: bool
    portfolio: str
    recent: deque[float] = field(default_factory=deque)


@dataclass
class _Order:
    account: str
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    configuration: dict[str, Any]
    status: str
    created: float

    def as_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "product_id": self.product_id,
            "side": self.side,
            "client_order_id": self.client_order_id,
            "status": self.status,
            "order_configuration": self.configuration,
            "created_time": iso(self.created),
        }


class CoinbaseError(Exception):
    """An answer that is not a 200: its status, body and ledger outcome."""

    def __init__(self, status: int, body: Any, outcome: str) -> None:
        super().__init__(outcome)
        self.status, self.body, self.outcome = status, body, outcome


def _unauthorized(outcome: str) -> CoinbaseError:
    return CoinbaseError(401, None, outcome)


class Coinbase:
    """The emulation: provisioned CDP keys ``read`` (view), ``trade`` (view and trade) and
    ``overprivileged`` (view, trade and transfer), each an EC P-256 key pair whose PEM private
    key is in ``Keys.<name>_secret`` (ES256), and ``ed25519`` (view and trade; the base64 of
    a raw Ed25519 private key, EdDSA). All keys belong to one user, so an order placed with
    the trade key is read with the read key."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        try:
            import cryptography  # noqa: F401
            import jwt  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "the coinbase sandbox signs and verifies JWTs; install the extra: "
                "pip install 'coinguard[signing]'"
            ) from None
        self.config = config
        self.store = store
        self.ledger = ledger
        self.market = market
        self.limit = config.weight_limit or _limit()
        self.secrets: dict[str, CoinbaseKey] = {}
        self.orders: dict[str, _Order] = {}
        self._by_client: dict[tuple[str, str], str] = {}
        self._nonces: dict[str, float] = {}
        self._ids = itertools.count(1)
        now = config.clock()
        read = self._provision(now, view=True)
        trade = self._provision(now, view=True, trade=True)
        over = self._provision(now, view=True, trade=True, transfer=True)
        ed = self._provision(now, view=True, trade=True, ed25519=True)
        self.keys = Keys(
            read=read[0],
            trade=trade[0],
            overprivileged=over[0],
            ed25519=ed[0],
            read_secret=read[1],
            trade_secret=trade[1],
            overprivileged_secret=over[1],
            ed25519_secret=ed[1],
        )

    def _provision(
        self,
        now: float,
        *,
        view: bool = False,
        trade: bool = False,
        transfer: bool = False,
        ed25519: bool = False,
    ) -> tuple[str, str]:
        import base64

        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        name = self.store.issue(("cdp",), "cb-main", now).value
        public: Any
        if ed25519:
            edkey = Ed25519PrivateKey.generate()
            raw = edkey.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
            secret, public = base64.b64encode(raw).decode(), edkey.public_key()
        else:
            eckey = ec.generate_private_key(ec.SECP256R1())
            pem = eckey.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
            secret, public = pem.decode(), eckey.public_key()
        self.secrets[name] = CoinbaseKey(public, view, trade, transfer, str(uuid.uuid4()))
        return name, secret

    # -- one call ------------------------------------------------------------------------

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call, in the order the module docstring gives."""
        drop, fail, executes, stall, as_401 = (rng.random() for _ in range(5))
        route = self._route(call)
        out = Outcome(0, "", route=route)
        key: CoinbaseKey | None = None
        try:
            if route is None:
                body = {"error": "NOT_FOUND", "message": "Not Found"}
                raise CoinbaseError(404, body, "not-found")
            record, key = self._authenticate(call, out)
            self._admit(key, call.now, as_401 < faults.throttle_as_401_rate)
            needed = ROUTES[route]
            if needed is not None and not getattr(key, needed):
                body = {"error": "PERMISSION_DENIED", "message": "Missing required scopes"}
                raise CoinbaseError(403, body, "forbidden")
            out.admitted = True
            if route == "POST /orders":
                fault = self._order_fault(call, record, faults, out, (drop, fail, executes, stall))
                if fault is not None:
                    return fault, out
            result = self._dispatch(call, route, record, key)
        except CoinbaseError as exc:
            out.status, out.outcome = exc.status, exc.outcome
            return self._reply(exc.status, exc.body, key, call.now), out
        out.status, out.outcome = 200, "ok" if result.get("success", True) else "rejected"
        return self._reply(200, result, key, call.now), out

    @staticmethod
    def _route(call: Call) -> str | None:
        if not call.path.startswith(PREFIX + "/"):
            return None
        route = f"{call.request.method} {call.path[len(PREFIX) :]}"
        if route in ROUTES:
            return route
        method, _, path = route.partition(" ")
        if method == "GET" and path.startswith("/orders/historical/") and path.count("/") == 3:
            return "GET /orders/historical/*"
        return None

    def _authenticate(self, call: Call, out: Outcome) -> tuple[KeyRecord, CoinbaseKey]:
        import jwt

        scheme, _, token = call.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("unauthorized")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthorized("bad-token") from None
        name = header.get("kid")
        if not isinstance(name, str):
            raise _unauthorized("bad-token")
        out.presented = name
        record = self.store.lookup(name, call.now)
        key = self.secrets.get(name)
        if record is None or key is None:
            raise _unauthorized("unauthorized")
        out.record = record
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256", "EdDSA"],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            raise _unauthorized("bad-signature") from None
        if not self._claims_ok(call, name, header, claims):
            raise _unauthorized("bad-claims")
        return record, key

    def _claims_ok(
        self, call: Call, name: str, header: dict[str, Any], claims: dict[str, Any]
    ) -> bool:
        nbf, exp, nonce = claims.get("nbf"), claims.get("exp"), header.get("nonce")
        if not isinstance(nbf, int) or not isinstance(exp, int) or not isinstance(nonce, str):
            return False
        host = _hostname(call.request.headers.get("host", ""))
        uri = f"{call.request.method} {host}{call.path}"
        fresh = nbf <= call.now + 1 and call.now < exp <= nbf + _LIFETIME
        valid = (
            claims.get("iss") == "cdp"
            and claims.get("sub") == name
            and claims.get("uri") == uri
            and fresh
            and nonce not in self._nonces
        )
        if valid:
            self._nonces = {n: t for n, t in self._nonces.items() if t > call.now}
            self._nonces[nonce] = float(exp)
        return valid

    def _admit(self, key: CoinbaseKey, now: float, as_401: bool) -> None:
        recent = key.recent
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) < self.limit:
            recent.append(now)
            return
        if as_401:  # what Coinbase has answered when it throttles (coinbase-advanced-py#60)
            raise _unauthorized("throttled-401")
        body = {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}
        raise CoinbaseError(429, body, "rate-limited")

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
        if stall < faults.timeout_after_order_rate:
            answer = self._place(call, record)
            out.status, out.outcome = 200, "stalled-after-order"
            reply = self._reply(200, answer, self.secrets[record.value], call.now)
            return Reply(reply.status, reply.headers, reply.body, "respond", faults.stall_seconds)
        if drop < faults.drop_after_order_rate:
            self._place(call, record)
            out.status, out.outcome = 0, "dropped-after-order"
            return Reply(0, [], b"", "drop")
        if fail < faults.error_rate:
            if executes < 0.5:
                self._place(call, record)
            out.status, out.outcome = 503, "fault-5xx"
            body = {"error": "INTERNAL", "message": "internal error"}
            return self._reply(503, body, self.secrets[record.value], call.now)
        return None

    def _dispatch(self, call: Call, route: str, record: KeyRecord, key: CoinbaseKey) -> Any:
        mine = [o for o in self.orders.values() if o.account == record.account]
        if route == "GET /key_permissions":
            return {
                "can_view": key.can_view,
                "can_trade": key.can_trade,
                "can_transfer": key.can_transfer,
                "portfolio_uuid": key.portfolio,
                "portfolio_type": "DEFAULT",
            }
        if route == "GET /accounts":
            accounts = [
                {"currency": c, "available_balance": {"value": v, "currency": c}}
                for c, v in (("USD", f"{_BALANCE:.2f}"), ("BTC", "0.50000000"))
            ]
            return {"accounts": accounts, "has_next": False, "cursor": "", "size": 2}
        if route == "GET /orders/historical/batch":
            wanted = call.params.get("product_ids")
            orders = [o.as_json() for o in mine if wanted in (None, o.product_id)]
            return {"orders": orders, "has_next": False, "cursor": ""}
        if route == "GET /orders/historical/*":
            order_id = call.path.rsplit("/", 1)[1]
            for order in mine:
                if order.order_id == order_id:
                    return {"order": order.as_json()}
            raise CoinbaseError(404, {"error": "NOT_FOUND", "message": "order not found"}, "bad")
        if route == "POST /orders":
            return self._place(call, record)
        return self._cancel(call, mine)

    def _place(self, call: Call, record: KeyRecord) -> dict[str, Any]:
        """Place one order, or answer the one placed under its client order id before."""
        fields = _json_object(call.request.body)
        client_id = str(fields.get("client_order_id") or uuid.uuid4().hex)
        earlier = self._by_client.get((record.account, client_id))
        if earlier is not None:
            return _success(self.orders[earlier])
        product, side = fields.get("product_id"), fields.get("side")
        configuration = fields.get("order_configuration")
        failure = _failure(product, side, configuration)
        if failure is not None:
            return {
                "success": False,
                "error_response": {
                    "error": failure,
                    "message": failure.replace("_", " ").lower(),
                    "error_details": "",
                    "new_order_failure_reason": failure,
                },
                "order_configuration": configuration,
            }
        assert isinstance(configuration, dict)
        order = _Order(
            record.account,
            str(uuid.UUID(int=next(self._ids) + (1 << 64))),
            client_id,
            str(product),
            str(side),
            configuration,
            "FILLED" if "market_market_ioc" in configuration else "OPEN",
            call.now,
        )
        self.orders[order.order_id] = order
        self._by_client[(record.account, client_id)] = order.order_id
        return _success(order)

    @staticmethod
    def _cancel(call: Call, mine: list[_Order]) -> dict[str, Any]:
        wanted = _json_object(call.request.body).get("order_ids") or []
        by_id = {o.order_id: o for o in mine}
        results = []
        for order_id in wanted if isinstance(wanted, list) else []:
            order = by_id.get(order_id)
            ok = order is not None and order.status == "OPEN"
            if order is not None and ok:
                order.status = "CANCELLED"
            reason = "UNKNOWN_CANCEL_FAILURE_REASON" if ok else "UNKNOWN_CANCEL_ORDER"
            results.append({"success": ok, "failure_reason": reason, "order_id": order_id})
        return {"results": results}

    # -- answers -------------------------------------------------------------------------

    def _reply(self, status: int, body: Any, key: CoinbaseKey | None, now: float) -> Reply:
        headers = [("content-type", "application/json")]
        if key is not None:
            remaining = max(0, self.limit - len(key.recent))
            reset = math.ceil(key.recent[0] + 1.0) if key.recent else math.ceil(now)
            headers += [
                ("x-ratelimit-limit", str(self.limit)),
                ("x-ratelimit-remaining", str(remaining)),
                ("x-ratelimit-reset", str(reset)),
            ]
        if status == 401:  # Coinbase's 401 is plain text
            headers[0] = ("content-type", "text/plain; charset=utf-8")
            return Reply(401, headers, b"Unauthorized\n")
        return Reply(status, headers, json_body(body))


def _hostname(host: str) -> str:
    """The Host header without its port (and an IPv6 address without brackets), as the
    client puts the host in ``uri``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _failure(product: Any, side: Any, configuration: Any) -> str | None:
    """Why an order is refused (its ``error_response.error``), or None."""
    if side not in ("BUY", "SELL"):
        return "INVALID_SIDE"
    if not isinstance(configuration, dict) or len(configuration) != 1:
        return "UNSUPPORTED_ORDER_CONFIGURATION"
    if product not in _PRODUCTS:
        return "INVALID_PRODUCT_ID"
    spec = next(iter(configuration.values()))
    try:
        size = float(spec.get("base_size") or 0) * float(spec.get("limit_price") or 0)
        size = size or float(spec.get("quote_size") or 0)
    except (AttributeError, TypeError, ValueError):
        return "UNSUPPORTED_ORDER_CONFIGURATION"
    if side == "BUY" and size > _BALANCE:
        return "INSUFFICIENT_FUND"
    return None


def _success(order: _Order) -> dict[str, Any]:
    return {
        "success": True,
        "success_response": {
            "order_id": order.order_id,
            "product_id": order.product_id,
            "side": order.side,
            "client_order_id": order.client_order_id,
        },
        "order_configuration": order.configuration,
    }
