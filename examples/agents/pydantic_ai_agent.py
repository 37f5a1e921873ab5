"""A pydantic-ai agent with coinguard's tools (``pip install 'coinguard[pydantic-ai]'``).

    python examples/agents/pydantic_ai_agent.py

``pydantic_ai_tools(tools)`` gives ``Tool`` objects. With ``OPENAI_API_KEY`` set a real model
drives them; without, pydantic-ai's ``FunctionModel`` plays a model that calls ``prices`` once.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import coinguard
from coinguard.agents import pydantic_ai_tools
from coinguard.sandbox import Sandbox


def scripted(messages: list[Any], info: AgentInfo) -> ModelResponse:
    """A stand-in model: call prices, then report what came back."""
    for message in messages:
        for part in getattr(message, "parts", []):
            if isinstance(part, ToolReturnPart):
                rows = part.content["rows"]
                return ModelResponse(parts=[TextPart(json.dumps(rows[0]["symbol"]))])
    return ModelResponse(parts=[ToolCallPart("prices", {"symbols": ["ETH"]})])


async def main() -> None:
    with (
        Sandbox() as sb,
        coinguard.Client(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, on_quota="raise"
        ) as client,
    ):
        tools = pydantic_ai_tools(coinguard.agent_tools(client, agent="pyd"))
        model: Any = "openai:gpt-4.1-mini" if os.environ.get("OPENAI_API_KEY") else None
        agent = Agent(model or FunctionModel(scripted), tools=tools)
        result = await agent.run("What is ETH worth?")
        print("answer:", result.output)


if __name__ == "__main__":
    asyncio.run(main())
