"""The trade tool: there only when the client may trade *and* the user gives an approval policy.

A :class:`TradePolicy` names the symbols an agent may trade, a cap per order and per UTC day
(in USD) and who approves each order: a callback, or ``"framework"`` for a framework's own
approval hook (openai-agents ``needs_approval``, pydantic-ai ``requires_approval``). Every check
runs before any byte of the order is sent: symbol, per-order cap, approval, then the day's cap
(kept in the quota store, so processes that share it share the cap). A refusal is an error
result; a refused order is never sent.

>>> policy = TradePolicy(approve=lambda order: order.notional_usd < 100,  # doctest: +SKIP
...                      symbols={"BTC"}, max_order_usd=100, max_day_usd=500)
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
from pydantic import BaseModel, ConfigDict, Field, create_model

from ._budget import Meter
from ._exceptions import ConfigurationError, TradeRefusedError
from ._provider import OrderForm, Scope

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from ._tools import AgentTool, Toolset

__all__ = ["OrderRequest", "TradePolicy", "trade_tool"]


@dataclass(frozen=True)
class OrderRequest:
    """What an approver is asked about: the order, its value in USD and the agent."""

    agent: str
    symbol: str
    side: str
    type: str
    quantity: float
    price: float | None
    notional_usd: float


@dataclass(frozen=True)
class TradePolicy:
    """Who approves an agent's orders and the hard caps coinguard enforces before sending.

    ``approve`` is a callback that returns True to let one :class:`OrderRequest` go (anything
    else, or an exception, refuses it), or ``"framework"`` when a framework's approval hook
    asks a human first. ``symbols`` is required: an agent trades only what it is given.
    """

    approve: Callable[[OrderRequest], bool] | Literal["framework"]
    symbols: frozenset[str]
    max_order_usd: float
    max_day_usd: float
    route: str | None = None

    def __init__(
        self,
        *,
        approve: Callable[[OrderRequest], bool] | Literal["framework"],
        symbols: Iterable[str],
        max_order_usd: float,
        max_day_usd: float,
        route: str | None = None,
    ) -> None:
        if approve != "framework" and not callable(approve):
            raise ConfigurationError("approve must be a callable or 'framework'")
        wanted = frozenset(s.upper() for s in symbols)
        if not wanted:
            raise ConfigurationError("symbols must name at least one symbol the agent may trade")
        for name, value in (("max_order_usd", max_order_usd), ("max_day_usd", max_day_usd)):
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ConfigurationError(f"{name} must be a positive number of USD")
        if max_order_usd > max_day_usd:
            raise ConfigurationError("max_order_usd cannot exceed max_day_usd")
        object.__setattr__(self, "approve", approve)
        object.__setattr__(self, "symbols", wanted)
        object.__setattr__(self, "max_order_usd", float(max_order_usd))
        object.__setattr__(self, "max_day_usd", float(max_day_usd))
        object.__setattr__(self, "route", route)


def _input_model(policy: TradePolicy) -> type[BaseModel]:
    symbols: Any = Literal[tuple(sorted(policy.symbols))]  # the model sees the allowed list
    fields: dict[str, Any] = {
        "symbol": (symbols, Field(..., description="ticker to trade")),
        "side": (Literal["buy", "sell"], Field(..., description="buy or sell")),
        "type": (Literal["market", "limit"], Field(..., description="market or limit")),
        "quantity": (float, Field(..., gt=0, description="amount of the symbol, e.g. 0.01")),
        "price": (
            float | None,
            Field(None, gt=0, description="limit price in USD; null for a market order"),
        ),
    }
    model: type[BaseModel] = create_model(
        "place_order_input", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


def trade_tool(toolset: Toolset, policy: TradePolicy, day_store: Any) -> AgentTool:
    """The ``place_order`` tool of ``toolset`` under ``policy`` (sync or async: over an
    :class:`AsyncClient` the prices and the order are awaited, and the approval callback and
    the day's cap, which may block, run in a worker thread)."""
    from ._tools import AgentTool

    client = toolset._client
    if not client.allow_trading:
        raise ConfigurationError(
            "a TradePolicy needs a client created with allow_trading=True and a trade key"
        )
    day = Meter(
        {"usd": math.ceil(policy.max_day_usd)}, "day", f"trade:{toolset.agent}", day_store,
        toolset._clock,
    )  # fmt: skip
    toolset._closers.append(day.close)
    order_of = functools.partial(_order, toolset.agent, policy)
    placed = functools.partial(_placed, day)

    def run(args: dict[str, Any], approved_by_framework: bool) -> tuple[list[Any], dict[str, Any]]:
        sync = cast("Client", client)
        order = order_of(args, sync.prices([args["symbol"]])[0].price)
        if not _approved(policy, order, approved_by_framework):
            raise TradeRefusedError("refused: the order was not approved")
        form, method, route, body, query, key = _request(sync, policy, order)  # may refuse
        day.charge({"usd": math.ceil(order.notional_usd)})
        answer = sync.request(method, route, json=body, params=query, idempotency_key=key)
        return placed(form, order, answer)

    async def arun(
        args: dict[str, Any], approved_by_framework: bool
    ) -> tuple[list[Any], dict[str, Any]]:
        aclient = cast("AsyncClient", client)
        order = order_of(args, (await aclient.prices([args["symbol"]]))[0].price)
        ok = await anyio.to_thread.run_sync(_approved, policy, order, approved_by_framework)
        if not ok:
            raise TradeRefusedError("refused: the order was not approved")
        form, method, route, body, query, key = _request(aclient, policy, order)  # may refuse
        await anyio.to_thread.run_sync(day.charge, {"usd": math.ceil(order.notional_usd)})
        answer = await aclient.request(method, route, json=body, params=query, idempotency_key=key)
        return placed(form, order, answer)

    go: Callable[[dict[str, Any], bool], Any] = arun if toolset.is_async else run
    return AgentTool(
        "place_order",
        "Place a real order on the exchange account. Only for symbols "
        f"{', '.join(sorted(policy.symbols))}; at most {policy.max_order_usd:,.0f} USD per "
        f"order and {policy.max_day_usd:,.0f} USD per UTC day; every order needs approval "
        "and may be refused. A market order is valued at the current price. If the outcome "
        "is unknown, do not place it again.",
        _input_model(policy),
        Scope.TRADE,
        lambda args: go(args, False),
        lambda _args: 1,
        toolset,
        _framework_run=lambda args: go(args, True),
        approval=policy.approve if policy.approve == "framework" else "callback",
    )


def _order(agent: str, policy: TradePolicy, args: dict[str, Any], quote: float) -> OrderRequest:
    """The order the arguments ask for, valued and capped.

    A market order is worth its quantity at the current ``quote``. A buy limit order at its
    limit price (it never pays more); a sell limit order at its limit price or the quote,
    whichever is higher: one far below the market fills at once at the market's price.
    """
    symbol, side, kind = args["symbol"], args["side"], args["type"]
    quantity, price = float(args["quantity"]), args.get("price")
    if kind == "limit" and price is None:
        raise TradeRefusedError("a limit order needs a price")
    if not (isinstance(quote, int | float) and math.isfinite(quote) and quote > 0):
        raise TradeRefusedError(f"refused: no usable price for {symbol} to value the order")
    if kind == "market":
        price = None
    if price is None:
        notional = quantity * quote
    elif side == "sell":
        notional = quantity * max(float(price), quote)
    else:
        notional = quantity * float(price)
    if notional > policy.max_order_usd:
        raise TradeRefusedError(
            f"refused: the order is worth {notional:,.2f} USD, over the "
            f"{policy.max_order_usd:,.2f} USD cap per order"
        )
    return OrderRequest(agent, symbol, side, kind, quantity, price, notional)


def _request(
    client: Client | AsyncClient, policy: TradePolicy, order: OrderRequest
) -> tuple[OrderForm, str, str, Any, Any, str | None]:
    """The order in the provider's own form: (form, method, route, json, params, key)."""
    form = client.provider.order_form or _PLAIN
    method, path = form.route.split(" ", 1)
    fields: dict[str, Any] = {
        "symbol": client.symbol_map[order.symbol] if form.pair else order.symbol,
        "side": order.side.upper() if form.upper else order.side,
        "type": order.type.upper() if form.upper else order.type,
        "quantity": _text(order.quantity) if form.text else order.quantity,
    }
    if order.price is not None:
        fields["price"] = _text(order.price) if form.text else order.price
        fields.update(form.limit_extra)
    key = str(uuid.uuid4()) if client.provider.idempotency_header else None
    body, query = (fields, None) if form.where == "json" else (None, fields)
    return form, method, policy.route or path, body, query, key


def _placed(
    day: Meter, form: OrderForm, order: OrderRequest, answer: Any
) -> tuple[list[Any], dict[str, Any]]:
    data = answer
    if form.unwrap and isinstance(answer, dict):
        data = answer.get(form.unwrap, answer)
    return [data], {"notional_usd": round(order.notional_usd, 2), "day": day.status()}


_PLAIN = OrderForm()  # a JSON body at POST /orders, as the sandbox takes it


def _text(number: float) -> str:
    """A quantity or price as exchanges take it: decimal text, no exponent, no trailing 0."""
    return f"{number:.8f}".rstrip("0").rstrip(".")


def _approved(policy: TradePolicy, order: OrderRequest, approved_by_framework: bool) -> bool:
    if policy.approve == "framework":
        return approved_by_framework
    try:
        return policy.approve(order) is True
    except Exception:  # an approver that fails approves nothing
        return False
