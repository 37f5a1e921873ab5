"""Overhead of an agent tool call over the direct client call it wraps, over one MockTransport.

The direct call is ``client.call("price", symbol="BTC")`` (typed rows); the tool call is
``tools["price"](symbol="BTC")`` (argument validation, budget, the same call, rows as redacted
JSON-able dicts, the size check) and ``tools.run_openai("price", json)`` (the same plus JSON
parsing and dumping, what a model's tool call costs). The transport answers from memory, so
the difference is the tool layer's own work.

    python benchmarks/tool_overhead.py [--calls 5000] [--rounds 5] [--rows 1]

Prints the best per-call time of each variant and its ratio to the direct call, measured in
the same process, interleaved round by round so machine noise hits every variant alike.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import httpx

import coinguard
from coinguard.providers import tokenmetrics

BASE = "https://api.example.com/v2"


def _client(rows: int) -> coinguard.Client:
    row = {"symbol": "BTC", "price": 91234.5, "timestamp": "2026-11-29T12:00:00Z"}
    body = json.dumps({"success": True, "message": "ok", "length": rows, "data": [row] * rows})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    provider = coinguard.Provider(
        name="bench", base_url=BASE, envelope=True, endpoints=tokenmetrics.endpoints()
    )
    return coinguard.Client(
        provider=provider,
        read_key="bench-read-key-1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        quota=None,
    )


def _time(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1, help="rows in each answer")
    args = parser.parse_args()
    client = _client(args.rows)
    tools = coinguard.agent_tools(client, max_rows=10**6, max_chars=10**9)
    budgeted = coinguard.agent_tools(
        client, agent="bench", budget=coinguard.Budget(calls=10**9, credits=10**9, per="minute")
    )
    variants: dict[str, Callable[[], object]] = {
        "direct client.call": lambda: client.call("price", symbol="BTC"),
        "tool call": lambda: tools["price"](symbol="BTC"),
        "tool call with a budget": lambda: budgeted["price"](symbol="BTC"),
        "run_openai (JSON in/out)": lambda: tools.run_openai("price", '{"symbol": "BTC"}'),
    }
    assert tools["price"](symbol="BTC")["count"] == args.rows
    for call in variants.values():
        _time(call, 200)  # warm-up
    best = {name: float("inf") for name in variants}
    for _ in range(args.rounds):
        for name, call in variants.items():
            best[name] = min(best[name], _time(call, args.calls))
    base = best["direct client.call"]
    print(f"calls per round: {args.calls}, rounds: {args.rounds}, rows per answer: {args.rows}")
    for name, seconds in best.items():
        print(f"{name:<28} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")
    client.close()


if __name__ == "__main__":
    main()
