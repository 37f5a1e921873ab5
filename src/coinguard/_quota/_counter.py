"""A decaying counter (Kraken's REST limit): each call adds its cost, the counter drains at a
fixed rate, and a call may go only while the counter, with its cost, stays within the maximum.

The state is one number per key, the time ``tat`` at which the counter would be empty (the
generic cell rate algorithm): the counter at ``t`` is ``max(0, tat - t) * rate``. A call of
cost ``c`` fits at ``t`` iff ``(tat - t) * rate + c <= limit``, so its earliest time is
``tat - (limit - c) / rate``, and admitting it moves ``tat`` to ``max(tat, at) + c / rate``.
Admissions are committed in time order (FIFO), so one comparison is exact; every store
(memory, SQLite, Redis) runs this one step atomically, the Redis store in Lua.

The server counts a call when it arrives, later than coinguard admitted it; calls delayed by
up to ``margin`` seconds could pile up there, adding at most ``margin * rate``. The counter is
therefore kept that much below the provider's maximum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol, runtime_checkable

from .._exceptions import ConfigurationError, QuotaExceededError

__all__ = ["CounterStore", "DecayingCounter", "admit"]


@dataclass(frozen=True)
class DecayingCounter:
    """A counter of at most ``limit`` that drains ``rate`` units per second, per key.

    ``costs`` maps route patterns (``"POST /0/private/Ledgers"``, shell-style wildcards) to
    what a call adds; other routes add ``default_cost``, and 0 leaves a route out.
    ``margin`` (seconds) is the network delay the counter absorbs (see the module docstring).

    >>> c = DecayingCounter(15, 0.33, costs={"POST /0/private/Ledgers": 2})
    >>> c.cost("POST", "/0/private/Ledgers"), c.cost("POST", "/0/private/Balance")
    (2, 1)
    >>> round(c.ceiling, 2)
    14.67
    """

    limit: int
    rate: float
    costs: Mapping[str, int] = field(default_factory=dict)
    default_cost: int = 1
    margin: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(f"DecayingCounter limit must be an int >= 1: {self.limit!r}")
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ConfigurationError(f"DecayingCounter rate must be > 0 per second: {rate!r}")
        if not math.isfinite(float(rate)):
            raise ConfigurationError(f"DecayingCounter rate must be finite: {rate!r}")
        object.__setattr__(self, "rate", float(rate))
        object.__setattr__(self, "costs", dict(self.costs))
        biggest = max([self.default_cost, *self.costs.values()])
        if not 0 <= self.margin < 3600:
            raise ConfigurationError(f"DecayingCounter margin must be seconds >= 0: {self.margin}")
        if biggest > self.ceiling:
            raise ConfigurationError(
                f"a call of cost {biggest} never fits a counter of {self.limit} kept "
                f"{self.margin:g}s x {self.rate:g}/s below its maximum"
            )
        if not self.name:
            object.__setattr__(self, "name", f"counter {self.limit} (-{self.rate:g}/s)")

    @property
    def ceiling(self) -> float:
        """The maximum coinguard fills the counter to: ``limit - margin * rate``."""
        return self.limit - self.margin * self.rate

    def cost(self, method: str, path: str) -> int:
        """What one call to ``method path`` adds (``path`` relative to the base URL)."""
        method, path = method.upper(), path.split("?", 1)[0]
        for pattern, cost in self.costs.items():
            want_method, _, want_path = pattern.partition(" ")
            if not want_path:
                want_method, want_path = "*", want_method
            if fnmatchcase(method, want_method.upper()) and fnmatchcase(path, want_path):
                return cost
        return self.default_cost


def admit(
    tat: float, ceiling: float, rate: float, cost: int, now: float, max_wait: float
) -> tuple[float, float]:
    """One admission: ``(at, new tat)``, or :class:`QuotaExceededError` if the wait until
    ``at`` exceeds ``max_wait`` (nothing is committed then).

    >>> admit(0.0, 15.0, 0.5, 1, 100.0, 0.0)
    (100.0, 102.0)
    >>> admit(130.0, 15.0, 0.5, 1, 100.0, 60.0)
    (102.0, 132.0)
    """
    at = max(now, tat - (ceiling - cost) / rate)
    if at - now > max_wait:
        raise QuotaExceededError(
            f"the decaying counter is full for {at - now:.3f}s",
            window="counter",
            retry_after=at - now,
        )
    return at, max(tat, at) + cost / rate


@runtime_checkable
class CounterStore(Protocol):
    """A store that keeps decaying counters (memory, SQLite and Redis all do)."""

    @property
    def blocking(self) -> bool:
        """True if calls may block on I/O."""
        ...

    def counter_take(
        self, key_id: str, counter: DecayingCounter, cost: int, now: float, max_wait: float
    ) -> tuple[float, float]:
        """Admit ``cost`` on the counter of ``key_id``: ``(at, now)`` on the store's clock."""
        ...

    def counter_fill(self, key_id: str, counter: DecayingCounter, now: float) -> None:
        """The provider says the counter is full: count it so from ``now``."""
        ...

    def counter_level(self, key_id: str, counter: DecayingCounter, now: float) -> float:
        """What the counter of ``key_id`` holds at ``now``."""
        ...
