"""Rate-limit and Retry-After headers in the configured style (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import http_sf

from ._config import SandboxConfig, Window
from ._limits import WindowUsage

__all__ = ["rate_headers", "retry_after_header"]


def _ceil(seconds: float) -> int:
    # Round first so float noise (0.30000000000000004) does not add a whole second.
    return max(0, math.ceil(round(seconds, 6)))


def _http_date(moment: float) -> str:
    return format_datetime(datetime.fromtimestamp(moment, tz=timezone.utc), usegmt=True)


def rate_headers(
    config: SandboxConfig, usage: Sequence[WindowUsage], now: float
) -> list[tuple[str, str]]:
    """The rate-limit headers for ``usage`` in ``config.header_style``.

    >>> from coinguard.sandbox import SandboxConfig, Window
    >>> from coinguard.sandbox._limits import WindowUsage
    >>> w = Window(5, 1.0)
    >>> rate_headers(SandboxConfig(windows=(w,)), [WindowUsage(w, 2, 3, 0.4)], 0.0)
    [('ratelimit-policy', '"w1";q=5;w=1'), ('ratelimit', '"w1";r=3;t=1')]
    """
    if not usage or config.header_style == "none":
        return []
    if config.header_style == "ietf":
        state: Any = [(u.window.label, {"r": u.remaining, "t": _ceil(u.reset)}) for u in usage]
        policy = _policy(tuple(u.window for u in usage))
        return [("ratelimit-policy", policy), ("ratelimit", http_sf.ser(state))]
    tightest = min(usage, key=lambda u: (u.remaining, -u.reset))
    return [
        ("x-ratelimit-limit", str(tightest.window.limit)),
        ("x-ratelimit-remaining", str(tightest.remaining)),
        ("x-ratelimit-reset", _legacy_reset(config, tightest.reset, now)),
    ]


@lru_cache(maxsize=64)
def _policy(windows: tuple[Window, ...]) -> str:
    members: Any = [(w.label, {"q": w.limit, "w": w.policy_seconds}) for w in windows]
    return http_sf.ser(members)


def _legacy_reset(config: SandboxConfig, reset: float, now: float) -> str:
    form = config.legacy_reset
    if form == "delta":
        return str(_ceil(reset))
    if form == "epoch":
        return str(math.ceil(now + reset))
    if form == "epoch-ms":
        return str(math.ceil((now + reset) * 1000))
    return _http_date(math.ceil(now + reset))


def retry_after_header(config: SandboxConfig, wait: float, now: float) -> str:
    """``Retry-After`` for a wait of ``wait`` seconds: whole seconds rounded up, or an HTTP-date.

    >>> retry_after_header(SandboxConfig(), 0.25, 0.0)
    '1'
    >>> retry_after_header(SandboxConfig(retry_after="http-date"), 1.5, 0.0)
    'Thu, 01 Jan 1970 00:00:02 GMT'
    """
    if config.retry_after == "seconds":
        return str(max(1, _ceil(wait)))
    return _http_date(math.ceil(round(now + wait, 6)))
