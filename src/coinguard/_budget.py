"""Per-agent budgets: an agent's own allowance of tool calls and credits, on top of the
provider's quota, kept as quota windows in a quota store.

>>> Budget(calls=100, credits=250)
Budget(calls=100, credits=250, per='day')
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._exceptions import BudgetExceededError, ConfigurationError, QuotaExceededError
from ._quota import Quota, QuotaPolicy, QuotaStore, Window

__all__ = ["Budget", "Meter", "seconds_text"]

_PERIODS = {"minute": Window.per_minute, "hour": Window.per_hour, "day": Window.per_day}


@dataclass(frozen=True)
class Budget:
    """An agent's allowance on top of the provider's quota, per ``per`` (``"minute"``,
    ``"hour"``, or the UTC ``"day"``): tool ``calls``, ``credits`` (the provider's declared
    cost of the requests a call sends) and ``seconds`` of wall time spent in tool calls (a
    call is counted when it ends; once they are spent, calls are refused). None leaves a
    dimension unlimited.

    >>> Budget(calls=100, credits=250).per
    'day'
    """

    calls: int | None = None
    credits: int | None = None
    per: Literal["minute", "hour", "day"] = "day"
    seconds: int | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "credits", "seconds"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"Budget {name} must be an int >= 1 or None, got {value!r}"
                )
        if self.per not in _PERIODS:
            raise ConfigurationError(f"Budget per must be one of {', '.join(_PERIODS)}")


class Meter:
    """Named allowances (``{"calls": 100, "credits": 250}``) per period, as quota windows in a
    quota store: several processes that share the store (SQLite, Redis) share the allowance."""

    def __init__(
        self,
        allowances: Mapping[str, int | None],
        per: str,
        owner: str,
        store: QuotaStore | str,
        clock: Callable[[], float],
    ) -> None:
        self.per = per
        self._limits = {name: limit for name, limit in allowances.items() if limit is not None}
        self._quotas = {
            name: Quota(
                QuotaPolicy([_PERIODS[per](limit)]),
                store=store,
                key_id=f"{owner}:{name}",
                on_quota="raise",
                clock=clock,
                persist=None,
            )
            for name, limit in self._limits.items()
        }

    @classmethod
    def of(
        cls, budget: Budget, agent: str, store: QuotaStore | str, clock: Callable[[], float]
    ) -> Meter:
        """The meter of an agent's :class:`Budget`."""
        ms = None if budget.seconds is None else budget.seconds * 1000
        allowances = {"calls": budget.calls, "credits": budget.credits, "ms": ms}
        return cls(allowances, budget.per, f"agent:{agent}", store, clock)

    def check_time(self) -> None:
        """Refuse a call once the period's wall time (``ms``) is spent."""
        quota = self._quotas.get("ms")
        if quota is not None and quota.status().windows[0].remaining <= 0:
            limit = self._limits["ms"] // 1000
            raise BudgetExceededError(f"budget spent: {limit}/{limit} seconds this {self.per}")

    def spent(self, seconds: float) -> None:
        """Count a finished call's wall time, up to what is left of the period's."""
        quota = self._quotas.get("ms")
        if quota is None:
            return
        left = quota.status().windows[0].remaining
        # another process may have taken the rest meanwhile: spent anyway
        with contextlib.suppress(QuotaExceededError):
            quota.take(min(left, max(1, math.ceil(seconds * 1000))))

    def charge(self, amounts: Mapping[str, int]) -> None:
        """Take every amount, or none of them and raise :class:`BudgetExceededError`."""
        taken: list[tuple[Quota, Any]] = []
        try:
            for name, quota in self._quotas.items():
                amount = amounts.get(name, 0)
                if amount:
                    taken.append((quota, self._take(name, quota, amount)))
        except BudgetExceededError:
            for quota, reservation in taken:
                quota.release(reservation)
            raise

    def _take(self, name: str, quota: Quota, amount: int) -> Any:
        try:
            return quota.take(amount)
        except QuotaExceededError as exc:
            limit = self._limits[name]
            used = quota.status().windows[0].used
            needs = f", this call needs {amount}" if amount > 1 else ""
            when = (
                "" if math.isinf(exc.retry_after)
                else f", resets in {seconds_text(exc.retry_after)}"
            )  # fmt: skip
            raise BudgetExceededError(
                f"budget spent: {used}/{limit} {name} this {self.per}{needs}{when}"
            ) from None

    def status(self) -> dict[str, Any]:
        """Used and limit of each allowance, for results."""
        out: dict[str, Any] = {}
        for name, quota in self._quotas.items():
            window = quota.status().windows[0]
            if name == "ms":
                used, limit = window.used / 1000, window.limit // 1000
                out["seconds"] = {"used": round(used, 3), "limit": limit, "per": self.per}
            else:
                out[name] = {"used": window.used, "limit": window.limit, "per": self.per}
        return out

    def close(self) -> None:
        """Close the quota handles."""
        for quota in self._quotas.values():
            quota.close()


def seconds_text(value: float) -> str:
    """A wait as a model reads it: ``12 s``, ``3 min``, ``11 h``."""
    value = max(0.0, value)
    if value < 120:
        return f"{math.ceil(value)} s"
    if value < 7200:
        return f"{math.ceil(value / 60)} min"
    return f"{math.ceil(value / 3600)} h"
