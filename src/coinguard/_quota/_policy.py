"""Quota policies: immutable values saying how much a key may do, and what each call costs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import NamedTuple

from .._exceptions import ConfigurationError

__all__ = ["MONTH", "QuotaPolicy", "Window"]

#: Length of a calendar-month window (31 days): the longest month, so that a rolling reading
#: of a month is never shorter than the real one.
MONTH = 31 * 86400.0

_UNITS = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}


@dataclass(frozen=True)
class Window:
    """One rate-limit window: at most ``limit`` cost units per ``seconds``.

    A rolling window counts the last ``seconds`` before every call. A calendar window counts
    a fixed slot aligned on the UTC clock (the minute ``12:03:00-12:04:00``, the UTC day) and
    resets at its boundary; ``Window.per_month`` is the UTC calendar month.

    A window counts every request sent (a rate limit) unless ``credits=True``: a credit window
    (a calendar window) counts what the provider bills. It is reserved at the route's cost
    before the call, then settled to what the answer says was billed: the body's
    ``status.credit_count`` where there is one, else nothing for an error answer (a status
    outside 2xx), or, for a policy with ``ok_costs``, what :meth:`QuotaPolicy.billed` says.
    A call with no answer stays counted. Without any credit window, a ``credit_count`` above
    the reserved cost charges every window, and nothing is refunded.

    >>> Window.per_second(5)
    Window(limit=5, seconds=1.0, name='5/s', calendar=False, credits=False)
    >>> Window.per_month(10_000, credits=True).credits
    True
    >>> Window.per_minute(1200, calendar=True).name
    '1200/min aligned'
    """

    limit: int
    seconds: float
    name: str | None = None
    calendar: bool = False
    credits: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(f"Window limit must be a positive int, got {self.limit!r}")
        seconds = float(self.seconds)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ConfigurationError(f"Window seconds must be positive, got {self.seconds!r}")
        object.__setattr__(self, "seconds", seconds)
        if not isinstance(self.credits, bool):
            raise ConfigurationError(f"Window credits must be True or False, got {self.credits!r}")
        if self.credits and not self.calendar:
            raise ConfigurationError(
                f"a credit window must be a calendar window (providers bill by the day or the"
                f" month): pass calendar=True to the {seconds:g}s window"
            )
        if self.name is None:
            object.__setattr__(self, "name", _default_name(self.limit, seconds, self.calendar))

    @property
    def label(self) -> str:
        """The window name (always set after construction)."""
        return self.name or ""

    @property
    def is_month(self) -> bool:
        """True for the UTC calendar month window."""
        return self.calendar and self.seconds == MONTH

    @classmethod
    def per_second(cls, limit: int, *, name: str | None = None) -> Window:
        """A rolling one-second window."""
        return cls(limit, 1.0, name=name)

    @classmethod
    def per_minute(
        cls, limit: int, *, calendar: bool = False, name: str | None = None, credits: bool = False
    ) -> Window:
        """A one-minute window; ``calendar=True`` for providers that reset on the clock minute."""
        return cls(limit, 60.0, name=name, calendar=calendar, credits=credits)

    @classmethod
    def per_hour(
        cls, limit: int, *, calendar: bool = False, name: str | None = None, credits: bool = False
    ) -> Window:
        """A one-hour window, rolling by default."""
        return cls(limit, 3600.0, name=name, calendar=calendar, credits=credits)

    @classmethod
    def per_day(
        cls, limit: int, *, calendar: bool = True, name: str | None = None, credits: bool = False
    ) -> Window:
        """A one-day window, the UTC day by default (most daily plans reset at 00:00 UTC)."""
        return cls(limit, 86400.0, name=name, calendar=calendar, credits=credits)

    @classmethod
    def per_month(cls, limit: int, *, name: str | None = None, credits: bool = False) -> Window:
        """The UTC calendar month, as credit plans count it."""
        return cls(limit, MONTH, name=name, calendar=True, credits=credits)


def _default_name(limit: int, seconds: float, calendar: bool) -> str:
    if calendar and seconds == MONTH:
        return f"{limit}/month"
    unit = _UNITS.get(seconds, f"{seconds:g}s")
    suffix = " aligned" if calendar and seconds < 86400.0 else ""
    return f"{limit}/{unit}{suffix}"


class WindowSpec(NamedTuple):
    """A window compiled for the stores: what the algorithm needs, nothing else."""

    kind: str  # "r" rolling, "c" calendar of fixed length, "m" UTC calendar month
    limit: int
    length: float  # rolling: seconds + margin; calendar: the slot length
    margin: float
    name: str
    sig: str  # identifies the history shared by windows of the same shape on one key
    credits: bool = False  # counts what the provider bills (refunded when it bills nothing)


@dataclass(frozen=True, init=False)
class QuotaPolicy:
    """The quota of one provider plan: its windows, the cost of each route, a safety margin.

    ``costs`` maps route patterns (``"GET /daily-ohlcv*"``, or a bare path pattern for any
    method; shell-style wildcards, query string ignored) to a cost; the first matching pattern
    wins and other routes cost ``default_cost``. A cost of 0 makes a route free.
    ``ok_costs`` names routes whose successful answer bills another cost than the one
    reserved (Binance: a placed order weighs 0, a refused one its weight); with it, the credit
    windows are settled to that on success and to the route's cost on any other answer
    (:meth:`billed`), so it needs a credit window (``Window(credits=True)``). ``margin``
    (seconds) is added to every rolling window and makes calendar windows count a call that
    falls within ``margin`` of their end in the next slot too, to absorb network latency jitter
    (see the docs, "Latency").

    >>> policy = QuotaPolicy(
    ...     [Window.per_second(5), Window.per_month(10_000)], costs={"GET /daily-ohlcv*": 2}
    ... )
    >>> policy.cost("GET", "/daily-ohlcv?symbol=BTC"), policy.cost("GET", "/price")
    (2, 1)
    """

    windows: tuple[Window, ...]
    costs: tuple[tuple[str, int], ...]
    default_cost: int
    margin: float
    ok_costs: tuple[tuple[str, int], ...] = ()

    def __init__(
        self,
        windows: Iterable[Window],
        *,
        costs: Mapping[str, int] | Iterable[tuple[str, int]] = (),
        default_cost: int = 1,
        margin: float = 0.01,
        ok_costs: Mapping[str, int] | Iterable[tuple[str, int]] = (),
    ) -> None:
        wins = tuple(windows)
        pairs = tuple(costs.items() if isinstance(costs, Mapping) else costs)
        ok_pairs = tuple(ok_costs.items() if isinstance(ok_costs, Mapping) else ok_costs)
        if ok_pairs and not any(w.credits for w in wins):
            raise ConfigurationError(
                "ok_costs settle what a call billed: the policy needs a credit window"
                " (Window(..., calendar=True, credits=True))"
            )
        if not wins or not all(isinstance(w, Window) for w in wins):
            raise ConfigurationError("QuotaPolicy needs at least one Window")
        if not isinstance(margin, (int, float)) or not 0 <= margin < 3600 or math.isnan(margin):
            raise ConfigurationError(f"margin must be seconds >= 0, got {margin!r}")
        smallest = min(w.limit for w in wins)
        for pattern, cost in (*pairs, *ok_pairs, ("default_cost", default_cost)):
            if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
                raise ConfigurationError(f"cost of {pattern!r} must be an int >= 0, got {cost!r}")
            if cost > smallest:
                raise ConfigurationError(
                    f"cost {cost} of {pattern!r} exceeds the smallest window limit {smallest}:"
                    " such a call could never be admitted"
                )
        for pattern, _ in (*pairs, *ok_pairs):
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigurationError(f"cost pattern must be a non-empty string: {pattern!r}")
        object.__setattr__(self, "windows", wins)
        object.__setattr__(self, "costs", pairs)
        object.__setattr__(self, "default_cost", default_cost)
        object.__setattr__(self, "margin", float(margin))
        object.__setattr__(self, "ok_costs", ok_pairs)

    def cost(self, method: str, path: str) -> int:
        """The cost of one call to ``method path`` (``path`` relative to the base URL)."""
        found = _lookup(self.costs, method, path)
        return self.default_cost if found is None else found

    def billed(self, method: str, path: str, *, ok: bool) -> int | None:
        """What a call billed, by its route and whether its answer was a success (``ok``):
        None when the policy declares no ``ok_costs`` (the answer's own word then decides,
        e.g. CoinMarketCap's ``credit_count``).

        >>> p = QuotaPolicy([Window.per_minute(6000, calendar=True, credits=True)],
        ...                 costs={"POST /order": 1}, ok_costs={"POST /order": 0})
        >>> p.billed("POST", "/order", ok=True), p.billed("POST", "/order", ok=False)
        (0, 1)
        """
        if not self.ok_costs:
            return None
        found = _lookup(self.ok_costs, method, path) if ok else None
        return self.cost(method, path) if found is None else found

    def specs(self) -> tuple[WindowSpec, ...]:
        """The windows compiled for a store; windows of the same shape merge into the strictest.

        Two windows of one length and kind count the same calls, so they are one window whose
        limit is the lower: kept apart they would share one history and count each call twice.
        """
        strictest: dict[tuple[bool, float], Window] = {}
        credits: dict[tuple[bool, float], bool] = {}
        for w in self.windows:
            shape = (w.calendar, w.seconds)
            if shape not in strictest or w.limit < strictest[shape].limit:
                strictest[shape] = w
            # one history counting calls and credits alike must count every call
            credits[shape] = credits.get(shape, True) and w.credits
        return tuple(
            _spec(w, self.margin)._replace(credits=credits[shape]) for shape, w in strictest.items()
        )

    def __str__(self) -> str:
        wins = ", ".join(w.label for w in self.windows)
        costs = ", ".join(f"{p!r}: {c}" for p, c in self.costs)
        extra = f"; costs {{{costs}}}" if costs else ""
        if self.ok_costs:
            ok = ", ".join(f"{p!r}: {c}" for p, c in self.ok_costs)
            extra += f"; on success {{{ok}}}"
        return (
            f"QuotaPolicy({wins}; default cost {self.default_cost}{extra}; margin {self.margin:g}s)"
        )


def _lookup(pairs: tuple[tuple[str, int], ...], method: str, path: str) -> int | None:
    """The cost of the first pattern matching ``method path``, or None."""
    method = method.upper()
    path = path.split("?", 1)[0]
    for pattern, cost in pairs:
        want_method, _, want_path = pattern.partition(" ")
        if not want_path:
            want_method, want_path = "*", want_method
        if fnmatchcase(method, want_method.upper()) and fnmatchcase(path, want_path):
            return cost
    return None


def _spec(window: Window, margin: float) -> WindowSpec:
    if window.is_month:
        kind, length = "m", MONTH
    elif window.calendar:
        kind, length = "c", window.seconds
    else:
        kind, length = "r", window.seconds + margin
    return WindowSpec(
        kind, window.limit, length, margin, window.label, f"{kind}{window.seconds:g}+{margin:g}"
    )
