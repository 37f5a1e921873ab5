"""Orders: validation, creation, idempotency keys, lookup and cancel."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ._data import Market
from ._routes import ApiError

__all__ = ["Order", "OrderBook"]

_FIELDS = {"symbol", "side", "type", "quantity", "price", "client_order_id"}


@dataclass(frozen=True)
class Order:
    """One order the sandbox accepted.

    Market orders fill at once at the spot price (``status="filled"``); limit orders stay
    ``"open"`` until cancelled.
    """

    id: str
    account: str
    symbol: str
    side: str
    type: str
    quantity: float
    price: float | None
    status: str
    filled_price: float | None
    created_at: float
    idempotency_key: str | None
    client_order_id: str | None

    def as_json(self) -> dict[str, Any]:
        """The order as the API shows it."""
        stamp = datetime.fromtimestamp(self.created_at, tz=timezone.utc)
        return {
            "id": self.id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "quantity": self.quantity,
            "price": self.price,
            "status": self.status,
            "filled_price": self.filled_price,
            "created_at": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "client_order_id": self.client_order_id,
        }


def _number(body: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"Invalid order: '{name}' is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"Invalid order: '{name}' must be a number")
    if not math.isfinite(value) or value <= 0:
        raise ApiError(400, f"Invalid order: '{name}' must be > 0")
    return float(value)


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in allowed:
        raise ApiError(400, f"Invalid order: '{name}' must be one of {', '.join(allowed)}")
    return str(value)


class OrderBook:
    """Every order of a sandbox run. Not thread-safe: the caller holds the lock."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self.orders: dict[str, Order] = {}
        self._idempotency: dict[tuple[str, str], tuple[str, str]] = {}

    def create(
        self, account: str, raw: bytes, idempotency_key: str | None, now: float
    ) -> tuple[Order, bool]:
        """Create an order from a JSON body; return ``(order, replayed)``.

        The same idempotency key with the same body returns the first order
        (``replayed=True``); with a different body it raises 422.
        """
        body = _parse(raw)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise ApiError(400, "Invalid header 'Idempotency-Key': 1 to 255 characters")
            seen = self._idempotency.get((account, idempotency_key))
            if seen is not None:
                if seen[0] != digest:
                    raise ApiError(
                        422, "Idempotency-Key was already used with a different request body"
                    )
                return self.orders[seen[1]], True
        order = self._build(account, body, idempotency_key, now)
        self.orders[order.id] = order
        if idempotency_key is not None:
            self._idempotency[(account, idempotency_key)] = (digest, order.id)
        return order, False

    def _build(
        self, account: str, body: dict[str, Any], idempotency_key: str | None, now: float
    ) -> Order:
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ApiError(400, f"Invalid order: unknown field '{unknown[0]}'")
        symbol = body.get("symbol")
        token = self._market.by_symbol.get(symbol.upper()) if isinstance(symbol, str) else None
        if token is None:
            raise ApiError(400, "Invalid order: 'symbol' must be a listed token symbol")
        side = _choice(body, "side", ("buy", "sell"))
        kind = _choice(body, "type", ("market", "limit"))
        quantity = _number(body, "quantity", required=True)
        limit_price = _number(body, "price", required=kind == "limit")
        client_id = body.get("client_order_id")
        if client_id is not None and not (isinstance(client_id, str) and 0 < len(client_id) <= 64):
            raise ApiError(400, "Invalid order: 'client_order_id' must be a string of 1-64 chars")
        spot = float(f"{self._market.price(token, now):.6g}")
        return Order(
            id=f"ord_{len(self.orders) + 1:06d}",
            account=account,
            symbol=token.symbol,
            side=side,
            type=kind,
            quantity=quantity or 0.0,
            price=limit_price if kind == "limit" else None,
            status="filled" if kind == "market" else "open",
            filled_price=spot if kind == "market" else None,
            created_at=now,
            idempotency_key=idempotency_key,
            client_order_id=client_id,
        )

    def get(self, account: str, order_id: str) -> Order:
        """The order ``order_id`` of ``account`` (other accounts' orders are 404 too)."""
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            raise ApiError(404, f"Order not found: {order_id}")
        return order

    def cancel(self, account: str, order_id: str) -> Order:
        """Cancel an open order; cancelling a cancelled order is a no-op, a filled one is 409."""
        order = self.get(account, order_id)
        if order.status == "filled":
            raise ApiError(409, f"Order {order_id} is already filled")
        cancelled = replace(order, status="cancelled")
        self.orders[order_id] = cancelled
        return cancelled


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        body = None
    if body is None:
        raise ApiError(400, "Invalid JSON body")
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body: expected an object")
    return body
