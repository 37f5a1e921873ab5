"""OpenAI Chat Completions function calling with coinguard's tools.

    python examples/agents/openai_chat.py

``tools.openai_chat()`` is the ``tools=`` list (strict mode); ``tools.run_openai(name, args)``
answers a tool call with JSON text. With ``OPENAI_API_KEY`` set it asks a real model;
without, it plays the tool call a model would make, against the embedded sandbox.
"""

from __future__ import annotations

import json
import os

import coinguard
from coinguard.sandbox import Sandbox


def ask_model(tools: coinguard.Toolset, question: str) -> str:
    """One round trip: the model calls tools, gets their JSON, then answers."""
    from openai import OpenAI

    llm = OpenAI()
    messages: list[dict] = [{"role": "user", "content": question}]
    while True:
        reply = (
            llm.chat.completions.create(
                model="gpt-4.1-mini", messages=messages, tools=tools.openai_chat()
            )
            .choices[0]
            .message
        )
        if not reply.tool_calls:
            return reply.content or ""
        messages.append(reply.model_dump(exclude_none=True))
        for call in reply.tool_calls:
            answer = tools.run_openai(call.function.name, call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})


def main() -> None:
    with (
        Sandbox() as sb,
        coinguard.Client(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, on_quota="raise"
        ) as client,
    ):
        tools = coinguard.agent_tools(client, agent="chat", budget=coinguard.Budget(calls=20))
        if os.environ.get("OPENAI_API_KEY"):
            print(ask_model(tools, "What are BTC and ETH worth now?"))
            return
        schema = tools.openai_chat()[tools.names().index("prices")]
        print("tool:", schema["function"]["name"], "strict:", schema["function"]["strict"])
        answer = json.loads(tools.run_openai("prices", '{"symbols": ["BTC", "ETH"]}'))
        print("answer:", [(r["symbol"], r["price"]) for r in answer["rows"]])


if __name__ == "__main__":
    main()
