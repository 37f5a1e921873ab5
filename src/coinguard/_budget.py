"""Per-agent budgets: an agent's own allowance of tool calls and credits, on top of the
provider's quota, kept as quota windows in a quota store.

>>> Budget(calls=100, credits=250)
Budget(calls=100, credits=250, per='day')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._exceptions import BudgetExceededError, ConfigurationError, QuotaExceededError
from ._quota import Quota, QuotaPolicy, QuotaStore, Window

__all__ = ["Budget", "Meter", "seconds_text"]

_PERIODS = {"minute": Window.per_minute, "hour": Window.per_hour, "day": Window.per_day}


@dataclass(frozen=True)
class Budget:
    """An agent's allowance on top of the provider's quota: tool ``calls`` and ``credits``
    (the provider's declared cost of the requests a call sends) per ``per`` (``"minute"``,
    ``"hour"``, or the UTC ``"day"``). None leaves a dimension unlimited.

    >>> Budget(calls=100, credits=250).per
    'day'
    """

    calls: int | None = None
    credits: int | None = None
    per: Literal["minute", "hour", "day"] = "day"

    def __post_init__(self) -> None:
        for name in ("calls", "credits"):
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
    """An agent's budget as quota windows in a quota store: several processes that share the
    store (SQLite, Redis) share the agent's budget."""

    def __init__(
        self, budget: Budget, agent: str, store: QuotaStore | str, clock: Callable[[], float]
    ) -> None:
        self.budget = budget
        self._quotas: dict[str, Quota] = {}
        for what in ("calls", "credits"):
            limit = getattr(budget, what)
            if limit is None:
                continue
            # a cost of 0 by default: a call's credits are charged through the path below
            policy = QuotaPolicy([_PERIODS[budget.per](limit)], default_cost=1)
            self._quotas[what] = Quota(
                policy, store=store, key_id=f"agent:{agent}:{what}", on_quota="raise",
                clock=clock, persist=None,
            )  # fmt: skip

    def charge(self, credits: int) -> None:
        """Take one call and ``credits`` credits, or raise :class:`BudgetExceededError`."""
        taken: list[tuple[Quota, Any]] = []
        try:
            for what, quota in self._quotas.items():
                times = 1 if what == "calls" else credits
                for _ in range(times):
                    taken.append((quota, self._one(quota, what)))
        except BudgetExceededError:
            for quota, reservation in taken:
                quota.release(reservation)
            raise

    def _one(self, quota: Quota, what: str) -> Any:
        try:
            return quota.reserve("TOOL", "/call")
        except QuotaExceededError as exc:
            limit = getattr(self.budget, what)
            raise BudgetExceededError(
                f"budget spent: {limit}/{limit} {what} this {self.budget.per}, "
                f"resets in {seconds_text(exc.retry_after)}"
            ) from None

    def status(self) -> dict[str, Any]:
        """Used and limit of each dimension, for results."""
        out: dict[str, Any] = {}
        for what, quota in self._quotas.items():
            window = quota.status().windows[0]
            out[what] = {"used": window.used, "limit": window.limit, "per": self.budget.per}
        return out

    def close(self) -> None:
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
