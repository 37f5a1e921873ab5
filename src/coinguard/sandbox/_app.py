"""The sans-I/O sandbox application: one parsed request in, one decision out.

Checks run in this order: route (404/405) -> body size (413) -> auth (401) -> scope (403)
-> quota (429) -> faults -> validation (400) and the handler. Everything from the quota step
on is *admitted*: it counts against the account's windows, including every fault (a reset
connection too: the client cannot know how far the request got, so neither do we).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._secret import fingerprint
from . import _binance, _coinbase, _coingecko, _coinmarketcap, _kraken
from ._accounts import KeyRecord, Keys, KeyStore
from ._binance import Binance
from ._coinbase import Coinbase
from ._coingecko import CoinGecko
from ._coinmarketcap import CoinMarketCap
from ._config import Faults, SandboxConfig
from ._data import Market
from ._emulation import CAPTIVE_PORTAL, Call, Emulation, Outcome, ledger_entry
from ._headers import rate_headers, retry_after_header
from ._kraken import Kraken
from ._ledger import Ledger, LedgerEntry
from ._limits import AccountLimiter, WindowUsage
from ._orders import Order, OrderBook
from ._routes import READ_HANDLERS, ApiError, Ctx, Route, match_route
from ._wire import Reply, Request

__all__ = ["App", "Reply", "Request"]

log = logging.getLogger("coinguard.sandbox")

PREFIX = "/v2"
_Emulated = type[CoinGecko | CoinMarketCap | Binance | Kraken | Coinbase]
_EMULATIONS: dict[str, Callable[[], tuple[_Emulated, KeyStore]]] = {
    "coingecko": lambda: (CoinGecko, _coingecko.store()),
    "coinmarketcap": lambda: (CoinMarketCap, _coinmarketcap.store()),
    "binance": lambda: (Binance, _binance.store()),
    "kraken": lambda: (Kraken, _kraken.store()),
    "coinbase": lambda: (Coinbase, _coinbase.store()),
}


@dataclass
class _Exchange:
    """Mutable per-request state while the checks run."""

    request: Request
    request_id: str
    now: float
    path: str
    params: dict[str, str]
    presented: str | None
    route: Route | None = None
    record: KeyRecord | None = None
    admitted: bool = False
    cost: int = 0
    usage: Sequence[WindowUsage] = ()
    drop: bool = False
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


def envelope(success: bool, message: str, data: Any = None) -> bytes:
    """The provider-style JSON envelope."""
    length = len(data) if isinstance(data, list) else (0 if data is None else 1)
    body = {"success": success, "message": message, "length": length, "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


class App:
    """All sandbox state, behind one lock. Safe to call from any thread."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.market = Market(config.seed)
        emulated = config.profile != "tokenmetrics"
        self.ledger = Ledger(() if emulated else config.windows)
        self.book = OrderBook(self.market)
        self._lock = threading.Lock()
        self._store = KeyStore(config.key_ttl_days)
        self.emulation: Emulation | None = None
        self._limiters: dict[str, AccountLimiter] = {}
        self._ids = itertools.count(1)
        self._accounts = itertools.count(1)
        self._id_prefix = secrets.token_hex(3)
        self._last_now = -math.inf
        self.set_faults(config.faults)
        if emulated:
            self.emulation = self._emulate(config)
            self.keys = self.emulation.keys
            return
        now = self._now()
        ages = config.key_age_days
        issued = {
            name: self._store.issue(scopes, f"acct-{name}", now, age_days=ages.get(name, 0.0))
            for name, scopes in (
                ("read", ("read",)),
                ("trade", ("trade",)),
                ("overprivileged", ("read", "trade", "withdraw")),
            )
        }
        self.keys = Keys(**{name: record.value for name, record in issued.items()})

    def _emulate(self, config: SandboxConfig) -> Emulation:
        # each provider issues keys of its own shape (CG-..., a UUID), rotation included
        cls, self._store = _EMULATIONS[config.profile]()
        return cls(config, self._store, self.ledger, self.market)

    # -- control plane (called by the Sandbox handle) -------------------------------------

    def set_faults(self, faults: Faults) -> None:
        """Swap the fault policy; the fault RNG restarts from its seed."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(self.config.seed if faults.seed is None else faults.seed)

    def rotate(self, key: str, overlap: float) -> str:
        """Issue a successor of ``key`` on the same account (see ``Sandbox.rotate``)."""
        with self._lock:
            return self._store.rotate(key, overlap, self._now()).value

    def revoke(self, key: str) -> None:
        """Make ``key`` invalid from now on."""
        with self._lock:
            self._store.revoke(key, self._now())

    def issue(self, scopes: Sequence[str], account: str | None, age_days: float) -> str:
        """Provision one more key, on a new account unless ``account`` is given."""
        with self._lock:
            account = account or f"acct-extra-{next(self._accounts)}"
            return self._store.issue(scopes, account, self._now(), age_days=age_days).value

    def account_of(self, key: str) -> str:
        """The account of a known key (valid or not)."""
        with self._lock:
            return self._store.account_of(key)

    def orders(self) -> dict[str, Order]:
        """A snapshot of every order, by id."""
        with self._lock:
            return dict(self.book.orders)

    def _now(self) -> float:
        # The ledger and the limiter must agree on arrival order even if the wall clock steps back.
        self._last_now = max(self._last_now, self.config.clock())
        return self._last_now

    # -- data plane ------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Decide the answer to one request and record it in the ledger."""
        with self._lock:
            ex = self._start(request)
            if self.emulation is not None:
                return self._emulated(self.emulation, ex)
            try:
                reply, outcome = self._checks(ex)
            except Exception:  # a sandbox bug must still produce an answer, never a hang
                log.exception("sandbox bug while handling %s %s", request.method, ex.path)
                reply = self._answer(ex, 500, envelope(False, "Internal server error"))
                outcome = "error"
            self._record(ex, reply, outcome)
            return reply

    def _emulated(self, emulation: Emulation, ex: _Exchange) -> Reply:
        call = Call(ex.request, ex.request_id, ex.now, ex.path, ex.params)
        try:
            reply, outcome = emulation.handle(call, self.faults, self._rng)
        except Exception:  # a sandbox bug must still produce an answer, never a hang
            log.exception("sandbox bug while handling %s %s", ex.request.method, ex.path)
            reply, outcome = Reply(500, [], b""), Outcome(500, "error")
        reply = Reply(
            reply.status,
            [*reply.headers, ("x-request-id", ex.request_id)],
            reply.body,
            reply.action,
            max(reply.delay, self.faults.latency if outcome.admitted else 0.0),
        )
        self.ledger.record(ledger_entry(call, reply, outcome))
        return reply

    def _start(self, request: Request) -> _Exchange:
        try:
            parts = urlsplit(request.target)
            path, query = parts.path, parts.query
        except ValueError:  # e.g. "http://[" : still answer (404), never crash
            path, _, query = request.target.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if self.config.profile != "tokenmetrics":
            presented = None  # the emulation reads its own header
        elif self.config.auth == "header":
            presented = request.headers.get("x-api-key")
        else:
            presented = params.pop("api_key", None)
        request_id = f"req_{self._id_prefix}{next(self._ids):08d}"
        return _Exchange(request, request_id, self._now(), path or "/", params, presented)

    def _checks(self, ex: _Exchange) -> tuple[Reply, str]:
        sub = ex.path[len(PREFIX) :] if ex.path.startswith(PREFIX + "/") else None
        route, allowed, order_id = match_route(ex.request.method, sub or "")
        if not allowed:
            return self._error(ex, 404, f"Not found: {ex.path[:100]}"), "not-found"
        if route is None:
            ex.extra_headers.append(("allow", ", ".join(allowed)))
            return self._error(ex, 405, f"Method {ex.request.method} not allowed"), "bad-method"
        ex.route = route
        if ex.request.oversized:
            limit = self.config.max_body
            return self._error(ex, 413, f"Request body over {limit} bytes"), "too-large"
        if not ex.presented:
            return self._error(ex, 401, "Missing API key"), "unauthorized"
        ex.record = self._store.lookup(ex.presented, ex.now)
        if ex.record is None:
            return self._error(ex, 401, "Invalid API key"), "unauthorized"
        limiter = self._limiters.setdefault(ex.record.account, AccountLimiter(self.config.windows))
        if route.scope != "any" and route.scope not in ex.record.scopes:
            ex.usage = limiter.usage(ex.now)
            message = f"This API key lacks the '{route.scope}' scope"
            return self._error(ex, 403, message), "forbidden"
        return self._admit(ex, limiter, order_id)

    def _admit(
        self, ex: _Exchange, limiter: AccountLimiter, order_id: str | None
    ) -> tuple[Reply, str]:
        assert ex.route is not None
        assert ex.record is not None
        cost = self.config.cost_of(ex.route.template)
        decision = limiter.take(cost, ex.now)
        ex.usage = decision.usage
        if not decision.admitted:
            ex.cost = cost
            if math.isfinite(decision.retry_after):
                header = retry_after_header(self.config, decision.retry_after, ex.now)
                ex.extra_headers.append(("retry-after", header))
            return self._error(ex, 429, "Rate limit exceeded"), "limited"
        ex.admitted, ex.cost = True, cost
        faulted = self._fault(ex)
        if faulted is not None:
            return faulted
        delay = self.faults.latency
        try:
            status, message, data = self._dispatch(ex, order_id)
        except ApiError as exc:
            outcome = "bad-request" if exc.status == 400 else "rejected"
            return self._error(ex, exc.status, exc.message, delay=delay), outcome
        reply = self._answer(ex, status, envelope(True, message, data), delay=delay)
        if status == 201 and ex.route.method == "POST" and ex.drop:
            return Reply(status, [], b"", "drop"), "dropped-after-order"
        return reply, "ok"

    def _fault(self, ex: _Exchange) -> tuple[Reply, str] | None:
        # Always draw every number, so changing one rate does not reshuffle the others.
        rng, faults = self._rng, self.faults
        reset, error, html, drop = rng.random(), rng.random(), rng.random(), rng.random()
        status = rng.choice((500, 502, 503))
        ex.drop = drop < faults.drop_after_order_rate
        if reset < faults.reset_rate:
            return Reply(0, [], b"", "reset"), "reset"
        if error < faults.error_rate:
            body = envelope(False, f"Upstream error ({status})")
            return self._plain(ex, status, "application/json", body), "fault-5xx"
        if html < faults.html_rate:
            return self._plain(ex, 200, "text/html; charset=utf-8", CAPTIVE_PORTAL), "html"
        return None

    def _dispatch(self, ex: _Exchange, order_id: str | None) -> tuple[int, str, Any]:
        assert ex.route is not None
        assert ex.record is not None
        route, account = ex.route, ex.record.account
        if route.template in READ_HANDLERS:
            page = READ_HANDLERS[route.template](Ctx(ex.params, ex.now, self.market))
            return 200, "Data fetched successfully", page.rows
        if route.template == "/key":
            return 200, "Key details", self._key_info(ex.record, ex.usage, ex.now)
        if route.method == "POST":
            idem = ex.request.headers.get("idempotency-key")
            order, replayed = self.book.create(account, ex.request.body, idem, ex.now)
            if replayed:
                ex.extra_headers.append(("idempotent-replayed", "true"))
                return 200, "Order already created for this Idempotency-Key", order.as_json()
            return 201, "Order created", order.as_json()
        if order_id is None:
            mine = [o.as_json() for o in self.book.orders.values() if o.account == account]
            return 200, "Orders", mine
        if route.method == "DELETE":
            return 200, "Order cancelled", self.book.cancel(account, order_id).as_json()
        return 200, "Order", self.book.get(account, order_id).as_json()

    def _key_info(
        self, record: KeyRecord, usage: Sequence[WindowUsage], now: float
    ) -> dict[str, Any]:
        def iso(moment: float | None) -> str | None:
            if moment is None:
                return None
            stamp = datetime.fromtimestamp(moment, tz=timezone.utc)
            return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")

        return {
            "fingerprint": record.fingerprint,
            "account": record.account,
            "scopes": list(record.scopes),
            "created_at": iso(record.created_at),
            "expires_at": iso(record.expires_at),
            "revoked_at": iso(record.valid_until),
            "usage": [
                {
                    "window": u.window.label,
                    "limit": u.window.limit,
                    "seconds": u.window.seconds,
                    "used": u.used,
                    "remaining": u.remaining,
                    "reset": round(u.reset, 3),
                    "reset_at": iso(now + u.reset),
                }
                for u in usage
            ],
        }

    # -- answers -------------------------------------------------------------------------

    def _error(self, ex: _Exchange, status: int, message: str, *, delay: float = 0.0) -> Reply:
        return self._answer(ex, status, envelope(False, message), delay=delay)

    def _answer(self, ex: _Exchange, status: int, body: bytes, *, delay: float = 0.0) -> Reply:
        headers = self._plain(ex, status, "application/json", body).headers
        headers += rate_headers(self.config, ex.usage, ex.now) + ex.extra_headers
        return Reply(status, headers, body, "respond", delay)

    def _plain(self, ex: _Exchange, status: int, content_type: str, body: bytes) -> Reply:
        headers = [("content-type", content_type), ("x-request-id", ex.request_id)]
        return Reply(status, headers, body, "respond", self.faults.latency if ex.admitted else 0.0)

    def _record(self, ex: _Exchange, reply: Reply, outcome: str) -> None:
        entry = LedgerEntry(
            time=ex.now,
            request_id=ex.request_id,
            fingerprint=fingerprint(ex.presented) if ex.presented else None,
            account=ex.record.account if ex.record else None,
            method=ex.request.method,
            path=ex.path,
            route=ex.route.template if ex.route else None,
            scope_required=ex.route.scope if ex.route else None,
            status=reply.status if reply.action == "respond" else None,
            outcome=outcome,
            admitted=ex.admitted,
            cost=ex.cost,
        )
        self.ledger.record(entry)
