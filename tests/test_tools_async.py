"""Agent tools over an AsyncClient: awaited on the event loop, through every async surface."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

import coinguard
from coinguard.agents import mcp_server, openai_agents_tools, pydantic_ai_tools
from coinguard.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
async def tools(box: Sandbox) -> AsyncIterator[coinguard.Toolset]:
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=box.base_url, read_key=box.keys.read, on_quota="raise"
    ) as client:
        yield coinguard.agent_tools(client, agent="async", budget=coinguard.Budget(calls=4))


async def test_tools_are_awaited_and_keep_the_budget(
    tools: coinguard.Toolset, box: Sandbox
) -> None:
    """acall, ainvoke_json and arun_openai await the AsyncClient; the budget holds."""
    assert tools.is_async
    first = await tools["prices"].acall(symbols=["BTC", "ETH"])
    assert [r["symbol"] for r in first["rows"]] == ["BTC", "ETH"]
    candles = json.loads(
        await tools["ohlcv"].ainvoke_json('{"symbols": ["BTC"], "start": "2026-11-01", '
                                          '"end": "2026-11-03"}')
    )  # fmt: skip
    assert candles["count"] == 3
    page = json.loads(await tools.arun_openai("tokens", '{"limit": 2, "page": 1}'))
    assert page["next_page"] == 2
    assert (await tools["price"].acall(symbol="NOPE"))["error"]["kind"] == "provider_error"
    sent = len(box.ledger.entries())
    over = await tools["price"].acall(symbol="BTC")
    assert over["error"]["kind"] == "budget_spent"
    assert len(box.ledger.entries()) == sent


async def test_sync_calls_on_async_tools_say_what_to_use(tools: coinguard.Toolset) -> None:
    """A sync call cannot wait for an AsyncClient: a ConfigurationError names the async call."""
    with pytest.raises(coinguard.ConfigurationError, match=r"await tool\.acall"):
        tools["prices"](symbols=["BTC"])
    with pytest.raises(coinguard.ConfigurationError, match=r"await tool\.acall"):
        tools.run_openai("prices", '{"symbols": ["BTC"]}')


async def test_async_tools_through_mcp_openai_agents_and_pydantic_ai(
    tools: coinguard.Toolset,
) -> None:
    """The async adapters await the same tools."""
    from agents.tool_context import ToolContext
    from mcp import Client

    async with Client(mcp_server(tools)) as mcp:
        answer = await mcp.call_tool("prices", {"symbols": ["SOL"]})
    assert answer.structured_content["rows"][0]["symbol"] == "SOL"
    prices = next(t for t in openai_agents_tools(tools) if t.name == "prices")
    args = '{"symbols": ["ETH"]}'
    ctx = ToolContext(None, tool_name="prices", tool_call_id="c", tool_arguments=args)
    assert json.loads(await prices.on_invoke_tool(ctx, args))["rows"][0]["symbol"] == "ETH"
    assert len(pydantic_ai_tools(tools)) == len(tools)


async def test_an_async_client_trades_through_the_same_checks(box: Sandbox) -> None:
    """Over an AsyncClient the order is awaited: approved, it is placed once; a market order
    is valued at the awaited price; refused or over the cap, nothing reaches the sandbox."""
    asked: list[coinguard.OrderRequest] = []
    async with coinguard.AsyncClient(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as client:
        policy = coinguard.TradePolicy(
            approve=lambda o: asked.append(o) is None and o.side == "buy",
            symbols={"BTC"},
            max_order_usd=50_000,
            max_day_usd=60_000,
        )
        tools = coinguard.agent_tools(client, agent="async-desk", trading=policy)
        placed = await tools["place_order"].acall(
            symbol="BTC", side="buy", type="limit", quantity=0.1, price=1e5
        )
        refused = await tools["place_order"].acall(
            symbol="BTC", side="sell", type="limit", quantity=0.1, price=1e5
        )
        capped = await tools["place_order"].acall(
            symbol="BTC", side="buy", type="market", quantity=9
        )
    assert placed["ok"] is True
    assert placed["notional_usd"] == 10_000.0
    assert refused["error"]["kind"] == "refused"
    assert capped["error"]["kind"] == "refused"
    assert "cap per order" in capped["error"]["message"]
    assert [o.side for o in asked] == ["buy", "sell"]
    assert box.ledger.count(path="/v2/orders", method="POST") == 1
