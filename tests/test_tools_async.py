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


async def test_trading_needs_a_sync_client(box: Sandbox) -> None:
    """A TradePolicy over an AsyncClient is refused when the tools are made."""
    async with coinguard.AsyncClient(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as client:
        policy = coinguard.TradePolicy(
            approve=lambda o: True, symbols={"BTC"}, max_order_usd=1, max_day_usd=1
        )
        with pytest.raises(coinguard.ConfigurationError, match="synchronous Client"):
            coinguard.agent_tools(client, trading=policy)
