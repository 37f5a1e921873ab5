"""What the provider emulations share (sans-I/O; the :class:`App` holds the lock).

An emulation reads its plan limits from the client's provider module (``coinguard.providers``),
so the numbers the client plans with and the numbers the server enforces are the same value.
Each account gets a rolling per-minute request window and calendar (UTC) day and month credit
meters; every answer becomes one ledger row with the credits it billed.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Protocol

from .._provider import HeaderKey, Plan
from .._secret import fingerprint
from ._accounts import KeyRecord, Keys, KeyStore
from ._config import Faults, SandboxConfig, Window
from ._data import Market, Token
from ._ledger import Ledger, LedgerEntry
from ._limits import AccountLimiter, Decision
from ._wire import Reply, Request

__all__ = [
    "CAPTIVE_PORTAL",
    "FIAT",
    "Call",
    "CreditMeter",
    "Emulation",
    "EmulatorBase",
    "Limits",
    "Outcome",
    "by_market_cap",
    "coin_id",
    "header_name",
    "int_param",
    "iso",
    "json_body",
    "ledger_entry",
    "limits_of_plan",
    "supply",
]

_DAY = 86_400.0
CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Wi-Fi Login</title></head><body>"
    b"<h1>Welcome to CoffeeNet</h1><p>Please accept the terms to continue browsing.</p>"
    b'<form method="post" action="/login"><button>Accept</button></form></body></html>'
)
_MONTH = Window.month(1)


@dataclass(frozen=True)
class Call:
    """One request as an emulation sees it: the server clock and the last value of each
    query parameter."""

    request: Request
    request_id: str
    now: float
    path: str
    params: dict[str, str]


@dataclass(frozen=True)
class Limits:
    """One emulated plan: its name as the provider reports it, requests per minute, and the
    credit caps of a UTC day and month (``None``: no cap)."""

    name: str
    per_minute: int
    monthly: int | None
    daily: int | None = None

    @property
    def minute_window(self) -> Window:
        """The rolling 60-second request window (the ledger checks it too)."""
        return Window(self.per_minute, 60.0, name="minute")


def limits_of_plan(name: str, plan: Plan, config: SandboxConfig) -> Limits:
    """The limits of a client-side :class:`coinguard.Plan`, with the config's overrides.

    >>> from coinguard.providers import coingecko
    >>> limits_of_plan("Demo", coingecko.PLANS["demo"], SandboxConfig(profile="coingecko"))
    Limits(name='Demo', per_minute=100, monthly=10000, daily=None)
    """
    windows = plan.quota.windows if plan.quota is not None else ()
    minute = next((w.limit for w in windows if w.seconds == 60.0), None)
    month = next((w.limit for w in windows if w.is_month), None)
    if minute is None:
        raise ValueError(f"plan {name!r} declares no per-minute limit to emulate")
    return Limits(name, minute, config.monthly_credits or month, config.daily_credits)


class CreditMeter:
    """Credits billed per calendar window (a UTC day or month), by account or by key.

    >>> meter = CreditMeter(month=True)
    >>> meter.add("acct", 3, 1_800_000_000.0)
    >>> meter.used("acct", 1_800_000_000.0), meter.used("acct", 1_900_000_000.0)
    (3, 0)
    """

    def __init__(self, *, month: bool) -> None:
        self._month = month
        self._used: dict[tuple[str, float], int] = {}

    def bucket(self, now: float) -> tuple[float, float]:
        """``[start, end)`` of the window holding ``now``."""
        if self._month:
            return _MONTH.bucket(now)
        start = math.floor(now / _DAY) * _DAY
        return start, start + _DAY

    def used(self, who: str, now: float) -> int:
        """Credits ``who`` was billed in the window holding ``now``."""
        return self._used.get((who, self.bucket(now)[0]), 0)

    def add(self, who: str, credits: int, now: float) -> None:
        """Bill ``credits`` to ``who`` at ``now``."""
        key = (who, self.bucket(now)[0])
        self._used[key] = self._used.get(key, 0) + credits


@dataclass
class Outcome:
    """What an emulation decided, for the ledger."""

    status: int
    outcome: str
    presented: str | None = None
    record: KeyRecord | None = None
    route: str | None = None
    admitted: bool = False
    credits: int = 0


class Emulation(Protocol):
    """A provider emulation as the :class:`App` drives it."""

    keys: Keys

    def handle(self, call: Call, faults: Faults, rng: random.Random) -> tuple[Reply, Outcome]:
        """Answer one call."""


def int_param(call: Call, name: str, default: int, low: int, high: int) -> int | None:
    """Query parameter ``name`` as an int in ``[low, high]``, ``default`` when absent, None when
    it is not one (each provider answers that its own way)."""
    raw = call.params.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if not (raw.isascii() and raw.isdecimal()) or not low <= int(raw) <= high:
        return None
    return int(raw)


def header_name(auth: object) -> str:
    """The lower-case header a client profile sends its key in (as the server reads it).

    >>> from coinguard.providers import coinmarketcap
    >>> header_name(coinmarketcap.PROFILE.auth)
    'x-cmc_pro_api_key'
    """
    if not isinstance(auth, HeaderKey):
        raise TypeError(f"the emulated provider sends its key in a header, not {auth!r}")
    return auth.name.lower()


def json_body(value: Any) -> bytes:
    """Compact JSON, as the providers send it."""
    return json.dumps(value, separators=(",", ":")).encode()


def iso(moment: float, *, millis: bool = True) -> str:
    """``2026-11-29T11:32:38.000Z`` (``millis=False``: no fraction)."""
    stamp = datetime.fromtimestamp(moment, tz=timezone.utc)
    text = stamp.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def ledger_entry(call: Call, reply: Reply, outcome: Outcome) -> LedgerEntry:
    """The ledger row of one answered call (a fingerprint, never the key)."""
    record = outcome.record
    return LedgerEntry(
        time=call.now,
        request_id=call.request_id,
        fingerprint=fingerprint(outcome.presented) if outcome.presented else None,
        account=record.account if record is not None else None,
        method=call.request.method,
        path=call.path,
        route=outcome.route,
        scope_required="read" if outcome.route is not None else None,
        status=reply.status if reply.action == "respond" else None,
        outcome=outcome.outcome,
        admitted=outcome.admitted,
        cost=1 if outcome.admitted else 0,
        credits=outcome.credits,
    )


class EmulatorBase:
    """Keys, per-account plans, the minute window and the credit meters of an emulation."""

    def __init__(self, config: SandboxConfig, store: KeyStore, ledger: Ledger, market: Market):
        self.config = config
        self.store = store
        self.ledger = ledger
        self.market = market
        self._plans: dict[str, Limits] = {}
        self._limiters: dict[str, AccountLimiter] = {}
        self.month = CreditMeter(month=True)
        self.day = CreditMeter(month=False)

    def provision(self, account: str, limits: Limits, tier: str, now: float) -> str:
        """Issue one key on ``account`` (``tier`` is kept as the key's only scope)."""
        self.enroll(account, limits)
        return self.store.issue((tier,), account, now).value

    def enroll(self, account: str, limits: Limits) -> None:
        """Give ``account`` the plan ``limits`` (and tell the ledger its minute window)."""
        self._plans[account] = limits
        self._limiters[account] = AccountLimiter((limits.minute_window,))
        self.ledger.declare(account, (limits.minute_window,))

    def default_limits(self, record: KeyRecord) -> Limits:
        """The plan of an account provisioned later (``Sandbox.issue_key``)."""
        raise NotImplementedError

    def limits(self, record: KeyRecord) -> Limits:
        """The plan of the key's account."""
        if record.account not in self._plans:
            self.enroll(record.account, self.default_limits(record))
        return self._plans[record.account]

    def take_request(self, record: KeyRecord, now: float) -> Decision:
        """Count one request in the account's minute window, if it has room."""
        self.limits(record)
        return self._limiters[record.account].take(1, now)

    def minute_used(self, record: KeyRecord, now: float) -> int:
        """Requests the account made in the last 60 seconds."""
        self.limits(record)
        return self._limiters[record.account].usage(now)[0].used

    def fault(
        self, faults: Faults, rng: random.Random, out: Outcome, error: Callable[[int], Reply]
    ) -> Reply | None:
        """The injected fault of an admitted call, if one is drawn (as the default profile:
        a reset, a 5xx in the provider's error shape, or a 200 captive-portal page); a faulted
        call bills nothing. Every number is always drawn, so one rate does not reshuffle the
        others."""
        reset, fail, html = rng.random(), rng.random(), rng.random()
        status = rng.choice((500, 502, 503))
        if reset < faults.reset_rate:
            out.status, out.outcome = 0, "reset"
            return Reply(0, [], b"", "reset")
        if fail < faults.error_rate:
            out.status, out.outcome = status, "fault-5xx"
            return error(status)
        if html < faults.html_rate:
            out.status, out.outcome = 200, "html"
            return Reply(200, [("content-type", "text/html; charset=utf-8")], CAPTIVE_PORTAL)
        return None

    def bill(self, record: KeyRecord, credits: int, now: float) -> None:
        """Bill ``credits`` to the account and to the key, for the day and the month."""
        for who in (record.account, record.fingerprint):
            self.month.add(who, credits, now)
            self.day.add(who, credits, now)


def coin_id(token: Token) -> str:
    """The token's CoinGecko id, from the client's own table (``BNB`` is ``binancecoin``);
    the name's slug for a token the table does not list."""
    from ..providers.coingecko import SYMBOLS

    slug: str = token.as_json()["slug"]
    return SYMBOLS.get(token.symbol, slug)


def supply(market: Market, token: Token) -> float:
    """A fixed circulating supply per token, derived from the seed."""
    rng = random.Random(f"{market.seed}:{token.symbol}:supply")
    # the universe is listed largest first: a cap (at the reference price) that shrinks with
    # the position keeps that order, from about 1.8 trillion USD for the first
    rank = market.tokens.index(token) + 1
    cap = 1.8e12 * rank**-1.6 * rng.uniform(0.9, 1.1)
    return float(round(cap / token.base_price))


def by_market_cap(market: Market, now: float) -> list[tuple[Token, float, float]]:
    """Every token with its price and market cap at ``now``, largest cap first."""
    rows = []
    for token in market.tokens:
        price = market.price(token, now)
        rows.append((token, price, price * supply(market, token)))
    rows.sort(key=lambda row: -row[2])
    return rows


#: USD to a few fiat currencies: fixed synthetic rates (the market is priced in USD).
FIAT: Mapping[str, float] = MappingProxyType(
    {"usd": 1.0, "eur": 0.92, "gbp": 0.79, "jpy": 150.0, "chf": 0.88}
)
