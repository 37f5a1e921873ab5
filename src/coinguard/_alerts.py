"""Anomaly alerts: rules over the attempts of each key, live (an observer) or over an audit log.

Every rule keeps a little state per key (provider and fingerprint) and reads time from the
attempts themselves, never from a clock of its own, so the same rules give the same alerts
live and over the log after the fact. Defaults are chosen not to cry wolf: a key must have a
history (15 minutes for the rate rule, an hour and 100 calls for the new-route rule) before
its behaviour can be called unusual, and one rule alerts once per key per ``cooldown``.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import _redact
from ._exceptions import ConfigurationError
from ._observe import Attempt, iso_time

__all__ = ["Alert", "AnomalyWarning", "Thresholds", "Watch"]

log = logging.getLogger("coinguard.alerts")

_DAY = 86400.0
_ORDER_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BUCKETS = 6  # per rate window: the rate is counted in buckets, never per call


class AnomalyWarning(UserWarning):
    """An alert from :class:`Watch`: something a key did looks unusual."""


@dataclass(frozen=True)
class Alert:
    """One alert: which ``rule`` fired, for which key, when (the attempt's time), and why."""

    rule: str
    provider: str
    key_fp: str | None
    at: str
    message: str
    subject: str = field(default="", compare=False, repr=False)  # what the cooldown is per

    def __str__(self) -> str:
        return f"{self.at} {self.rule} {self.provider} {self.key_fp or '-'}: {self.message}"


@dataclass(frozen=True)
class Thresholds:
    """When each rule fires; every field has a default that does not cry wolf.

    - ``rate_*``: calls in the last ``rate_window`` seconds above ``rate_factor`` times the
      key's rate over the ``baseline_window`` before it, and at least ``rate_min_calls``; only
      once the key has ``baseline_min_age`` seconds of history.
    - ``learn_calls``/``learn_seconds``: a route or scope never used before by a key alerts only
      after the key made that many calls over that long (before, every route is new).
    - ``auth_failures`` answers 401/403 within ``auth_window`` seconds.
    - ``trade_hours`` (UTC ``(start, end)`` hours, end excluded) and ``trade_symbols``: orders
      outside them; None (the default) checks nothing.
    - ``idle_after`` seconds without a call, then a call.
    - ``monthly_credits`` (an int, or one per provider): the credits spent this UTC month, at the
      pace so far, would pass it before the month ends; judged after ``burn_min_days`` days.

    >>> Thresholds(auth_failures=3).rate_factor
    5.0
    """

    rate_window: float = 60.0
    rate_factor: float = 5.0
    rate_min_calls: int = 60
    baseline_window: float = 3600.0
    baseline_min_age: float = 900.0
    learn_calls: int = 100
    learn_seconds: float = 3600.0
    auth_failures: int = 5
    auth_window: float = 60.0
    trade_hours: tuple[int, int] | None = None
    trade_symbols: frozenset[str] | None = None
    idle_after: float = 30 * _DAY
    monthly_credits: int | Mapping[str, int] | None = None
    burn_min_days: float = 3.0
    cooldown: float = 600.0

    def __post_init__(self) -> None:
        for name in ("rate_window", "baseline_window", "auth_window", "idle_after", "cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"Thresholds.{name} must be positive seconds")
        if self.baseline_window <= self.rate_window:
            raise ConfigurationError("Thresholds.baseline_window must be longer than rate_window")
        hours = self.trade_hours
        if hours is not None and not (
            len(hours) == 2 and all(isinstance(h, int) and 0 <= h <= 24 for h in hours)
        ):
            raise ConfigurationError("Thresholds.trade_hours must be (start, end) UTC hours 0-24")
        if self.trade_symbols is not None:
            object.__setattr__(
                self, "trade_symbols", frozenset(s.upper() for s in self.trade_symbols)
            )

    def monthly_limit(self, provider: str) -> int | None:
        """The monthly credit limit for ``provider``, if one is set."""
        limit = self.monthly_credits
        if isinstance(limit, Mapping):
            return limit.get(provider)
        return limit


@dataclass
class _Key:
    """What the rules remember of one key."""

    first: float
    last: float
    calls: int = 0
    buckets: deque[tuple[float, int]] = field(default_factory=deque)
    routes: set[str] = field(default_factory=set)
    scopes: set[str] = field(default_factory=set)
    denied: deque[float] = field(default_factory=deque)
    month: tuple[int, int] = (0, 0)
    spent: int = 0


class Watch:
    """An observer that raises alerts as calls happen; :meth:`check` runs the same rules over
    recorded attempts (``coinguard audit check``).

    Each alert becomes an :class:`AnomalyWarning` (``warn=False`` for none), a ``WARNING`` line
    on ``coinguard.alerts`` and a call of ``hook(alert)`` (to page someone); :attr:`alerts`
    keeps the last 1000.

    >>> watch = Watch(Thresholds(auth_failures=3), hook=print)  # doctest: +SKIP
    >>> client = Client(provider="tokenmetrics", observers=[watch])  # doctest: +SKIP
    """

    blocking = False

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        hook: Callable[[Alert], Any] | None = None,
        warn: bool = True,
    ) -> None:
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise ConfigurationError("Watch(thresholds=...) takes a coinguard.Thresholds")
        self.thresholds = thresholds or Thresholds()
        self.hook = hook
        self.warn = warn
        self.alerts: deque[Alert] = deque(maxlen=1000)
        self._keys: dict[tuple[str, str | None], _Key] = {}
        self._fired: dict[tuple[str, str, str | None, str], float] = {}
        self._lock = threading.Lock()  # one client may be used from many threads

    def attempt(self, record: Attempt) -> None:
        """Run every rule on one attempt and raise what fires."""
        with self._lock:
            alerts = self._judge(record)
        for alert in alerts:
            self._raise(alert)

    def learn(self, records: Iterable[Attempt]) -> None:
        """Take in past attempts as history (e.g. yesterday's audit log), raising nothing."""
        for record in records:
            with self._lock:
                self._judge(record)

    def check(self, records: Iterable[Attempt]) -> list[Alert]:
        """The alerts the rules raise over ``records``, in order (no warning, log or hook)."""
        found: list[Alert] = []
        for record in records:
            with self._lock:
                found += self._judge(record)
        return found

    def _raise(self, alert: Alert) -> None:
        self.alerts.append(alert)
        log.warning("%s", alert)
        if self.hook is not None:
            try:
                self.hook(alert)
            except Exception as exc:
                log.error("alert hook failed: %s: %s", type(exc).__name__, _redact.redact(str(exc)))
        if self.warn:
            warnings.warn(str(alert), AnomalyWarning, stacklevel=2)

    # -- the rules ---------------------------------------------------------------------------

    def _judge(self, record: Attempt) -> list[Alert]:
        now = record.started
        who = (record.provider, record.key_fp)
        key = self._keys.get(who)
        alerts: list[Alert] = []
        if key is None:
            key = self._keys[who] = _Key(first=now, last=now)
        else:
            alerts += self._idle(record, key, now)
        alerts += self._new(record, key, now)
        alerts += self._rate(record, key, now)
        alerts += self._denied(record, key, now)
        alerts += self._trade(record, now)
        alerts += self._burn(record, key, now)
        key.calls += 1
        key.last = max(key.last, now)
        return [a for a in alerts if self._fresh(a, now)]

    def _alert(self, rule: str, record: Attempt, message: str, subject: str = "") -> Alert:
        message = _redact.redact(message)
        return Alert(rule, record.provider, record.key_fp, record.time, message, subject)

    def _fresh(self, alert: Alert, now: float) -> bool:
        """Once per rule, key and subject per cooldown; a month's burn once a day."""
        mark = (alert.rule, alert.provider, alert.key_fp, alert.subject)
        last = self._fired.get(mark)
        cooldown = self.thresholds.cooldown
        if alert.rule == "monthly_burn":
            cooldown = max(cooldown, _DAY)
        if last is not None and now - last < cooldown:
            return False
        self._fired[mark] = now
        return True

    def _idle(self, record: Attempt, key: _Key, now: float) -> list[Alert]:
        idle = now - key.last
        if idle < self.thresholds.idle_after:
            return []
        return [
            self._alert(
                "idle_key",
                record,
                f"key active again after {idle / _DAY:.1f} days unused "
                f"(last call {iso_time(key.last)})",
            )
        ]

    def _new(self, record: Attempt, key: _Key, now: float) -> list[Alert]:
        t = self.thresholds
        learned = key.calls >= t.learn_calls and now - key.first >= t.learn_seconds
        route = f"{record.method} {record.route}"
        alerts = []
        if learned and route not in key.routes:
            alerts.append(
                self._alert("new_route", record, f"first call to {route} by this key", route)
            )
        if learned and record.scope not in key.scopes:
            alerts.append(
                self._alert(
                    "new_scope", record, f"first {record.scope} call by this key", record.scope
                )
            )
        if len(key.routes) < 10_000:
            key.routes.add(route)
        key.scopes.add(record.scope)
        return alerts

    def _rate(self, record: Attempt, key: _Key, now: float) -> list[Alert]:
        t = self.thresholds
        width = t.rate_window / _BUCKETS
        start = now - now % width
        buckets = key.buckets
        if buckets and buckets[-1][0] == start:
            buckets[-1] = (start, buckets[-1][1] + 1)
        elif not buckets or buckets[-1][0] < start:
            buckets.append((start, 1))
        else:  # an attempt older than the newest bucket (threads finishing out of order)
            for i in range(len(buckets) - 1, -1, -1):
                if buckets[i][0] <= start:
                    buckets[i] = (buckets[i][0], buckets[i][1] + 1)
                    break
        while buckets and buckets[0][0] < now - t.baseline_window:
            buckets.popleft()
        age = now - key.first
        if age < t.baseline_min_age + t.rate_window:
            return []
        recent = sum(n for at, n in buckets if at > now - t.rate_window)
        before = sum(n for at, n in buckets if at <= now - t.rate_window)
        span = min(t.baseline_window, age) - t.rate_window
        expected = before / span * t.rate_window
        if recent < t.rate_min_calls or recent <= t.rate_factor * expected:
            return []
        return [
            self._alert(
                "rate",
                record,
                f"{recent} calls in the last {t.rate_window:g}s, "
                f"{recent / max(expected, 1e-9):.0f}x the key's recent rate ({expected:.1f})",
            )
        ]

    def _denied(self, record: Attempt, key: _Key, now: float) -> list[Alert]:
        if record.status not in (401, 403):
            return []
        t = self.thresholds
        key.denied.append(now)
        while key.denied and key.denied[0] <= now - t.auth_window:
            key.denied.popleft()
        if len(key.denied) < t.auth_failures:
            return []
        return [
            self._alert(
                "auth_failures",
                record,
                f"{len(key.denied)} answers 401/403 in {t.auth_window:g}s: "
                "a revoked or stolen key, or someone probing",
            )
        ]

    def _trade(self, record: Attempt, now: float) -> list[Alert]:
        t = self.thresholds
        if record.scope != "trade" or record.method not in _ORDER_METHODS:
            return []
        alerts = []
        if t.trade_hours is not None:
            hour = datetime.fromtimestamp(now, timezone.utc).hour
            start, end = t.trade_hours
            inside = start <= hour < end if start <= end else hour >= start or hour < end
            if not inside:
                alerts.append(
                    self._alert(
                        "trade_hours",
                        record,
                        f"order at {hour:02d}h UTC, outside the hours {start:02d}-{end:02d}",
                        f"{hour}",
                    )
                )
        symbol = (record.symbol or "").upper()
        if t.trade_symbols is not None and symbol and symbol not in t.trade_symbols:
            alerts.append(
                self._alert(
                    "trade_symbol", record, f"order for {symbol}, not an allowed symbol", symbol
                )
            )
        return alerts

    def _burn(self, record: Attempt, key: _Key, now: float) -> list[Alert]:
        t = self.thresholds
        limit = t.monthly_limit(record.provider)
        when = datetime.fromtimestamp(now, timezone.utc)
        month = (when.year, when.month)
        if key.month != month:
            key.month, key.spent = month, 0
        key.spent += record.cost or 0
        if limit is None or not record.cost:
            return []
        start = datetime(when.year, when.month, 1, tzinfo=timezone.utc).timestamp()
        nxt = (when.year + when.month // 12, when.month % 12 + 1)
        end = datetime(nxt[0], nxt[1], 1, tzinfo=timezone.utc).timestamp()
        elapsed = now - start
        if elapsed < t.burn_min_days * _DAY:
            return []
        pace = key.spent / elapsed  # credits per second so far
        if key.spent + pace * (end - now) <= limit:
            return []
        exhausted = start + limit / pace
        return [
            self._alert(
                "monthly_burn",
                record,
                f"{key.spent} of {limit} monthly credits spent; at this pace they run out "
                f"{iso_time(exhausted)[:16]}Z, before the reset {iso_time(end)[:10]}",
            )
        ]
