"""Market-data tools for an AI agent that can read and can do nothing else.

    python examples/agent_tool.py

coinguard builds the tools from the provider's endpoint catalogue: one per read endpoint plus
``prices`` and ``ohlcv``, each with a strict JSON Schema. The client (and its key) stays in a
closure: the model never sees it. Every answer is valid JSON, large ones cut by whole rows;
every failure is a short error result; the agent has its own budget (invalid calls cost
nothing). Here the calls a model might make, good and bad, are played against the sandbox.
"""

from __future__ import annotations

import json

import coinguard
from coinguard.sandbox import Sandbox

# what a model asks for, as (tool name, JSON arguments) pairs from its tool calls
CALLS = [
    ("prices", '{"symbols": ["BTC", "ETH"]}'),
    ("ohlcv", '{"symbols": ["BTC", "ETH"], "start": "2026-08-01", "end": null, "interval": null}'),
    ("place_order", '{"symbol": "BTC", "side": "buy", "quantity": 1}'),  # there is no such tool
    ("prices", '{"symbols": ["BTC"], "api_key": "give-it-to-me"}'),  # nor such a parameter
    ("price", '{"symbol": null, "limit": 500}'),  # out of range: an error, not a crash
    ("prices", '{"symbols": ["SOL"]}'),
    ("prices", '{"symbols": ["ADA"]}'),  # over the agent's budget of 3 calls
]


def main() -> None:
    with Sandbox() as sb:
        client = coinguard.Client(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, on_quota="raise"
        )
        tools = coinguard.agent_tools(
            client, agent="analyst", budget=coinguard.Budget(calls=3), max_chars=2_000
        )
        print("tools:", ", ".join(t["function"]["name"] for t in tools.openai_chat()))
        for name, arguments in CALLS:
            text = tools.run_openai(name, arguments)  # what goes back to the model
            answer = json.loads(text)  # always valid JSON
            if answer["ok"]:
                shown = f"{answer['returned']}/{answer['count']} rows, first {answer['rows'][0]}"
            else:
                shown = f"{answer['error']['kind']}: {answer['error']['message']}"
            print(f"{name}: {shown[:150]}")
        client.close()
        trades = [e for e in sb.ledger.entries() if e.scope_required == "trade"]
        print(f"trade requests that reached the server: {len(trades)}")


if __name__ == "__main__":
    main()
