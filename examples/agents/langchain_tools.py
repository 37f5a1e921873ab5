"""LangChain ``StructuredTool`` objects from coinguard's tools (``coinguard[langchain]``).

    python examples/agents/langchain_tools.py

Bind them to any chat model (``model.bind_tools(tools)``); here one is invoked with a tool
call as an agent would, against the embedded sandbox.
"""

from __future__ import annotations

import json

import coinguard
from coinguard.agents import langchain_tools
from coinguard.sandbox import Sandbox


def main() -> None:
    with (
        Sandbox() as sb,
        coinguard.Client(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, on_quota="raise"
        ) as client,
    ):
        tools = {t.name: t for t in langchain_tools(coinguard.agent_tools(client, agent="lc"))}
        call = {"name": "prices", "args": {"symbols": ["SOL"]}, "id": "1", "type": "tool_call"}
        message = tools["prices"].invoke(call)  # a ToolMessage, as an agent loop gets it
        print(type(message).__name__, json.loads(message.content)["rows"][0]["symbol"])


if __name__ == "__main__":
    main()
