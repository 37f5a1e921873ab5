"""One logical API call, as the client core prepares it: classified, vetted, holding no key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from . import _redact
from ._exceptions import ConfigurationError
from ._provider import ClientOrderId, Scope

__all__ = ["SAFE_METHODS", "Call", "with_client_order_id"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Call:
    """One logical API call, before any key is attached. Holds no secret."""

    method: str
    path: str
    url: httpx.URL
    scope: Scope
    params: Any
    json: Any
    content: Any
    headers: Mapping[str, str] | None
    idempotency_key: str | None
    idempotent: bool
    sent_at: datetime
    probe: bool = False  # a key check: sent with a scope's key, never an order
    raw: bool = False  # answer a Response (status, headers, body), not the body alone
    client_order_id: str | None = None  # kept across attempts; the order's lookup key

    def describe(self) -> str:
        # the path may hold a live key (a caller put it there, or a server echoed it)
        return _redact.redact(f"{self.method} {self.path}")

    @property
    def is_order(self) -> bool:
        """A trade by an unsafe method: its outcome matters when the answer is lost."""
        return self.scope is Scope.TRADE and self.method not in SAFE_METHODS and not self.probe


def _holds(params: Any, name: str) -> bool:
    if isinstance(params, Mapping):
        return params.get(name) is not None
    return any(next(iter(p), None) == name for p in params)


def with_client_order_id(params: Any, spec: ClientOrderId) -> tuple[Any, str]:
    """``params`` with the order's client id: the caller's if it set one (checked), else a
    fresh one; the same id then goes with every attempt and every lookup."""
    where = "json" if spec.where == "json" else "params"
    if params is None:
        params = {}
    if isinstance(params, Mapping):
        given = params.get(spec.param)
        items = dict(params)
    elif isinstance(params, list | tuple) and where == "params":
        pairs = [tuple(p) for p in params]
        given = next((v for k, v in pairs if k == spec.param), None)
        items = None
    else:
        raise ConfigurationError(
            f"{where}= of an order must be a dict"
            + (" or a list of pairs" if where == "params" else " (a JSON object)")
            + f", so coinguard can add {spec.param}; got {type(params).__name__}"
        )
    for name in spec.excludes:
        if _holds(params, name):
            raise ConfigurationError(
                f"an order to this provider cannot carry both {name} and {spec.param}, and "
                f"coinguard sends {spec.param} to find the order if its answer is lost: "
                f"tag the order with {spec.param} instead of {name}"
            )
    if given is not None:
        if not spec.valid(given):
            shown = _redact.redact(str(given))
            rule = spec.shape or f"match ^{spec.pattern}$"
            raise ConfigurationError(f"{spec.param} must {rule}: {shown!r}")
        return params, str(given)
    client_id = spec.new_id()
    if items is not None:
        items[spec.param] = client_id
        return items, client_id
    return [*pairs, (spec.param, client_id)], client_id
