"""The OpenAI Agents SDK with coinguard's tools (``pip install 'coinguard[openai-agents]'``).

    python examples/agents/openai_agents_sdk.py

``openai_agents_tools(tools)`` gives strict ``FunctionTool`` objects. With ``OPENAI_API_KEY``
set an agent answers with them; without, one tool is invoked the way the SDK invokes it.
"""

from __future__ import annotations

import asyncio
import json
import os

from agents import Agent, Runner
from agents.tool_context import ToolContext

import coinguard
from coinguard.agents import openai_agents_tools
from coinguard.sandbox import Sandbox


async def main() -> None:
    with (
        Sandbox() as sb,
        coinguard.Client(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, on_quota="raise"
        ) as client,
    ):
        tools = openai_agents_tools(coinguard.agent_tools(client, agent="sdk"))
        agent = Agent(name="analyst", instructions="Answer with market data.", tools=tools)
        if os.environ.get("OPENAI_API_KEY"):
            result = await Runner.run(agent, "How did BTC close on 2026-11-01?")
            print(result.final_output)
            return
        ohlcv = next(t for t in agent.tools if t.name == "ohlcv")
        args = '{"symbols": ["BTC"], "start": "2026-11-01", "end": "2026-11-01", "interval": null}'
        ctx = ToolContext(None, tool_name="ohlcv", tool_call_id="call_1", tool_arguments=args)
        answer = json.loads(await ohlcv.on_invoke_tool(ctx, args))
        print("close on", answer["rows"][0]["time"][:10], "=", answer["rows"][0]["close"])


if __name__ == "__main__":
    asyncio.run(main())
