"""What the server says about our quota: pure parsers for rate-limit headers and bodies.

Every parser ignores what it cannot read. A malformed header is never an error: the server's
word is advisory, our own count is the guard.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import http_sf

__all__ = [
    "MAX_RETRY_AFTER",
    "ServerQuota",
    "ServerWindow",
    "parse_reset",
    "parse_retry_after",
    "parse_server_quota",
    "retry_after",
]

_MAX_SECONDS = 400 * 86400.0  # longer than any real window: a reset above it is garbage
#: The longest Retry-After coinguard will wait out (or hold the penalty box for). A longer one
#: is still reported as asked: the caller is told at once rather than retried early.
MAX_RETRY_AFTER = 7 * 86400.0
_MAX_COUNT = 10**12
# weight used (per IP), orders placed (per account), a SAPI endpoint's weight used (per IP or
# UID): each quota takes the windows of its shape, and only a SAPI limiter is shown SAPI headers
_BINANCE = re.compile(
    r"x-(?:mbx-(?:used-weight|order-count)|sapi-used-(?:ip|uid)-weight)-(\d+)([smhd])$"
)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class ServerWindow:
    """One window as the server reports it; any field may be unknown (None).

    ``seconds`` is the window length, ``reset`` the seconds until it has room again, ``used``
    the cost counted so far (Binance reports only that).
    """

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset: float | None = None
    seconds: float | None = None
    name: str | None = None


@dataclass(frozen=True)
class ServerQuota:
    """Everything one response said about the quota.

    >>> headers = {"RateLimit-Policy": '"min";q=50;w=60', "RateLimit": '"min";r=12;t=30'}
    >>> q = parse_server_quota(headers, now=0)
    >>> q.windows[0]
    ServerWindow(limit=50, remaining=12, used=None, reset=30.0, seconds=60.0, name='min')
    """

    windows: tuple[ServerWindow, ...] = ()
    retry_after: float | None = None
    cost: int | None = None


def _count(value: object) -> int | None:
    """A non-negative integer count, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        # isdigit() is true for "²", which int() refuses: ASCII digits only
        if not (value.isascii() and value.isdecimal()):
            return None
        value = int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _seconds(value: object) -> float | None:
    """A non-negative, finite, plausible number of seconds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float, Decimal)):
        x = float(value)
        if math.isfinite(x) and 0 <= x <= _MAX_SECONDS:
            return x
    return None


def _delay(value: object) -> float | None:
    """A non-negative finite number of seconds, however long: the server asked for it."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x >= 0 else None


def _http_date(value: str, now: float, *, bounded: bool = True) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = max(0.0, when.timestamp() - now)
    return _seconds(delta) if bounded else _delay(delta)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds or an HTTP date.

    No upper bound: a server asking for longer than :data:`MAX_RETRY_AFTER` means "not soon",
    and the caller must hear that rather than retry early.

    >>> parse_retry_after("120", now=0), parse_retry_after("soon", now=0)
    (120.0, None)
    """
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return _delay(value)
    return _http_date(value, now, bounded=False)


def _lowered(headers: Mapping[str, str]) -> dict[str, str] | None:
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except (AttributeError, TypeError, ValueError):
        return None


def _retry_after(lower: Mapping[str, str], now: float) -> float | None:
    ms = _delay(lower.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    return parse_retry_after(lower.get("retry-after"), now=now)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait per ``retry-after-ms`` or ``Retry-After``; None if absent or garbage.

    ``now`` is the wall-clock time (epoch seconds) used for HTTP dates.

    >>> retry_after({"Retry-After": "3"}, now=0.0), retry_after({"retry-after-ms": "250"}, now=0.0)
    (3.0, 0.25)
    """
    lower = _lowered(headers)
    return None if lower is None else _retry_after(lower, now)


def parse_reset(value: str | None, *, now: float) -> float | None:
    """Seconds until reset from a legacy ``X-RateLimit-Reset``, whatever its convention.

    Told apart by magnitude: below 10**9 it is a delta, below 10**11 epoch seconds, above
    that epoch milliseconds; anything else is tried as an HTTP date.

    >>> parse_reset("30", now=1_700_000_000), parse_reset("1700000060", now=1_700_000_000)
    (30.0, 60.0)
    """
    if value is None:
        return None
    value = value.strip()
    try:
        x = float(value)
    except ValueError:
        return _http_date(value, now)
    if not math.isfinite(x) or x < 0:
        return None
    if x < 1e9:
        return _seconds(x)
    epoch = x if x < 1e11 else x / 1000.0
    return _seconds(max(0.0, epoch - now))


def _sf_list(value: str | None) -> list[tuple[str, dict[str, Any]]]:
    if not value:
        return []
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="list")
    except (ValueError, UnicodeError, TypeError, IndexError, KeyError):
        return []
    out = []
    for member in parsed if isinstance(parsed, list) else []:
        if isinstance(member, tuple) and len(member) == 2 and isinstance(member[1], dict):
            item, params = member
            if isinstance(item, (str, bytes)) and not isinstance(item, list):
                out.append((str(item), params))
    return out


def _ietf(headers: Mapping[str, str]) -> list[ServerWindow]:
    policies = {name: p for name, p in _sf_list(headers.get("ratelimit-policy"))}
    windows = []
    for name, params in _sf_list(headers.get("ratelimit")):
        policy = policies.pop(name, {})
        window = ServerWindow(
            limit=_count(policy.get("q")),
            remaining=_count(params.get("r")),
            reset=_seconds(params.get("t")),
            seconds=_positive(_seconds(policy.get("w"))),
            name=name,
        )
        if window.remaining is not None:
            windows.append(window)
    return windows


def _positive(x: float | None) -> float | None:
    return x if x else None


def _legacy(headers: Mapping[str, str], now: float) -> list[ServerWindow]:
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining = _count(headers.get(prefix + "remaining"))
        if remaining is not None:
            limit = _count(headers.get(prefix + "limit"))
            reset = parse_reset(headers.get(prefix + "reset"), now=now)
            return [ServerWindow(limit=limit, remaining=remaining, reset=reset, name=prefix[:-1])]
    return []


def _binance(headers: Mapping[str, str]) -> list[ServerWindow]:
    out = []
    for name, value in headers.items():
        match = _BINANCE.match(name)
        used = _count(value) if match else None
        if match and used is not None:
            seconds = int(match.group(1)) * _UNIT[match.group(2)]
            if 0 < seconds <= _MAX_SECONDS:
                out.append(ServerWindow(used=used, seconds=seconds, name=name))
    return out


def _credit_count(body: object) -> int | None:
    status = body.get("status") if isinstance(body, Mapping) else None
    return _count(status.get("credit_count")) if isinstance(status, Mapping) else None


def parse_server_quota(
    headers: Mapping[str, str], body: object = None, *, now: float
) -> ServerQuota:
    """Read every quota signal we know from one response.

    IETF ``RateLimit-Policy``/``RateLimit`` (structured fields), legacy
    ``X-RateLimit-Limit/-Remaining/-Reset``, ``Retry-After`` and ``retry-after-ms``, Binance
    ``X-MBX-USED-WEIGHT-<n><unit>``, ``X-MBX-ORDER-COUNT-<n><unit>`` and
    ``X-SAPI-USED-IP-WEIGHT-<n><unit>``/``X-SAPI-USED-UID-WEIGHT-<n><unit>``, CoinMarketCap
    ``status.credit_count`` in the body.
    ``now`` (epoch seconds) turns dates into delays.
    """
    cost = _credit_count(body)
    # Most responses carry none of these; this runs on every response, so look at the names
    # before copying anything.
    if cost is None:
        try:
            if not any(str(k).lower().startswith(_SIGNALS) for k in headers):
                return _NOTHING
        except (AttributeError, TypeError, ValueError):
            return _NOTHING
    lower = _lowered(headers)
    if lower is None:
        return _NOTHING
    retry = _retry_after(lower, now)
    windows = _ietf(lower) + _legacy(lower, now) + _binance(lower)
    return ServerQuota(tuple(windows), retry, cost)


_SIGNALS = (
    "ratelimit",
    "x-ratelimit",
    "retry-after",
    "x-mbx-used-weight",
    "x-mbx-order-count",
    "x-sapi-used-",
)
_NOTHING = ServerQuota()
