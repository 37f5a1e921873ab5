"""The CoinGecko emulation: the Demo root and the Pro root on one server.

Demo answers under ``/api/v3`` (``x-cg-demo-api-key``), Pro under ``/pro/api/v3``
(``x-cg-pro-api-key``); the query forms ``x_cg_demo_api_key`` / ``x_cg_pro_api_key`` work too.
Keys are ``CG-`` prefixed on both tiers, so only the root tells them apart: a Pro key on the
Demo root answers HTTP 401 error 10010, a Demo key on the Pro root HTTP 400 error 10011. The
header names, codes and plan limits come from :mod:`coinguard.providers.coingecko`.

Checks run in this order: root and route (404) -> key (401: 10002 missing, invalid) -> key
tier against the root (10010 / 10011) -> route on this tier (10005: ``/key`` is Pro only) ->
the account's rolling minute window (429 with ``retry-after``; as Cloudflare HTML when the
``cloudflare_429_rate`` fault draws it) -> the month's credits (429) -> the handler (400 with
``{"error": "..."}``). Only HTTP 200 answers spend a credit (CoinGecko: "each successful
request (HTTP 200) deducts 1 credit"); ``GET /key`` is free here (its cost is not documented).
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..providers import coingecko
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig
from ._data import Market, Token
from ._emulation import (
    FIAT,
    Call,
    EmulatorBase,
    Limits,
    Outcome,
    by_market_cap,
    coin_id,
    header_name,
    int_param,
    iso,
    json_body,
    limits_of_plan,
    supply,
)
from ._ledger import Ledger
from ._wire import Reply

__all__ = ["DEMO_ROOT", "MESSAGES", "PRO_ROOT", "CoinGecko"]

DEMO_ROOT = "/api/v3"
PRO_ROOT = "/pro/api/v3"

_DEMO_HEADER = header_name(coingecko.PROFILE.auth)
_PRO_HEADER = header_name(coingecko.PRO.auth)
RATE_LIMIT = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)
#: The provider's own error codes this emulation answers, with HTTP status and message.
MESSAGES: Mapping[str, tuple[int, str]] = {
    "10002": (401, "API Key Missing"),
    "10005": (
        401,
        "You may not have access to this endpoint. Please contact sales@coingecko.com or "
        "upgrade your plan.",
    ),
    "10010": (
        401,
        "If you are using Pro API key, please change your root URL from api.coingecko.com to "
        "pro-api.coingecko.com",
    ),
    "10011": (
        400,
        "If you are using Demo API key, please change your root URL from pro-api.coingecko.com "
        "to api.coingecko.com",
    ),
}
_CLOUDFLARE_429 = (
    b"<!DOCTYPE html><html><head><title>429 Too Many Requests | api.coingecko.com | "
    b"Cloudflare</title></head><body><h1>Error 1015</h1><p>You are being rate limited</p>"
    b"<p>Cloudflare Ray ID: 7f00000000000000</p></body></html>"
)
_CURRENCIES = ("usd", "eur", "gbp", "jpy", "chf", "btc", "eth")


class ApiError(Exception):
    """A 4xx answer in CoinGecko's flat shape, ``{"error": "..."}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _new_key() -> str:
    return "CG-" + secrets.token_urlsafe(18)


def store() -> KeyStore:
    """A key store issuing ``CG-`` keys."""
    return KeyStore(None, _new_key)


class CoinGecko(EmulatorBase):
    """Demo and Pro roots, one Demo and one Pro key provisioned at start."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        super().__init__(config, store, ledger, market)
        plan = (config.plan or coingecko.PRO.plan or "basic").lower()
        if plan not in coingecko.PRO.plans:
            known = ", ".join(sorted(coingecko.PRO.plans))
            raise ValueError(f"CoinGecko has no Pro plan {plan!r}; its Pro plans: {known}")
        self.demo_limits = limits_of_plan("Demo", coingecko.PLANS["demo"], config)
        self.pro_limits = limits_of_plan(plan.title(), coingecko.PLANS[plan], config)
        now = config.clock()
        demo = self.provision("cg-demo", self.demo_limits, "demo", now)
        pro = self.provision("cg-pro", self.pro_limits, "pro", now)
        self.keys = Keys(read=demo, pro=pro)

    def default_limits(self, record: KeyRecord) -> Limits:
        """A later key is Pro when issued with the scope ``"pro"``, Demo otherwise."""
        return self.pro_limits if "pro" in record.scopes else self.demo_limits

    # -- one call ------------------------------------------------------------------------

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call, in the order the module docstring gives."""
        html_draw = rng.random()  # always drawn, so the sequence does not depend on the path
        tier, sub = _split(call.path)
        handler = _ROUTES.get(_template(sub)) if sub is not None else None
        if tier is None or sub is None or handler is None:
            return _flat(404, "Not Found"), Outcome(404, "not-found")
        route = _template(sub)
        presented = self._presented(call)
        out = Outcome(0, "", presented, route=route)
        if not presented:
            return self._coded(out, "10002", nested=True), out
        record = self.store.lookup(presented, call.now)
        if record is None:
            out.status, out.outcome = 401, "unauthorized"
            return _status(401, 401, "Invalid API Key"), out
        out.record = record
        key_tier = "pro" if "pro" in record.scopes else "demo"
        if key_tier != tier:
            return self._coded(out, "10010" if key_tier == "pro" else "10011"), out
        if route == "/key" and tier != "pro":
            return self._coded(out, "10005"), out
        html = html_draw < faults.cloudflare_429_rate
        return self._admit(call, out, record, handler, html, faults, rng)

    def _admit(
        self,
        call: Call,
        out: Outcome,
        record: KeyRecord,
        handler: Callable[[CoinGecko, Call, KeyRecord], Any],
        html: bool,
        faults: Faults,
        rng: random.Random,
    ) -> tuple[Reply, Outcome]:
        limits = self.limits(record)
        decision = self.take_request(record, call.now)
        if not decision.admitted:
            out.status, out.outcome = 429, "limited"
            return _rate_limited(decision.retry_after, html), out
        out.admitted = True
        faulted = self.fault(
            faults, rng, out, lambda status: _flat(status, "Internal Server Error")
        )
        if faulted is not None:
            return faulted, out
        free = out.route == "/key"
        spent = self.month.used(record.account, call.now)
        if not free and limits.monthly is not None and spent >= limits.monthly:
            out.status, out.outcome = 429, "month-limit"
            wait = self.month.bucket(call.now)[1] - call.now
            message = "You've used all the monthly API credits of your plan."
            return _status(429, 429, message, [("retry-after", str(math.ceil(wait)))]), out
        try:
            data = handler(self, call, record)
        except ApiError as exc:
            out.status, out.outcome = exc.status, "bad-request"
            return _flat(exc.status, exc.message), out
        if not free:
            self.bill(record, 1, call.now)
            out.credits = 1
        out.status, out.outcome = 200, "ok"
        return Reply(200, [("content-type", "application/json")], json_body(data)), out

    def _presented(self, call: Call) -> str | None:
        headers = call.request.headers
        # the query forms are read and dropped, so no handler ever sees (or echoes) them
        queried = [
            call.params.pop(name, None) for name in ("x_cg_demo_api_key", "x_cg_pro_api_key")
        ]
        found = [headers.get(_DEMO_HEADER), headers.get(_PRO_HEADER), *queried]
        return next((value for value in found if value), None)

    def _coded(self, out: Outcome, code: str, *, nested: bool = False) -> Reply:
        status, message = MESSAGES[code]
        out.status, out.outcome = status, f"error-{code}"
        reply = _status(status, int(code), message)
        if nested:  # CoinGecko nests some 401 bodies under "error"
            body = json_body(
                {"error": {"status": {"error_code": int(code), "error_message": message}}}
            )
            return Reply(status, reply.headers, body)
        return reply

    # -- usage route ---------------------------------------------------------------------

    def key_usage(self, call: Call, record: KeyRecord) -> dict[str, Any]:
        """``GET /key``: the plan, its minute limit and the month's credits, from our counters."""
        limits = self.limits(record)
        monthly = limits.monthly or 0
        used = self.month.used(record.account, call.now)
        return {
            "plan": limits.name,
            "rate_limit_request_per_minute": limits.per_minute,
            "monthly_call_credit": monthly,
            "current_total_monthly_calls": used,
            "current_remaining_monthly_calls": max(0, monthly - used),
            "api_key_rate_limit_request_per_minute": limits.per_minute,
            "api_key_monthly_call_credit": monthly,
            "api_key_current_total_monthly_calls": self.month.used(record.fingerprint, call.now),
        }


# -- answers ---------------------------------------------------------------------------------


def _flat(status: int, message: str) -> Reply:
    return Reply(status, [("content-type", "application/json")], json_body({"error": message}))


def _status(
    status: int, code: int, message: str, extra: list[tuple[str, str]] | None = None
) -> Reply:
    body = json_body({"status": {"error_code": code, "error_message": message}})
    return Reply(status, [("content-type", "application/json"), *(extra or [])], body)


def _rate_limited(wait: float, html: bool) -> Reply:
    after = [("retry-after", str(max(1, math.ceil(round(wait, 6)))))] if math.isfinite(wait) else []
    if html:
        headers = [
            ("content-type", "text/html; charset=UTF-8"),
            ("cf-ray", "7f00000000000000"),
            *after,
        ]
        return Reply(429, headers, _CLOUDFLARE_429)
    return _status(429, 429, RATE_LIMIT, after)


# -- routes ----------------------------------------------------------------------------------


def _split(path: str) -> tuple[str | None, str | None]:
    for tier, root in (("pro", PRO_ROOT), ("demo", DEMO_ROOT)):
        if path.startswith(root + "/"):
            return tier, path[len(root) :]
    return None, None


def _template(sub: str) -> str:
    parts = sub.split("/")
    if len(parts) == 4 and parts[1] == "coins" and parts[3] in ("ohlc", "market_chart"):
        return f"/coins/{{id}}/{parts[3]}"
    return sub


def _tokens(market: Market) -> dict[str, Token]:
    return {coin_id(t): t for t in market.tokens}


def _convert(market: Market, usd: float, currency: str, now: float) -> float | None:
    if currency in ("btc", "eth"):
        base = market.by_symbol[currency.upper()]
        return usd / market.price(base, now)
    rate = FIAT.get(currency)
    return None if rate is None else usd * rate


def _round(value: float) -> float:
    return float(f"{value:.8g}")


def _required(call: Call, name: str) -> str:
    value = call.params.get(name, "").strip()
    if not value:
        raise ApiError(400, f"Missing parameter {name}")
    return value


def _int(call: Call, name: str, default: int, low: int, high: int) -> int:
    value = int_param(call, name, default, low, high)
    if value is None:
        raise ApiError(400, f"Invalid value for {name}: expected {low}..{high}")
    return value


def _ping(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    return {"gecko_says": "(V3) To the Moon!"}


def _simple_price(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    ids = [i.strip().lower() for i in _required(call, "ids").split(",") if i.strip()]
    currencies = [c.strip().lower() for c in _required(call, "vs_currencies").split(",")]
    known, market = _tokens(emu.market), emu.market
    out: dict[str, dict[str, float]] = {}
    for name in ids:
        token = known.get(name)
        if token is None:  # CoinGecko leaves unknown ids out
            continue
        usd = market.price(token, call.now)
        prices = {c: _convert(market, usd, c, call.now) for c in currencies}
        out[name] = {c: _round(v) for c, v in prices.items() if v is not None}
    return out


def _markets(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    currency = _required(call, "vs_currency").lower()
    if currency not in _CURRENCIES:
        raise ApiError(400, "invalid vs_currency")
    per_page = _int(call, "per_page", 100, 1, 250)
    page = _int(call, "page", 1, 1, 10_000)
    rows = by_market_cap(emu.market, call.now)[(page - 1) * per_page : page * per_page]
    start = (page - 1) * per_page
    stamp = iso(call.now)
    out = []
    for rank, (token, usd, cap) in enumerate(rows, start=start + 1):
        day = emu.market.daily(token, datetime.fromtimestamp(call.now, tz=timezone.utc).date())
        price = _convert(emu.market, usd, currency, call.now) or 0.0
        scale = price / usd if usd else 0.0
        out.append(
            {
                "id": coin_id(token),
                "symbol": token.symbol.lower(),
                "name": token.name,
                "current_price": _round(price),
                "market_cap": round(cap * scale),
                "market_cap_rank": rank,
                "total_volume": round(day.volume * scale),
                "high_24h": _round(day.high * scale),
                "low_24h": _round(day.low * scale),
                "circulating_supply": supply(emu.market, token),
                "last_updated": stamp,
            }
        )
    return out


def _ohlc(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    """Hourly candles for ``days`` <= 2, daily candles beyond (CoinGecko coarsens too)."""
    token = _tokens(emu.market).get(call.path.rsplit("/", 2)[-2])
    if token is None:
        raise ApiError(404, "coin not found")
    currency = _required(call, "vs_currency").lower()
    rate = FIAT.get(currency)
    if rate is None:
        raise ApiError(400, "invalid vs_currency")
    days = _int(call, "days", 1, 1, 365)
    return _candles(emu.market, token, days, call.now, rate)


def _candles(market: Market, token: Token, days: int, now: float, rate: float) -> list[Any]:
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    span = [today - timedelta(days=i) for i in range(days, -1, -1)]
    if days <= 2:
        candles = [c for d in span for c in market.hourly(token, d)]
        horizon = now - days * 86_400
    else:
        candles = [market.daily(token, d) for d in span]
        horizon = now - (days + 1) * 86_400
    return [
        [
            int(c.start.timestamp() * 1000),
            *(_round(x * rate) for x in (c.open, c.high, c.low, c.close)),
        ]
        for c in candles
        if horizon <= c.start.timestamp() <= now
    ]


def _market_chart(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    """Hourly points up to 90 days, daily beyond (CoinGecko's automatic granularity)."""
    token = _tokens(emu.market).get(call.path.rsplit("/", 2)[-2])
    if token is None:
        raise ApiError(404, "coin not found")
    rate = FIAT.get(_required(call, "vs_currency").lower())
    if rate is None:
        raise ApiError(400, "invalid vs_currency")
    days = _int(call, "days", 1, 1, 365)
    today = datetime.fromtimestamp(call.now, tz=timezone.utc).date()
    span = [today - timedelta(days=i) for i in range(days, -1, -1)]
    market, units = emu.market, supply(emu.market, token)
    if days <= 90:
        candles = [c for d in span for c in market.hourly(token, d)]
    else:
        candles = [market.daily(token, d) for d in span]
    points = [c for c in candles if call.now - days * 86_400 <= c.start.timestamp() <= call.now]
    stamps = [int(c.start.timestamp() * 1000) for c in points]
    return {
        "prices": [[t, _round(c.close * rate)] for t, c in zip(stamps, points, strict=True)],
        "market_caps": [
            [t, round(c.close * rate * units)] for t, c in zip(stamps, points, strict=True)
        ],
        "total_volumes": [[t, round(c.volume * rate)] for t, c in zip(stamps, points, strict=True)],
    }


def _key(emu: CoinGecko, call: Call, record: KeyRecord) -> Any:
    return emu.key_usage(call, record)


_ROUTES: Mapping[str, Callable[[CoinGecko, Call, KeyRecord], Any]] = {
    "/ping": _ping,
    "/simple/price": _simple_price,
    "/coins/markets": _markets,
    "/coins/{id}/ohlc": _ohlc,
    "/coins/{id}/market_chart": _market_chart,
    "/key": _key,
}
