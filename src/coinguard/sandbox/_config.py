"""Policy values of the sandbox: rate windows, faults and the server configuration."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Literal

from .._origin import is_loopback

__all__ = ["PROFILES", "Faults", "ManualClock", "Profile", "SandboxConfig", "Window", "parse_limit"]

HeaderStyle = Literal["ietf", "legacy", "none"]
LegacyReset = Literal["delta", "epoch", "epoch-ms", "http-date"]
RetryAfterForm = Literal["seconds", "http-date"]
AuthMode = Literal["header", "query"]
Profile = Literal["tokenmetrics", "coingecko", "coinmarketcap", "binance", "kraken", "coinbase"]
PROFILES: tuple[str, ...] = (
    "tokenmetrics",
    "coingecko",
    "coinmarketcap",
    "binance",
    "kraken",
    "coinbase",
)

_MONTH_NOMINAL_SECONDS = 30 * 86_400.0


@dataclass(frozen=True)
class Window:
    """One rate-limit window: at most ``limit`` cost units per ``seconds``.

    Rolling by default (a sliding log: the costs of admitted requests that arrived in
    ``(now - seconds, now]``). ``calendar=True`` aligns windows to multiples of ``seconds``
    since the epoch (a clock-aligned minute); :meth:`month` is a calendar UTC month.

    >>> Window(50, 1.0).name
    'w1'
    >>> Window(1000, 60.0, calendar=True).name
    'c60'
    """

    limit: int
    seconds: float
    name: str | None = None
    calendar: bool = False
    by_month: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"Window limit must be >= 1, got {self.limit}")
        if not self.seconds > 0:
            raise ValueError(f"Window seconds must be > 0, got {self.seconds}")
        if self.by_month and not self.calendar:
            raise ValueError("a month window is always a calendar window")
        if self.name is None:
            prefix = "c" if self.calendar else "w"
            label = "month" if self.by_month else f"{prefix}{self.seconds:g}"
            object.__setattr__(self, "name", label)

    @classmethod
    def month(cls, limit: int, name: str = "month") -> Window:
        """A calendar UTC month window (its nominal ``seconds`` is 30 days).

        >>> Window.month(10_000).name
        'month'
        """
        return cls(limit, _MONTH_NOMINAL_SECONDS, name, calendar=True, by_month=True)

    @property
    def label(self) -> str:
        """The window name (always set after construction)."""
        return self.name or ""

    @property
    def policy_seconds(self) -> int:
        """The window length as the integer ``w`` of a ``RateLimit-Policy`` header."""
        return math.ceil(self.seconds)

    def bucket(self, now: float) -> tuple[float, float]:
        """Return ``[start, end)`` of the calendar window holding ``now``."""
        if self.by_month:
            moment = datetime.fromtimestamp(now, tz=timezone.utc)
            first = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
            year, month = divmod(moment.year * 12 + moment.month, 12)  # the next month
            after = datetime(year, month + 1, 1, tzinfo=timezone.utc)
            return first.timestamp(), after.timestamp()
        start = math.floor(now / self.seconds) * self.seconds
        return start, start + self.seconds


@dataclass(frozen=True)
class Faults:
    """Faults the server injects into admitted requests; every rate is in ``[0, 1]``.

    Draws come from a RNG seeded with ``seed`` (the config seed when ``None``), so a run
    with the same request order is reproducible. ``cloudflare_429_rate`` is the share of the
    CoinGecko emulation's 429 answers sent as a Cloudflare-style HTML page instead of JSON.

    >>> Faults(error_rate=0.2, reset_rate=0.1).latency
    0.0
    """

    error_rate: float = 0.0
    latency: float = 0.0
    #: Seconds between a request's arrival and its stamp, uniform in ``[low, high]`` per
    #: request: the network between client and server, so calls are stamped late and may be
    #: stamped out of order.
    arrival_jitter: tuple[float, float] = (0.0, 0.0)
    reset_rate: float = 0.0
    html_rate: float = 0.0
    drop_after_order_rate: float = 0.0
    seed: int | None = None
    cloudflare_429_rate: float = 0.0
    #: Binance emulation: a new order answers -2013 "does not exist" to lookups for this long.
    invisible_seconds: float = 0.0
    #: Binance emulation: the share of orders executed and then answered only after
    #: ``stall_seconds`` (a client's read timeout fires first).
    timeout_after_order_rate: float = 0.0
    stall_seconds: float = 60.0
    #: Coinbase emulation: the share of over-limit answers sent as 401 Unauthorized instead
    #: of 429, as Coinbase has been seen to throttle.
    throttle_as_401_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "error_rate",
            "reset_rate",
            "html_rate",
            "drop_after_order_rate",
            "cloudflare_429_rate",
            "timeout_after_order_rate",
            "throttle_as_401_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be in [0, 1], got {value}")
        if self.latency < 0:
            raise ValueError(f"Faults.latency must be >= 0, got {self.latency}")
        if self.stall_seconds < 0:
            raise ValueError(f"Faults.stall_seconds must be >= 0, got {self.stall_seconds}")
        if self.invisible_seconds < 0:
            raise ValueError(f"Faults.invisible_seconds must be >= 0, got {self.invisible_seconds}")
        low, high = self.arrival_jitter
        if not 0.0 <= low <= high:
            raise ValueError(f"Faults.arrival_jitter must be 0 <= low <= high, got {low}, {high}")


def _default_windows() -> tuple[Window, ...]:
    return (Window(50, 1.0), Window(1000, 60.0))


def _default_costs() -> Mapping[str, int]:
    return MappingProxyType({"/daily-ohlcv": 2, "/hourly-ohlcv": 2})


def _default_ages() -> Mapping[str, float]:
    return MappingProxyType({"read": 30.0, "trade": 10.0, "overprivileged": 200.0})


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox server does, as one immutable value.

    ``profile`` picks the API served: ``"tokenmetrics"`` (the default: the Token-Metrics-style
    API under ``/v2`` with scoped keys, ``windows`` and ``costs``), or an emulation of
    ``"coingecko"`` or ``"coinmarketcap"`` whose limits come from the client's plan tables
    (``coinguard.providers``): ``plan`` names the plan of the Pro (CoinGecko) or only
    (CoinMarketCap) key, ``monthly_credits`` and ``daily_credits`` override the plan's credit
    caps. ``windows``, ``costs`` and ``header_style`` apply to the default profile only.
    ``"binance"`` emulates Binance spot (signed requests, weights, bans, orders); its
    REQUEST_WEIGHT per minute is ``weight_limit`` (Binance's 6000 when None), its ORDERS per
    10 seconds ``orders_per_10s`` (Binance's 50 when None), each SAPI endpoint's limit per
    minute ``sapi_limit`` (Binance's 12,000 for an IP-limited endpoint and 180,000 for a
    UID-limited one when None), its RAW_REQUESTS per clock-aligned 5 minutes ``raw_limit``
    (Binance's 300,000 when None), and its clock is
    ``clock``: pass one ahead of or behind the client's to inject a skew. ``"kraken"``
    emulates Kraken spot (signed private calls, nonces, the decaying REST counter, lockouts,
    orders); ``weight_limit`` is then the counter's maximum (the Starter tier's 15 when None)
    and ``nonce_window`` how far below its last nonce a key still accepts an unseen one (0:
    none, Kraken's default); ``trading_limit`` and ``trading_decay`` set the trading counter
    of each pair (the Starter tier's 60 and 1/s when None). ``"coinbase"`` emulates Coinbase
    Advanced Trade (a JWT per request, rate headers, orders failing with HTTP 200, client
    order ids, key permissions; it needs the ``signing`` extra); ``weight_limit`` is then its
    requests per second per key (the client profile's 30 when None).

    >>> cfg = SandboxConfig(windows=(Window(5, 1.0),), header_style="legacy")
    >>> cfg.host, cfg.port, cfg.auth
    ('127.0.0.1', 0, 'header')
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 7
    auth: AuthMode = "header"
    windows: tuple[Window, ...] = field(default_factory=_default_windows)
    costs: Mapping[str, int] = field(default_factory=_default_costs)
    header_style: HeaderStyle = "ietf"
    legacy_reset: LegacyReset = "delta"
    retry_after: RetryAfterForm = "seconds"
    faults: Faults = field(default_factory=Faults)
    max_body: int = 64_000
    clock: Callable[[], float] = time.time
    key_age_days: Mapping[str, float] = field(default_factory=_default_ages)
    key_ttl_days: float | None = 365.0
    allow_remote: bool = False
    profile: Profile = "tokenmetrics"
    plan: str | None = None
    monthly_credits: int | None = None
    daily_credits: int | None = None
    weight_limit: int | None = None
    orders_per_10s: int | None = None
    sapi_limit: int | None = None
    raw_limit: int | None = None
    nonce_window: int = 0
    counter_decay: float | None = None
    trading_limit: int | None = None
    trading_decay: float | None = None

    def __post_init__(self) -> None:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"SandboxConfig.host {self.host!r} is not a loopback address: the sandbox holds "
                "keys; pass allow_remote=True to expose it on the network on purpose"
            )
        for name, allowed in (
            ("auth", ("header", "query")),
            ("header_style", ("ietf", "legacy", "none")),
            ("legacy_reset", ("delta", "epoch", "epoch-ms", "http-date")),
            ("retry_after", ("seconds", "http-date")),
            ("profile", PROFILES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"SandboxConfig.{name} must be one of {allowed}")
        names = [w.label for w in self.windows]
        if len(set(names)) != len(names):
            raise ValueError(f"window names must be unique, got {names}")
        limits = ("monthly_credits", "daily_credits", "weight_limit", "orders_per_10s")
        for name in (*limits, "sapi_limit", "raw_limit", "trading_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"SandboxConfig.{name} must be >= 1, got {value}")
        for name in ("counter_decay", "trading_decay"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"SandboxConfig.{name} must be > 0, got {value}")
        if self.plan is not None and self.profile == "tokenmetrics":
            raise ValueError(
                "SandboxConfig.plan applies to the coingecko and coinmarketcap profiles"
            )
        if any(cost < 0 for cost in self.costs.values()):
            raise ValueError("endpoint costs must be >= 0")
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "costs", MappingProxyType(dict(self.costs)))
        object.__setattr__(self, "key_age_days", MappingProxyType(dict(self.key_age_days)))

    def cost_of(self, route: str) -> int:
        """Cost units one request to ``route`` (a path template under ``/v2``) takes."""
        return self.costs.get(route, 1)


class ManualClock:
    """A wall clock that only moves when told to; pass it as ``SandboxConfig(clock=...)``.

    >>> clock = ManualClock(1_700_000_000.0)
    >>> clock.advance(1.5)
    >>> clock()
    1700000001.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        """Jump to the absolute time ``now`` (seconds since the epoch)."""
        with self._lock:
            self._now = now


_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86_400.0,
    "day": 86_400.0,
}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_limit(text: str) -> Window:
    """Parse ``"20/s"``, ``"600/min"``, ``"5/10s"`` or ``"10000/month"`` into a :class:`Window`.

    >>> parse_limit("600/min")
    Window(limit=600, seconds=60.0, name='w60', calendar=False, by_month=False)
    """
    match = _LIMIT_RE.match(text.lower())
    if not match:
        raise ValueError(f"bad limit {text!r}: expected N/unit, e.g. 20/s or 600/min")
    limit, multiplier, unit = int(match[1]), match[2], match[3].rstrip("s") or "s"
    if unit == "month":
        return Window.month(limit)
    if unit not in _UNITS:
        raise ValueError(f"bad limit {text!r}: unknown unit {match[3]!r}")
    return Window(limit, float(multiplier or 1) * _UNITS[unit])
