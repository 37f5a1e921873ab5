"""Agent tools: a client's typed endpoints as tools a language model may call.

:func:`agent_tools` turns the endpoint catalogue of a client's provider into a
:class:`Toolset`: one :class:`AgentTool` per read endpoint, plus the unified ``prices`` and
``ohlcv`` calls. Each tool has a pydantic input model whose JSON Schema a model can fill in
(every property required or given an explicit default, no extra properties), a description
with units, formats and limits, and a result that is always a JSON-able dict:

- ``{"ok": true, "rows": [...], "count": n, "returned": m, "truncated": ..., "budget": ...}``
- ``{"ok": false, "error": {"kind": ..., "message": ..., "retry_after": ...}, "budget": ...}``

The client is captured by closure: it is never a parameter, a schema field or part of a
result. No exception escapes a tool: each becomes a short error result whose message is
redacted and never says how to gain rights the agent lacks. Large answers are cut by whole
rows, never mid-value, with a note saying how to ask for the rest.

>>> tools = agent_tools(client, agent="research")  # doctest: +SKIP
>>> tools["prices"](symbols=["BTC"])["rows"][0]["symbol"]  # doctest: +SKIP
'BTC'
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel, ValidationError

from ._budget import Budget, Meter
from ._endpoints import Endpoint
from ._exceptions import ConfigurationError
from ._provider import Scope
from ._quota import QuotaStore, shared_memory_store
from ._redact import redact, redact_value
from ._tool_errors import describe_error, validation_text
from ._tool_schemas import OhlcvInput, PricesInput, describe, endpoint_model, strict
from ._trade_tools import TradePolicy, trade_tool

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = ["AgentTool", "Toolset", "agent_tools"]

logger = logging.getLogger("coinguard.tools")


def _plain(value: Any) -> Any:
    """A row or value as JSON-able data, strings redacted."""
    if isinstance(value, BaseModel):
        return redact_value(value.model_dump(mode="json"))  # JSON types already
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return redact_value(json.loads(json.dumps(value, default=str)))


@dataclass(frozen=True, eq=False)
class AgentTool:
    """One tool: ``name``, ``description``, ``input_model`` and the function behind it.

    Call it with keyword arguments (``tool(symbol="BTC")``) or a JSON text
    (``tool.invoke_json('{"symbol": "BTC"}')``); either way the answer is a result dict and
    no exception escapes. ``scope`` is ``Scope.READ`` for every tool of a read-only toolset.
    """

    name: str
    description: str
    input_model: type[BaseModel]
    scope: Scope
    _run: Callable[[dict[str, Any]], tuple[list[Any], dict[str, Any]]] = field(repr=False)
    _cost: Callable[[dict[str, Any]], int] = field(repr=False)
    _owner: Toolset = field(repr=False)
    #: the run after a framework's approval hook said yes (trade tools only)
    _framework_run: Callable[[dict[str, Any]], tuple[list[Any], dict[str, Any]]] | None = field(
        default=None, repr=False
    )
    #: who approves each call: None for a read tool, "callback" or "framework" for a trade tool
    approval: Literal["callback", "framework"] | None = None

    @property
    def read_only(self) -> bool:
        """True when the tool only reads."""
        return self.scope is Scope.READ

    def json_schema(self) -> dict[str, Any]:
        """The input JSON Schema: optional properties carry their default, no extra properties."""
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        return schema

    def strict_schema(self) -> dict[str, Any]:
        """The input schema in OpenAI strict mode: every property required, an optional one
        nullable (null means its default), no ``default`` keywords."""
        return strict(self.json_schema())

    def __call__(self, /, **arguments: Any) -> dict[str, Any]:
        self._owner._need_sync("tool(...)")
        return self._owner._invoke(self, arguments)

    def invoke_json(self, text: str) -> str:
        """Run the tool on a JSON object of arguments; return the result as JSON text."""
        self._owner._need_sync("invoke_json()")
        try:
            arguments = json.loads(text or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            result = self._owner._failure(
                self, "invalid_arguments", "arguments must be a JSON object"
            )
        else:
            result = self._owner._invoke(self, arguments)
        return json.dumps(result)

    async def acall(self, /, **arguments: Any) -> dict[str, Any]:
        """The same as calling the tool, for async frameworks: awaited over an
        :class:`AsyncClient`, run in a worker thread over a :class:`Client`."""
        if self._owner.is_async:
            return await self._owner._ainvoke(self, arguments)
        return await anyio.to_thread.run_sync(lambda: self._owner._invoke(self, arguments))

    async def ainvoke_json(self, text: str) -> str:
        """:meth:`invoke_json` for async frameworks (see :meth:`acall`)."""
        try:
            arguments = json.loads(text or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            result = self._owner._failure(
                self, "invalid_arguments", "arguments must be a JSON object"
            )
        else:
            result = await self.acall(**arguments)
        return json.dumps(result)

    def _after_approval(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Run once a framework's own approval hook approved this call (adapters only)."""
        return self._owner._invoke(self, arguments, approved=True)

    async def _aafter_approval(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`_after_approval` for async frameworks: awaited over an AsyncClient, in a
        worker thread over a Client."""
        if self._owner.is_async:
            return await self._owner._ainvoke(self, arguments, approved=True)
        return await anyio.to_thread.run_sync(lambda: self._after_approval(arguments))


class Toolset(Sequence[AgentTool]):
    """The tools of one agent over one client; index it by position or by name.

    Exports: :meth:`openai_chat` and :meth:`openai_responses` (plain dicts), and in
    :mod:`coinguard.agents` the MCP server and the framework adapters.
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        *,
        agent: str,
        budget: Budget | None,
        budget_store: QuotaStore | str | None,
        max_rows: int,
        max_chars: int,
        clock: Callable[[], float],
        trading: TradePolicy | None = None,
    ) -> None:
        if not isinstance(agent, str) or not agent.strip():
            raise ConfigurationError("agent must be a non-empty string naming the agent")
        if max_rows < 1 or max_chars < 200:
            raise ConfigurationError("max_rows must be >= 1 and max_chars >= 200")
        from ._client import AsyncClient

        self.agent = agent
        self._client = client
        #: True over an AsyncClient: call the tools with ``await tool.acall(...)``
        self.is_async = isinstance(client, AsyncClient)
        self._max_rows = max_rows
        self._max_chars = max_chars
        self._clock = clock
        self._closers: list[Callable[[], None]] = []
        # the process's store by default: an agent's budget and day cap must survive its tools
        # being built again (one Toolset per conversation)
        store: QuotaStore | str = shared_memory_store() if budget_store is None else budget_store
        self._meter = Meter.of(budget, agent, store, clock) if budget is not None else None
        self._tools: dict[str, AgentTool] = {}
        for tool in self._build():
            self._tools[tool.name] = tool
        if not self._tools:
            raise ConfigurationError(
                f"provider {client.provider.name!r} declares no read endpoints, so there is no "
                "tool to make: declare endpoints= in its Provider (see docs/data.md)"
            )
        if trading is not None:
            self._tools["place_order"] = trade_tool(self, trading, store)

    def _build(self) -> Iterator[AgentTool]:
        client = self._client
        provider = client.provider
        for ep in client.endpoints.values():
            if ep.scope is not Scope.READ:
                continue
            yield AgentTool(
                ep.name, describe(ep, provider.name), endpoint_model(ep), Scope.READ,
                self._endpoint_runner(ep), _fixed(ep.cost), self,
            )  # fmt: skip
        try:
            symbols = _symbols_note(client)
        except ConfigurationError:  # a provider of its own: its endpoints, no unified calls
            return
        yield AgentTool(
            "prices",
            f"Current prices in USD of one or more crypto tickers on {provider.name}. "
            f"{symbols} Returns one row per symbol: symbol, price (USD), time (UTC).",
            PricesInput, Scope.READ, self._prices, self._prices_cost, self,
        )  # fmt: skip
        yield AgentTool(
            "ohlcv",
            f"Daily (1d) or hourly (1h) OHLCV candles of crypto tickers on {provider.name}: "
            "open, high, low, close in USD and volume, one row per symbol and UTC period, "
            f"start..end inclusive. {symbols} At most {self._max_rows} rows come back; "
            "ask for a shorter range or fewer symbols for the rest.",
            OhlcvInput, Scope.READ, self._ohlcv, self._ohlcv_cost, self,
        )  # fmt: skip

    # -- the runners: the only code that touches the client ---------------------------------

    def _endpoint_runner(self, ep: Endpoint) -> Callable[[dict[str, Any]], Any]:
        def run(args: dict[str, Any]) -> Any:
            return _then(self._client.call(ep.name, **args), lambda rows: _paged(ep, args, rows))

        return run

    def _prices(self, args: dict[str, Any]) -> Any:
        return _then(self._client.prices(args["symbols"]), lambda rows: (list(rows), {}))

    def _prices_cost(self, args: dict[str, Any]) -> int:
        fetches = self._client._adapter().price_fetches(args["symbols"], None)
        return sum(self._client.endpoints[f.endpoint].cost for f in fetches)

    def _ohlcv(self, args: dict[str, Any]) -> Any:
        rows = self._client.ohlcv(
            args["symbols"], interval=args.get("interval") or "1d", start=args["start"],
            end=args.get("end"), progress=False,
        )  # fmt: skip
        return _then(rows, lambda got: (list(got), {}))

    def _ohlcv_cost(self, args: dict[str, Any]) -> int:
        """An upper bound of the credits of the requests an OHLCV call sends."""
        client = self._client
        fetches = client._unified_ohlcv(
            args["symbols"], args.get("interval") or "1d", args["start"], args.get("end"), None
        )
        total = 0
        for fetch in fetches:
            ep = client.endpoints[fetch.endpoint]
            total += ep.cost * _requests(ep, fetch, args.get("interval") or "1d")
        return total

    # -- invoking ---------------------------------------------------------------------------

    def _invoke(
        self, tool: AgentTool, arguments: Mapping[str, Any], *, approved: bool = False
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            begun = self._begin(tool, arguments, approved)
            if isinstance(begun, dict):
                result = begun
            else:
                run, args = begun
                clock = self._clock()
                try:
                    rows, extra = run(args)
                finally:
                    self._spent(clock)
                result = self._success(tool, rows, extra)
        except Exception as exc:
            result = self._failure(tool, *describe_error(exc))
        return self._audit(tool, result, started)

    async def _ainvoke(
        self, tool: AgentTool, arguments: Mapping[str, Any], *, approved: bool = False
    ) -> dict[str, Any]:
        """The same as :meth:`_invoke` over an :class:`AsyncClient`: its calls are awaited."""
        started = time.perf_counter()
        try:
            begun = self._begin(tool, arguments, approved)
            if isinstance(begun, dict):
                result = begun
            else:
                run, args = begun
                clock = self._clock()
                try:
                    rows, extra = await run(args)
                finally:
                    self._spent(clock)
                result = self._success(tool, rows, extra)
        except Exception as exc:
            result = self._failure(tool, *describe_error(exc))
        return self._audit(tool, result, started)

    def _audit(self, tool: AgentTool, result: dict[str, Any], started: float) -> dict[str, Any]:
        logger.info(
            "tool call agent=%s tool=%s outcome=%s ms=%.0f",
            self.agent, tool.name, "ok" if result["ok"] else result["error"]["kind"],
            (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return result

    def _begin(
        self, tool: AgentTool, arguments: Mapping[str, Any], approved: bool
    ) -> dict[str, Any] | tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]:
        """Validate, price and pay for a call: a failure result, or the run and its arguments."""
        try:
            parsed = tool.input_model.model_validate(dict(arguments))
        except ValidationError as exc:
            return self._failure(tool, "invalid_arguments", validation_text(exc))
        args = parsed.model_dump(exclude_none=True)
        cost = tool._cost(args)  # wrong symbols or ranges fail here, before the budget
        if self._meter is not None:
            self._meter.check_time()
            self._meter.charge({"calls": 1, "credits": cost})
        run = tool._framework_run if approved and tool._framework_run else tool._run
        return run, args

    def _spent(self, since: float) -> None:
        if self._meter is not None:
            self._meter.spent(self._clock() - since)

    def _success(self, tool: AgentTool, rows: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
        plain = [_plain(row) for row in rows]
        result: dict[str, Any] = {"ok": True, "tool": tool.name, "count": len(plain)}
        result.update(extra)
        result["budget"] = self.budget_status()
        kept = plain[: self._max_rows]
        result["returned"] = len(kept)
        result["truncated"] = len(kept) < len(plain)
        timed = [str(r["time"]) for r in plain if isinstance(r, dict) and r.get("time")]
        while True:
            result["rows"] = kept
            if len(kept) < len(plain):
                result.update(returned=len(kept), truncated=True, note=(
                    f"{len(plain) - len(kept)} more rows not shown: ask for fewer symbols, a "
                    "shorter range or a smaller page"
                ))  # fmt: skip
                if timed:
                    result["range"] = {"first": min(timed), "last": max(timed)}
            if not kept or len(json.dumps(result)) <= self._max_chars:
                return result
            # whole rows go, never part of a value: the text stays valid JSON
            kept = kept[: min(len(kept) - 1, len(kept) * 3 // 4)]

    def _failure(
        self, tool: AgentTool, kind: str, message: str, retry_after: float | None = None
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"kind": kind, "message": redact(message)}
        if retry_after is not None:
            error["retry_after"] = math.ceil(retry_after)
        return {"ok": False, "tool": tool.name, "error": error, "budget": self.budget_status()}

    def _need_sync(self, what: str) -> None:
        if self.is_async:
            raise ConfigurationError(
                f"these tools run over an AsyncClient: {what} cannot wait for it; use "
                "'await tool.acall(...)' (or ainvoke_json, arun_openai)"
            )

    def budget_status(self) -> dict[str, Any] | None:
        """This agent's budget: used and limit of calls and credits, or None without one."""
        return self._meter.status() if self._meter is not None else None

    # -- exports ----------------------------------------------------------------------------

    def openai_chat(self) -> list[dict[str, Any]]:
        """Chat Completions ``tools=``: ``{"type": "function", "function": {...}}`` in strict
        mode.

        >>> tools.openai_chat()[0]["function"]["strict"]  # doctest: +SKIP
        True
        """
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.strict_schema(),
                    "strict": True,
                },
            }
            for t in self.without_hooks("the Chat Completions format")
        ]

    def openai_responses(self) -> list[dict[str, Any]]:
        """Responses API ``tools=``: the flat ``{"type": "function", "name", ...}`` form."""
        return [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.strict_schema(),
                "strict": True,
            }
            for t in self.without_hooks("the Responses format")
        ]

    def without_hooks(self, surface: str) -> list[AgentTool]:
        """The tools, for a surface with no approval hook of its own: refused when a trade
        tool relies on a framework's hook (``TradePolicy(approve="framework")``)."""
        for tool in self:
            if tool.approval == "framework":
                raise ConfigurationError(
                    f"{surface} has no approval hook, and the trade tool {tool.name!r} relies on "
                    "one: give TradePolicy(approve=<callback>) to export it here"
                )
        return list(self)

    def run_openai(self, name: str, arguments: str) -> str:
        """Answer an OpenAI tool call (its function name and JSON arguments) with JSON text."""
        tool = self._tools.get(name)
        if tool is None:
            return self._unknown(name)
        return tool.invoke_json(arguments)

    async def arun_openai(self, name: str, arguments: str) -> str:
        """:meth:`run_openai` for async code (over an :class:`AsyncClient` or a Client)."""
        tool = self._tools.get(name)
        if tool is None:
            return self._unknown(name)
        return await tool.ainvoke_json(arguments)

    def _unknown(self, name: str) -> str:
        known = ", ".join(self._tools)
        error = {"kind": "unknown_tool", "message": f"no tool {name[:64]!r}; tools: {known}"}
        return json.dumps({"ok": False, "tool": name[:64], "error": error})

    # -- the Sequence and Mapping face -------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            try:
                return self._tools[index]
            except KeyError:
                raise ConfigurationError(
                    f"no tool {index!r}; tools: {', '.join(self._tools)}"
                ) from None
        return list(self._tools.values())[index]

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """The tool names, in order."""
        return list(self._tools)

    def close(self) -> None:
        """Close the budget's quota handles (not the client: the caller owns it)."""
        if self._meter is not None:
            self._meter.close()
        for close in self._closers:
            close()

    def __repr__(self) -> str:
        return f"Toolset(agent={self.agent!r}, tools={self.names()})"

    def __reduce__(self) -> Any:
        raise TypeError("a Toolset holds a client and cannot be pickled")


def _then(value: Any, finish: Callable[[Any], Any]) -> Any:
    """``finish(value)``, or a coroutine awaiting ``value`` first (an AsyncClient's call)."""
    if inspect.isawaitable(value):

        async def later() -> Any:
            return finish(await value)

        return later()
    return finish(value)


def _paged(ep: Endpoint, args: dict[str, Any], rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The rows, and the next page to ask for when this one came back full."""
    extra: dict[str, Any] = {}
    pager = ep.paging
    if pager is not None and pager.style == "page":
        limit = args.get(pager.limit_param)
        if limit is not None and len(rows) >= limit:
            extra["next_page"] = (args.get(pager.page_param) or pager.first) + 1
    return list(rows), extra


def _requests(ep: Endpoint, fetch: Any, interval: str) -> int:
    pager = ep.paging
    if not fetch.paginate or pager is None or fetch.start is None:
        return 1
    end = fetch.end or fetch.start
    days = (end - fetch.start).days + 1
    span = pager.max_span.days if pager.max_span else days
    chunks = math.ceil(days / max(1, span))
    symbols = sum(1 for s in str(fetch.params.get("symbol", "x")).split(",") if s)
    rows = symbols * days * (24 if interval == "1h" else 1)
    # a chunk's pages: its rows over the page size, plus one that may come back empty
    return int(math.ceil(rows / pager.max_limit) + 2 * chunks)


def _fixed(cost: int) -> Callable[[dict[str, Any]], int]:
    return lambda _args: cost


def _symbols_note(client: Client | AsyncClient) -> str:
    table = client.symbol_map
    known = list(table)
    if not known:
        return "Symbols are tickers as the provider lists them (e.g. BTC, ETH)."
    return f"Known tickers: {', '.join(known[:30])}{' and more' if len(known) > 30 else ''}."


def agent_tools(
    client: Client | AsyncClient,
    *,
    agent: str = "agent",
    budget: Budget | None = None,
    budget_store: QuotaStore | str | None = None,
    max_rows: int = 100,
    max_chars: int = 20_000,
    clock: Callable[[], float] = time.time,
    trading: TradePolicy | None = None,
) -> Toolset:
    """The tools an agent may call over ``client``: one per read endpoint, plus ``prices``
    and ``ohlcv``; over an :class:`AsyncClient` they are awaited (``await tool.acall()``).
    Read-only whatever the client may do, unless ``trading`` (a
    :class:`TradePolicy`, on a client created with ``allow_trading=True``) adds ``place_order``.

    ``budget`` gives the agent its own allowance (tool calls and credits), counted in
    ``budget_store`` (a store or store URL; several processes on one SQLite or Redis store
    share it). A result holds at most ``max_rows`` rows and ``max_chars`` characters of JSON.

    >>> tools = agent_tools(client, agent="research", budget=Budget(calls=100))  # doctest: +SKIP
    >>> [t.name for t in tools][:2]  # doctest: +SKIP
    ['tokens', 'price']
    """
    return Toolset(
        client, agent=agent, budget=budget, budget_store=budget_store, max_rows=max_rows,
        max_chars=max_chars, clock=clock, trading=trading,
    )  # fmt: skip
