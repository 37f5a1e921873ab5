"""The Kraken spot emulation: signed private calls, nonces, the decaying counter, lockouts.

Routes, which private methods read and which cost 2, and the counter of each tier come from
:mod:`coinguard.providers.kraken` (the table the client plans with). Every answer is HTTP 200
with ``{"error": [...], "result": ...}``, as Kraken answers. A private call is checked in this
order: the key is locked out (``EGeneral:Temporary lockout``) -> ``API-Key`` known
(``EAPI:Invalid key``) -> ``API-Sign`` over path + SHA256(nonce + body)
(``EAPI:Invalid signature``) -> the nonce is above the key's last one, or within its
``nonce_window`` and never seen (``EAPI:Invalid nonce``) -> the key's REST counter, decayed
since its last call, has room for the call's cost (``EAPI:Rate limit exceeded``; orders are
outside it) -> the key's permission for the method (``EGeneral:Permission denied``) -> for AddOrder
and CancelOrder, the account's trading counter of the pair (``EOrder:Rate limit exceeded``:
AddOrder adds 1, CancelOrder a penalty by the order's age, the counter decays per second) ->
faults -> handler. Five refused signatures lock the key out for 15 minutes.

Faults on ``AddOrder``: ``timeout_after_order_rate`` places the order then answers only after
``stall_seconds``; ``drop_after_order_rate`` places it then drops the connection;
``error_rate`` answers ``EService:Unavailable`` after placing the order half of the time.
``invisible_seconds`` keeps a new order from lookups by its ``cl_ord_id`` that long.

AddOrder takes a ``cl_ord_id`` in Kraken's formats (never beside ``userref``), refused as a
duplicate while an open order of the account has it; OpenOrders and ClosedOrders list the
orders of one ``cl_ord_id`` when asked (the ledger marks such a lookup that listed nothing
``not-found``). The duplicate's wording, ``EOrder:Duplicate cl_ord_id``, is the emulation's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ..providers import kraken
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig
from ._data import Market
from ._emulation import Call, Outcome
from ._ledger import Ledger
from ._wire import Reply

__all__ = ["Kraken", "KrakenKey", "store"]

_LOCKOUT_AFTER = 5  # refused signatures before a key is locked out
_READ = ("query-funds", "query-open-trades", "query-closed-trades", "query-ledger")
_TRADE = (*_READ, "modify-trades", "cancel-close-trades")
#: the permission each private method needs (none: GetApiKeyInfo)
_NEEDS = {
    "Balance": "query-funds",
    "BalanceEx": "query-funds",
    "TradeBalance": "query-funds",
    "OpenOrders": "query-open-trades",
    "QueryOrders": "query-open-trades",
    "ClosedOrders": "query-closed-trades",
    "TradesHistory": "query-closed-trades",
    "Ledgers": "query-ledger",
    "AddOrder": "modify-trades",
    "CancelOrder": "cancel-close-trades",
    "Withdraw": "withdraw-funds",
    "GetApiKeyInfo": None,
}
_ORDERS = frozenset({"AddOrder", "CancelOrder"})
_LISTS = ("OpenOrders", "ClosedOrders")
_CL_ORD_ID = re.compile(f"(?:{kraken.CL_ORD_ID})\\Z")


def _penalty(age: float) -> int:
    return next((cost for bound, cost in kraken.CANCEL_PENALTIES if age < bound), 0)


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(42)).decode()


def store() -> KeyStore:
    """A key store issuing 56-character Kraken-like API keys."""
    return KeyStore(None, _new_key)


@dataclass
class KrakenKey:
    """What the server holds for one API key: its secret, permissions, nonces and counter."""

    secret: bytes
    permissions: tuple[str, ...]
    nonce_window: int = 0
    last_nonce: int = 0
    recent: set[int] = field(default_factory=set)
    counter: float = 0.0
    counted_at: float = 0.0
    refusals: int = 0
    locked_until: float = 0.0
    valid_until: int = 0
    allowlist: tuple[str, ...] = ()


@dataclass
class _Order:
    account: str
    txid: str
    pair: str
    side: str
    kind: str
    volume: str
    price: str
    status: str
    opened: float
    userref: str | None
    cl_ord_id: str | None = None
    visible_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "opentm": self.opened,
            "userref": self.userref,
            "cl_ord_id": self.cl_ord_id,
            "descr": {
                "pair": self.pair,
                "type": self.side,
                "ordertype": self.kind,
                "price": self.price,
                "order": f"{self.side} {self.volume} {self.pair} @ {self.kind} {self.price}",
            },
            "vol": self.volume,
            "vol_exec": self.volume if self.status == "closed" else "0.00000000",
        }


class KrakenError(Exception):
    """An answer in Kraken's shape: HTTP 200 with ``{"error": [code]}``."""

    def __init__(self, code: str, outcome: str) -> None:
        super().__init__(code)
        self.code, self.outcome = code, outcome


class Kraken:
    """The emulation: provisioned keys ``read`` (query permissions), ``trade`` (queries,
    orders and cancels, allowed from 127.0.0.1 only) and ``overprivileged`` (also
    withdraw-funds, from anywhere), each with its base64
    secret in ``Keys``. ``nonce_window`` of every key is ``SandboxConfig.nonce_window``; the
    counter's maximum is ``SandboxConfig.weight_limit`` when set, else the Starter tier's 15,
    draining ``SandboxConfig.counter_decay`` per second, else the Starter tier's 0.33."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        self.config = config
        self.store = store
        self.ledger = ledger
        self.market = market
        top, decay = kraken.TIERS["starter"]
        self.counter_max = config.weight_limit or top
        self.decay = config.counter_decay or decay
        top, decay = kraken.TRADING_TIERS["starter"]
        self.trading_max = config.trading_limit or top
        self.trading_decay = config.trading_decay or decay
        self.trading: dict[tuple[str, str], tuple[float, float]] = {}  # (account, pair)
        self.secrets: dict[str, KrakenKey] = {}
        self.orders: dict[str, _Order] = {}
        self._invisible = 0.0  # Faults.invisible_seconds of the call at hand
        self._ids = itertools.count(1)
        now = config.clock()
        read = self._provision("read", _READ, now)
        trade = self._provision("trade", _TRADE, now, allowlist=("127.0.0.1",))
        over = self._provision("overprivileged", (*_TRADE, "withdraw-funds"), now)
        self.keys = Keys(
            read=read[0],
            trade=trade[0],
            overprivileged=over[0],
            read_secret=read[1],
            trade_secret=trade[1],
            overprivileged_secret=over[1],
        )

    def _provision(
        self,
        account: str,
        permissions: tuple[str, ...],
        now: float,
        allowlist: tuple[str, ...] = (),
    ) -> tuple[str, str]:
        # one user's keys: orders placed with the trade key are read with the read key
        value = self.store.issue((account,), "kr-main", now).value
        raw = secrets.token_bytes(64)
        key = KrakenKey(raw, permissions, self.config.nonce_window, allowlist=allowlist)
        self.secrets[value] = key
        return value, base64.b64encode(raw).decode()

    # -- one call ------------------------------------------------------------------------

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call, in the order the module docstring gives."""
        drop, fail, executes, stall = rng.random(), rng.random(), rng.random(), rng.random()
        self._invisible = faults.invisible_seconds
        route = f"{call.request.method} {call.path}"
        out = Outcome(0, "", route=route)
        method = call.path.removeprefix("/0/private/")
        try:
            if call.path == "/0/public/Time" and call.request.method == "GET":
                out.admitted = True
                return self._ok(out, {"unixtime": int(call.now)}), out
            if call.request.method != "POST" or method not in _NEEDS:
                out.route = None
                raise KrakenError("EGeneral:Unknown method", "not-found")
            fields, record, key = self._check(call, method, out)
            if method in _ORDERS:
                self._trade_count(method, fields, record, call.now)
            out.admitted = True
            if method == "AddOrder":
                draws = (drop, fail, executes, stall)
                fault = self._order_fault(fields, record, faults, out, draws)
                if fault is not None:
                    return fault, out
            result = self._dispatch(call, method, fields, record, key)
        except KrakenError as exc:
            return self._error(out, exc.code, exc.outcome), out
        reply = self._ok(out, result)
        if method in _LISTS and "cl_ord_id" in fields and not any(result.values()):
            out.outcome = "not-found"  # a lookup by cl_ord_id that listed nothing
        return reply, out

    def _check(
        self, call: Call, method: str, out: Outcome
    ) -> tuple[dict[str, str], KeyRecord, KrakenKey]:
        presented = call.request.headers.get("api-key")
        out.presented = presented
        record = self.store.lookup(presented, call.now) if presented else None
        key = self.secrets.get(presented) if presented else None
        if key is not None and call.now < key.locked_until:
            raise KrakenError("EGeneral:Temporary lockout", "locked-out")
        if record is None or key is None:
            raise KrakenError("EAPI:Invalid key", "unauthorized")
        out.record = record
        body = call.request.body.decode("utf-8", "replace")
        fields = dict(parse_qsl(body, keep_blank_values=True))
        try:
            nonce = int(fields["nonce"])
        except (KeyError, ValueError):
            raise KrakenError("EAPI:Invalid nonce", "bad-nonce") from None
        digest = hashlib.sha256(f"{nonce}{body}".encode()).digest()
        good = hmac.new(key.secret, call.path.encode() + digest, hashlib.sha512).digest()
        sent = call.request.headers.get("api-sign", "")
        if not hmac.compare_digest(base64.b64encode(good).decode(), sent):
            self._refuse(key, call.now)
            raise KrakenError("EAPI:Invalid signature", "bad-signature")
        if not self._nonce_ok(key, nonce):
            raise KrakenError("EAPI:Invalid nonce", "bad-nonce")
        if method not in _ORDERS:
            self._count(key, call.now, 2 if method in kraken.HISTORY else 1)
        needed = _NEEDS[method]
        if needed is not None and needed not in key.permissions:
            raise KrakenError("EGeneral:Permission denied", "forbidden")
        return fields, record, key

    def _refuse(self, key: KrakenKey, now: float) -> None:
        key.refusals += 1
        if key.refusals >= _LOCKOUT_AFTER:
            key.refusals = 0
            key.locked_until = now + kraken.LOCKOUT_SECONDS

    @staticmethod
    def _nonce_ok(key: KrakenKey, nonce: int) -> bool:
        if nonce > key.last_nonce:
            key.recent = {n for n in key.recent if n > nonce - key.nonce_window}
            key.recent.add(nonce)
            key.last_nonce = nonce
            return True
        late = key.last_nonce - nonce < key.nonce_window and nonce not in key.recent
        if late:
            key.recent.add(nonce)
        return late

    def _count(self, key: KrakenKey, now: float, cost: int) -> None:
        """The decaying counter: refused (and not raised) when the call would pass the max."""
        level = max(0.0, key.counter - self.decay * max(0.0, now - key.counted_at))
        key.counted_at = now
        if level + cost > self.counter_max:
            key.counter = level
            raise KrakenError("EAPI:Rate limit exceeded", "rate-limited")
        key.counter = level + cost

    def _trade_count(
        self, method: str, fields: dict[str, str], record: KeyRecord, now: float
    ) -> None:
        """The trading counter of the order's pair: AddOrder adds 1, CancelOrder a penalty by
        the order's age; over the threshold is ``EOrder:Rate limit exceeded`` (not counted)."""
        if method == "AddOrder":
            pair, cost = fields.get("pair"), 1
        else:
            order = self._named(fields, record)
            if order is None:
                return
            pair, cost = order.pair, _penalty(now - order.opened)
        if not pair or not cost:
            return
        slot = (record.account, pair)
        level, at = self.trading.get(slot, (0.0, now))
        level = max(0.0, level - self.trading_decay * max(0.0, now - at))
        if level + cost > self.trading_max:
            self.trading[slot] = (level, now)
            raise KrakenError("EOrder:Rate limit exceeded", "order-rate-limited")
        self.trading[slot] = (level + cost, now)

    def _named(self, fields: dict[str, str], record: KeyRecord) -> _Order | None:
        """The open order of the account a cancel names by ``txid`` or ``cl_ord_id``."""
        txid, cl_ord_id = fields.get("txid"), fields.get("cl_ord_id")
        for order in self.orders.values():
            if order.account != record.account or order.status != "open":
                continue
            if (txid and order.txid == txid) or (cl_ord_id and order.cl_ord_id == cl_ord_id):
                return order
        return None

    def trading_of(self, pair: str, now: float) -> float:
        """The trading counter of ``pair`` (of the provisioned account) at ``now`` (for tests)."""
        level, at = self.trading.get(("kr-main", pair), (0.0, now))
        return max(0.0, level - self.trading_decay * max(0.0, now - at))

    def counter_of(self, key: str, now: float) -> float:
        """A key's REST counter at ``now`` (for tests)."""
        state = self.secrets[key]
        return max(0.0, state.counter - self.decay * max(0.0, now - state.counted_at))

    # -- faults and handlers -------------------------------------------------------------

    def _order_fault(
        self,
        fields: dict[str, str],
        record: KeyRecord,
        faults: Faults,
        out: Outcome,
        draws: tuple[float, float, float, float],
    ) -> Reply | None:
        drop, fail, executes, stall = draws
        if stall < faults.timeout_after_order_rate:
            result = self._place(fields, record)
            reply = self._ok(out, result)
            out.outcome = "stalled-after-order"
            return Reply(reply.status, reply.headers, reply.body, "respond", faults.stall_seconds)
        if drop < faults.drop_after_order_rate:
            self._place(fields, record)
            out.status, out.outcome = 0, "dropped-after-order"
            return Reply(0, [], b"", "drop")
        if fail < faults.error_rate:
            if executes < 0.5:
                self._place(fields, record)
            return self._error(out, "EService:Unavailable", "fault-unavailable")
        return None

    def _dispatch(
        self, call: Call, method: str, fields: dict[str, str], record: KeyRecord, key: KrakenKey
    ) -> Any:
        mine = {t: o for t, o in self.orders.items() if o.account == record.account}
        if method == "GetApiKeyInfo":
            return {
                "apiKeyName": record.scopes[0],
                "nonce": str(key.last_nonce),
                "nonceWindow": key.nonce_window,
                "permissions": list(key.permissions),
                "validUntil": str(key.valid_until),
                "createdTime": str(int(record.created_at)),
                "ipAllowlist": list(key.allowlist),
            }
        if method in ("Balance", "BalanceEx"):
            return {"ZUSD": "1000.0000", "XXBT": "0.5000000000"}
        if method == "TradeBalance":
            return {"eb": "1000.0000", "tb": "1000.0000"}
        if method in ("OpenOrders", "ClosedOrders"):
            return self._listed(method, fields, mine, call.now)
        if method == "QueryOrders":
            wanted = fields.get("txid", "").split(",")
            return {t: mine[t].as_json() for t in wanted if t in mine}
        if method in ("Ledgers", "TradesHistory"):
            return {"count": 0, "ledger" if method == "Ledgers" else "trades": {}}
        if method == "AddOrder":
            return self._place(fields, record)
        if method == "CancelOrder":
            order = self._named(fields, record)  # by txid or cl_ord_id, open orders only
            if order is None:
                raise KrakenError("EOrder:Unknown order", "rejected")
            order.status = "canceled"
            return {"count": 1}
        raise KrakenError("EGeneral:Permission denied", "forbidden")  # Withdraw: never here

    def _listed(
        self, method: str, fields: dict[str, str], mine: dict[str, _Order], now: float
    ) -> dict[str, Any]:
        """OpenOrders or ClosedOrders, of one ``cl_ord_id`` when it is given; an order placed
        less than ``Faults.invisible_seconds`` ago is not found by its id yet."""
        want_open = method == "OpenOrders"
        wanted = fields.get("cl_ord_id")
        listed = {
            t: o.as_json()
            for t, o in mine.items()
            if (o.status == "open") == want_open
            and (wanted is None or (o.cl_ord_id == wanted and o.visible_at <= now))
        }
        if want_open:
            return {"open": listed}
        return {"closed": listed, "count": len(listed)}

    def _place(self, fields: dict[str, str], record: KeyRecord) -> dict[str, Any]:
        pair, side = fields.get("pair"), fields.get("type")
        kind = fields.get("ordertype", "limit")
        if not pair or side not in ("buy", "sell") or kind not in ("limit", "market"):
            raise KrakenError("EGeneral:Invalid arguments", "bad")
        cl_ord_id = fields.get("cl_ord_id")
        if cl_ord_id is not None:
            if fields.get("userref") is not None or not _CL_ORD_ID.match(cl_ord_id):
                raise KrakenError("EGeneral:Invalid arguments:cl_ord_id", "bad")
            # unique among the account's open orders only, as Kraken checks it
            if any(
                o.cl_ord_id == cl_ord_id and o.status == "open" and o.account == record.account
                for o in self.orders.values()
            ):
                raise KrakenError("EOrder:Duplicate cl_ord_id", "duplicate")
        txid = f"O{next(self._ids):05d}-{secrets.token_hex(3).upper()}"
        order = _Order(
            record.account,
            txid,
            pair,
            side,
            kind,
            fields.get("volume", "1"),
            fields.get("price", "0"),
            "open" if kind == "limit" else "closed",
            self.config.clock(),
            fields.get("userref"),
            cl_ord_id,
            self.config.clock() + self._invisible,
        )
        self.orders[txid] = order
        return {"descr": {"order": f"{side} {order.volume} {pair} @ {kind}"}, "txid": [txid]}

    # -- answers -------------------------------------------------------------------------

    @staticmethod
    def _ok(out: Outcome, result: Any) -> Reply:
        out.status, out.outcome = 200, "ok"
        return Reply(200, _HEADERS, json.dumps({"error": [], "result": result}).encode())

    @staticmethod
    def _error(out: Outcome, code: str, outcome: str) -> Reply:
        out.status, out.outcome = 200, outcome
        return Reply(200, _HEADERS, json.dumps({"error": [code]}).encode())


_HEADERS = [("content-type", "application/json; charset=utf-8")]
