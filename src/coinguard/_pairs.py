"""A decaying counter per trading pair (Kraken's trading rate limit), sans-I/O.

Each pair of an account has its own counter: placing an order adds a fixed cost, cancelling
one adds a penalty that shrinks with the order's age (a cancel within 5 s costs the most), and
the counter drains at the tier's rate. The counters live in the quota store beside the key's
REST counter, one per key and pair (the pair is part of the store's identity), so the
processes sharing the store share them.

The age of an order is measured from when this client saw it placed (its answer arrived, or
a lookup found it), never earlier than the exchange created it: the age coinguard computes is
at most the exchange's, so the penalty it counts is at least the exchange's. A cancel of an
order this client did not place cannot be priced (its pair and age are unknown here) and is
counted at the largest penalty on the pair the call names, or not at all when it names none.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ._exceptions import ConfigurationError
from ._quota import DecayingCounter

__all__ = ["PlacedOrders", "TradeCounter"]

_KEPT = 10_000  # placed orders a client remembers to price their cancels


@dataclass(frozen=True)
class TradeCounter:
    """A provider's trading counter per pair: ``counter`` gives its maximum and decay rate
    (costs are ignored: they are set here), ``adds`` and ``cancels`` the routes
    (``"POST /0/private/AddOrder"``, shell-style wildcards), ``add_cost`` what placing an
    order adds, ``penalties`` what a cancel adds by the order's age in seconds (``(5, 8)``:
    younger than 5 s adds 8; older than every bound adds 0). ``pair_param`` names the pair
    in an order's fields, ``id_params`` the fields a cancel names its order by, ``placed_ids``
    the order ids in an add's answer; ``full_codes`` are the provider's errors that say the
    pair's counter is full (it is then counted full for every client).

    >>> t = TradeCounter(DecayingCounter(60, 1.0), adds=["POST /add"], cancels=["POST /cancel"],
    ...                  penalties=((5, 8), (10, 6)))
    >>> t.penalty(0.5), t.penalty(7.0), t.penalty(600.0)
    (8, 6, 0)
    """

    counter: DecayingCounter
    adds: Iterable[str]
    cancels: Iterable[str]
    penalties: tuple[tuple[float, int], ...]
    add_cost: int = 1
    pair_param: str = "pair"
    id_params: tuple[str, ...] = ("txid", "cl_ord_id")
    placed_ids: Callable[[Any], Iterable[str]] | None = None
    full_codes: frozenset[str] = frozenset()
    _top: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("adds", "cancels"):
            routes = getattr(self, name)
            if isinstance(routes, str) or not isinstance(routes, Iterable):
                raise ConfigurationError(f"TradeCounter.{name} must be a list of 'METHOD /path'")
            object.__setattr__(self, name, tuple(routes))
        bounds = [age for age, _ in self.penalties]
        if bounds != sorted(bounds) or any(cost < 0 for _, cost in self.penalties):
            raise ConfigurationError(
                "TradeCounter.penalties must be (age, cost) pairs by growing age, costs >= 0"
            )
        top = max([self.add_cost, *(cost for _, cost in self.penalties)])
        if top > self.counter.ceiling:
            raise ConfigurationError(f"a cost of {top} never fits {self.counter.name}")
        object.__setattr__(self, "_top", top)

    def penalty(self, age: float) -> int:
        """What cancelling an order ``age`` seconds old adds."""
        return next((cost for bound, cost in self.penalties if age < bound), 0)

    def kind(self, method: str, path: str) -> str | None:
        """``"add"``, ``"cancel"`` or None for a call this counter does not count."""
        route = f"{method.upper()} {path}"
        if any(fnmatchcase(route, r) for r in self.adds):
            return "add"
        if any(fnmatchcase(route, r) for r in self.cancels):
            return "cancel"
        return None

    @property
    def largest(self) -> int:
        """The largest cost one call can add: an unknown order's cancel is counted so."""
        return self._top


def param(params: Any, name: str) -> str | None:
    """The value of field ``name`` in an order's params (a dict or a list of pairs)."""
    if isinstance(params, Mapping):
        value = params.get(name)
    else:
        value = next((v for k, v in (tuple(p) for p in params or ()) if k == name), None)
    return None if value is None else str(value)


class PlacedOrders:
    """The orders one client placed, by every id they are known by: (pair, when seen placed).
    Bounded: the oldest are forgotten first (a cancel of one is then priced as unknown)."""

    def __init__(self) -> None:
        self._orders: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, ids: Iterable[str], pair: str, at: float) -> None:
        """Remember an order placed on ``pair``, seen placed at ``at``."""
        with self._lock:
            for order_id in ids:
                self._orders[order_id] = (pair, at)
                self._orders.move_to_end(order_id)
            while len(self._orders) > _KEPT:
                self._orders.popitem(last=False)

    def get(self, order_id: str) -> tuple[str, float] | None:
        """``(pair, placed at)`` of an order this client placed, else None."""
        with self._lock:
            return self._orders.get(order_id)


def charge(
    spec: TradeCounter, placed: PlacedOrders, method: str, path: str, params: Any, now: float
) -> tuple[str, int] | None:
    """``(pair, cost)`` a call adds to its pair's counter, or None when it adds nothing."""
    kind = spec.kind(method, path)
    if kind == "add":
        pair = param(params, spec.pair_param)
        return (pair, spec.add_cost) if pair else None
    if kind != "cancel":
        return None
    for name in spec.id_params:
        order_id = param(params, name)
        known = placed.get(order_id) if order_id is not None else None
        if known is not None:
            pair, at = known
            cost = spec.penalty(max(0.0, now - at))
            return (pair, cost) if cost else None
    pair = param(params, spec.pair_param)
    return (pair, spec.largest) if pair else None
