"""The trade tool: only with allow_trading and an approval policy; caps and approval checked
before any byte; a refused order reaches no server (the sandbox's ledger says so)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import coinguard
from coinguard import OrderRequest, TradePolicy
from coinguard.agents import (
    langchain_tools,
    mcp_server,
    openai_agents_tools,
    pydantic_ai_tools,
)
from coinguard.sandbox import Sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def trader(box: Sandbox) -> Iterator[coinguard.Client]:
    with coinguard.Client(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as c:
        yield c


def _orders_sent(box: Sandbox) -> int:
    return box.ledger.count(path="/v2/orders", method="POST")


def _policy(approve: Any = None, **caps: Any) -> TradePolicy:
    settings: dict[str, Any] = {"symbols": {"BTC", "ETH"}, "max_order_usd": 50_000.0}
    settings["max_day_usd"] = 60_000.0
    settings.update(caps)
    return TradePolicy(approve=approve or (lambda order: True), **settings)


def test_no_trade_tool_without_a_policy_and_no_policy_without_trading(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """allow_trading alone adds no trade tool; a policy on a read-only client is refused."""
    assert "place_order" not in coinguard.agent_tools(trader).names()
    with (
        coinguard.Client(provider="sandbox", base_url=box.base_url, read_key=box.keys.read) as ro,
        pytest.raises(coinguard.ConfigurationError, match="allow_trading=True"),
    ):
        coinguard.agent_tools(ro, trading=_policy())


def test_an_approved_order_is_placed_once(box: Sandbox, trader: coinguard.Client) -> None:
    """The approver sees the order and its value; the order is sent once, with its value and
    the day's use in the result."""
    asked: list[OrderRequest] = []
    tools = coinguard.agent_tools(
        trader, agent="desk", trading=_policy(lambda o: asked.append(o) is None)
    )
    assert tools["place_order"].read_only is False
    result = tools["place_order"](symbol="BTC", side="buy", type="limit", quantity=0.1, price=1e5)
    assert result["ok"] is True
    assert result["rows"][0]["status"] == "open"
    assert result["notional_usd"] == 10_000.0
    assert result["day"]["usd"]["used"] == 10_000
    assert asked == [OrderRequest("desk", "BTC", "buy", "limit", 0.1, 1e5, 10_000.0)]
    assert _orders_sent(box) == 1


@pytest.mark.parametrize(
    ("approve", "arguments", "message"),
    [
        (lambda o: False, {"quantity": 0.1, "price": 1e5}, "refused: the order was not approved"),
        (lambda o: "yes", {"quantity": 0.1, "price": 1e5}, "refused: the order was not approved"),
        (lambda o: 1 / 0, {"quantity": 0.1, "price": 1e5}, "refused: the order was not approved"),
        (None, {"quantity": 1.0, "price": 1e5}, "over the 50,000.00 USD cap per order"),
        (None, {"quantity": 0.1}, "a limit order needs a price"),
    ],
)
def test_a_refused_order_sends_nothing(
    box: Sandbox, trader: coinguard.Client, approve: Any, arguments: dict[str, Any], message: str
) -> None:
    """Not approved (False, not exactly True, or an approver that raises), over the cap per
    order, or malformed: an error result, and no order reaches the sandbox."""
    tools = coinguard.agent_tools(trader, trading=_policy(approve))
    result = tools["place_order"](symbol="BTC", side="buy", type="limit", **arguments)
    assert result["error"]["kind"] == "refused"
    assert message in result["error"]["message"]
    assert _orders_sent(box) == 0


def test_the_day_cap_and_the_symbol_list(box: Sandbox, trader: coinguard.Client) -> None:
    """The day's cap counts every placed order; a symbol not listed is not even in the schema."""
    tools = coinguard.agent_tools(trader, trading=_policy())
    order = {"side": "buy", "type": "limit", "price": 1e5}
    assert tools["place_order"](symbol="BTC", quantity=0.4, **order)["ok"]
    over = tools["place_order"](symbol="ETH", quantity=0.3, **order)
    assert over["error"]["kind"] == "budget_spent"
    assert "40000/60000 usd this day, this call needs 30000" in over["error"]["message"]
    schema = tools["place_order"].strict_schema()
    assert schema["properties"]["symbol"]["enum"] == ["BTC", "ETH"]
    doge = tools["place_order"](symbol="DOGE", quantity=1.0, **order)
    assert doge["error"]["kind"] == "invalid_arguments"
    assert _orders_sent(box) == 1


def test_a_market_order_is_valued_at_the_current_price(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """A market order's value comes from a price read before it, and the cap applies to it."""
    tools = coinguard.agent_tools(trader, trading=_policy(max_order_usd=1_000.0))
    result = tools["place_order"](symbol="BTC", side="buy", type="market", quantity=0.1)
    assert result["error"]["kind"] == "refused"
    assert "USD cap per order" in result["error"]["message"]
    assert _orders_sent(box) == 0


def test_framework_approval_needs_the_frameworks_hook(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """approve="framework": a direct call is refused, surfaces without a hook refuse to export
    the tool, and the frameworks that have one get it switched on."""
    tools = coinguard.agent_tools(trader, trading=_policy("framework"))
    direct = tools["place_order"](symbol="BTC", side="buy", type="limit", quantity=0.1, price=1e5)
    assert direct["error"]["message"] == "refused: the order was not approved"
    for export in (tools.openai_chat, tools.openai_responses):
        with pytest.raises(coinguard.ConfigurationError, match="no approval hook"):
            export()
    for adapter in (mcp_server, langchain_tools):
        with pytest.raises(coinguard.ConfigurationError, match="no approval hook"):
            adapter(tools)
    agents_tool = next(t for t in openai_agents_tools(tools) if t.name == "place_order")
    assert agents_tool.needs_approval is True
    pydantic_tool = next(t for t in pydantic_ai_tools(tools) if t.name == "place_order")
    assert pydantic_tool.requires_approval is True
    assert _orders_sent(box) == 0


@pytest.mark.anyio
async def test_openai_agents_runs_the_order_after_its_approval(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """The SDK invokes a needs_approval tool only once approved: that call places the order."""
    from agents.tool_context import ToolContext

    tools = coinguard.agent_tools(trader, trading=_policy("framework"))
    place = next(t for t in openai_agents_tools(tools) if t.name == "place_order")
    args = json.dumps({"symbol": "ETH", "side": "sell", "type": "limit", "quantity": 1.0,
                       "price": 9000.0})  # fmt: skip
    ctx = ToolContext(None, tool_name="place_order", tool_call_id="c1", tool_arguments=args)
    answer = json.loads(await place.on_invoke_tool(ctx, args))
    assert answer["ok"] is True
    assert _orders_sent(box) == 1


@pytest.mark.anyio
async def test_mcp_marks_the_trade_tool_destructive(trader: coinguard.Client) -> None:
    """With a callback policy the MCP tool exists, annotated as a destructive, not read-only,
    not idempotent tool."""
    from mcp import Client

    tools = coinguard.agent_tools(trader, trading=_policy())
    async with Client(mcp_server(tools)) as mcp:
        listed = {t.name: t for t in (await mcp.list_tools()).tools}
    hints = listed["place_order"].annotations
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
        False,
        True,
        False,
    )
    assert listed["prices"].annotations.read_only_hint is True


def test_policy_checks() -> None:
    """A policy needs symbols, positive caps, and a per-order cap within the day's."""
    with pytest.raises(coinguard.ConfigurationError, match="symbols"):
        _policy(symbols=set())
    with pytest.raises(coinguard.ConfigurationError, match="max_order_usd cannot exceed"):
        _policy(max_order_usd=10.0, max_day_usd=5.0)
    with pytest.raises(coinguard.ConfigurationError, match="callable"):
        TradePolicy(approve="yes", symbols={"BTC"}, max_order_usd=1, max_day_usd=1)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize(("decision", "orders"), [(False, 0), (True, 1)])
async def test_pydantic_ai_asks_its_approval_flow_first(
    box: Sandbox, trader: coinguard.Client, decision: bool, orders: int
) -> None:
    """pydantic-ai's own deferred approval: the run stops with the order pending and nothing
    sent; resumed with the human's answer, a denial sends nothing and an approval one order."""
    from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    order = {"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 0.01, "price": 9e4}

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        answers = [
            p.content for m in messages for p in getattr(m, "parts", [])
            if isinstance(p, ToolReturnPart)
        ]  # fmt: skip
        if answers:
            return ModelResponse(parts=[TextPart(json.dumps(answers[-1], default=str))])
        return ModelResponse(parts=[ToolCallPart("place_order", order, tool_call_id="o1")])

    tools = coinguard.agent_tools(trader, trading=_policy("framework"))
    agent = Agent(
        FunctionModel(model),
        tools=pydantic_ai_tools(tools),
        output_type=[str, DeferredToolRequests],
    )
    pending = await agent.run("buy a little BTC")
    assert isinstance(pending.output, DeferredToolRequests)
    assert [call.tool_name for call in pending.output.approvals] == ["place_order"]
    assert _orders_sent(box) == 0
    await agent.run(
        message_history=pending.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={"o1": decision}),
    )
    assert _orders_sent(box) == orders


@pytest.mark.anyio
@pytest.mark.parametrize(("decision", "orders"), [("reject", 0), ("approve", 1)])
async def test_openai_agents_runner_interrupts_for_approval(
    box: Sandbox, trader: coinguard.Client, decision: str, orders: int
) -> None:
    """The Agents SDK's own needs_approval flow, with a scripted model: the run stops with
    the order as an interruption and nothing sent; resumed, a rejection sends nothing and an
    approval one order."""
    from agents import Agent, RunConfig, Runner
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    order = {"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 0.01, "price": 9e4}

    class Scripted(Model):
        async def get_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            items = input if isinstance(input, list) else []
            done = [
                i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
            ]
            if done:
                text = ResponseOutputText(type="output_text", text="done", annotations=[])
                message = ResponseOutputMessage(
                    id="m1", type="message", role="assistant", status="completed", content=[text]
                )
                return ModelResponse(output=[message], usage=Usage(), response_id=None)
            call = ResponseFunctionToolCall(
                type="function_call", call_id="o1", name="place_order",
                arguments=json.dumps(order), id="fc1", status="completed",
            )  # fmt: skip
            return ModelResponse(output=[call], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    tools = coinguard.agent_tools(trader, trading=_policy("framework"))
    agent = Agent(name="desk", model=Scripted(), tools=openai_agents_tools(tools))
    config = RunConfig(tracing_disabled=True)
    first = await Runner.run(agent, "buy a little BTC", run_config=config)
    assert [item.name for item in first.interruptions] == ["place_order"]
    assert _orders_sent(box) == 0
    state = first.to_state()
    for item in first.interruptions:
        getattr(state, decision)(item)
    await Runner.run(agent, state, run_config=config)
    assert _orders_sent(box) == orders


def test_an_approved_order_on_binance_takes_binances_form() -> None:
    """The same tool on the Binance emulation: the order goes as Binance's parameters (the
    pair, upper-case side and type, decimal text, GTC), signed with the trade pair; the
    order exists once. Refused, it sends nothing."""
    import dataclasses

    from coinguard.providers import binance
    from coinguard.sandbox import SandboxConfig

    config = SandboxConfig(profile="binance", orders_per_10s=10_000)
    with (
        Sandbox(config) as bn,
        coinguard.Client(
            provider=dataclasses.replace(binance.PROFILE, base_url=bn.origin),
            read_key=bn.keys.read,
            read_secret=bn.keys.read_secret,
            trade_key=bn.keys.trade,
            trade_secret=bn.keys.trade_secret,
            allow_trading=True,
        ) as client,
    ):
        tools = coinguard.agent_tools(client, trading=_policy())
        result = tools["place_order"](
            symbol="BTC", side="buy", type="limit", quantity=0.25, price=10
        )
        refused = coinguard.agent_tools(client, agent="other", trading=_policy(lambda o: False))
        denied = refused["place_order"](
            symbol="ETH", side="sell", type="limit", quantity=1, price=9
        )
        orders = client.get("/api/v3/allOrders", params={"symbol": "BTCUSDT"})
        posts = [e for e in bn.ledger.entries() if e.method == "POST"]
    assert result["ok"] is True
    (order,) = orders
    assert (order["symbol"], order["side"], order["type"]) == ("BTCUSDT", "BUY", "LIMIT")
    assert float(order["origQty"]) == 0.25
    assert result["rows"][0]["clientOrderId"] == order["clientOrderId"]
    assert denied["error"]["kind"] == "refused"
    assert len(posts) == 1
