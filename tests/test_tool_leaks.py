"""The canary suite for agent tools: a server that echoes the key in rows, error messages and
headers; the key shows in no schema, result, error, adapter output, MCP message, wire byte or
log line."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import coinguard
from coinguard.agents import langchain_tools, mcp_server, openai_agents_tools

if TYPE_CHECKING:
    from conftest import Canary


def _echoing(canary: Canary) -> Callable[[Any], Any]:
    """A Token-Metrics-shaped server that puts the key wherever a careless one would."""

    def route(seen: Any) -> Any:
        query = dict(seen.query)
        symbol = query.get("symbol", "")
        if seen.path.endswith("/tokens"):
            row = {"token_id": 1, "symbol": "BTC", "name": f"echo {canary.value}"}
            return {"body": {"success": True, "data": [row]}, "headers": {"x-echo": canary.value}}
        if symbol == "LIMIT":
            body = {"success": False, "message": f"slow down {canary.value}"}
            return {"status": 429, "body": body, "headers": {"retry-after": "7"}}
        if symbol == "AUTH":
            return {"status": 401, "body": {"success": False, "message": f"bad {canary.value}"}}
        if symbol == "BOOM":
            return {"status": 500, "body": f"<html>{canary.value}</html>"}
        return {"status": 400, "body": {"success": False, "message": f"no {canary.value}"}}

    return route


@pytest.fixture
def stage(
    http_server: Callable[[Any], Any], make_canary: Callable[[str], Canary]
) -> tuple[Canary, Any]:
    canary = make_canary("READ")
    return canary, http_server(_echoing(canary))


def _client(canary: Canary, server: Any) -> coinguard.Client:
    return coinguard.Client(
        provider="tokenmetrics",
        base_url=server.url("/v2"),
        read_key=canary.value,
        retry=coinguard.RetryPolicy(max_retries=0),
        on_quota="raise",
    )


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("tokens", {}),
    ("price", {"symbol": "AUTH"}),
    ("price", {"symbol": "BOOM"}),
    ("price", {"symbol": "NOPE"}),
    ("prices", {"symbols": ["NOPE"]}),
    ("ohlcv", {"symbols": ["BOOM"], "start": "2026-11-01", "end": "2026-11-02"}),
    ("price", {"symbol": 5, "extra": "x"}),
    ("price", {"symbol": "LIMIT"}),  # last: the key's penalty box refuses what follows
]


def test_results_errors_schemas_and_logs_never_show_the_key(
    stage: tuple[Canary, Any], log_capture: Any
) -> None:
    """Every tool call (a row holding the key, 429, 401, 500 with HTML, 400, bad arguments),
    every schema and export, and the logs: no spelling of the key."""
    canary, server = stage
    texts: list[str] = []
    with _client(canary, server) as client:
        tools = coinguard.agent_tools(client, agent="canary", budget=coinguard.Budget(calls=50))
        for name, arguments in CALLS:
            texts.append(json.dumps(tools[name](**arguments)))
            texts.append(tools[name].invoke_json(json.dumps(arguments)))
        texts.append(json.dumps(tools.openai_chat()) + json.dumps(tools.openai_responses()))
        texts.append(repr(tools) + "".join(repr(t) for t in tools))
        for tool in langchain_tools(tools):
            if tool.name == "tokens":
                texts.append(tool.invoke({}))
        for tool in openai_agents_tools(tools):
            texts.append(tool.name + tool.description + json.dumps(tool.params_json_schema))
    kinds = [json.loads(t)["error"]["kind"] for t in texts[2:16:2]]
    assert kinds == [
        "unavailable",
        "provider_error",
        "provider_error",
        "provider_error",
        "provider_error",
        "invalid_arguments",
        "rate_limited",
    ]
    assert json.loads(texts[0])["rows"][0]["name"].startswith("echo <key fp:")
    texts.append(log_capture.text)
    found = [needle for text in texts for needle in canary.found_in(text)]
    assert found == []


@pytest.mark.anyio
async def test_mcp_messages_never_show_the_key(stage: tuple[Canary, Any]) -> None:
    """Listing and calling through the MCP SDK's client: every message is clean."""
    from mcp import Client

    canary, server = stage
    texts: list[str] = []
    with _client(canary, server) as client:
        async with Client(mcp_server(coinguard.agent_tools(client))) as mcp:
            texts.append((await mcp.list_tools()).model_dump_json())
            for name, arguments in CALLS:
                texts.append((await mcp.call_tool(name, arguments)).model_dump_json())
    assert '"is_error":true' in texts[2]
    assert "retry in 7 s" in texts[-1]
    assert [needle for text in texts for needle in canary.found_in(text)] == []


@pytest.mark.anyio
async def test_the_stdio_wire_and_stderr_never_show_the_key(
    stage: tuple[Canary, Any], tmp_path: Path
) -> None:
    """`coinguard mcp` over stdio with the key in its environment, as a client config gives
    it: both directions of the wire and the server's stderr are clean."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    canary, server = stage
    exe = shutil.which("coinguard", path=str(Path(sys.executable).parent))
    command = (
        f"tee {tmp_path / 'in.log'} | {exe} mcp --provider tokenmetrics "
        f"--base-url {server.url('/v2')} --max-retries 0 | tee {tmp_path / 'out.log'}"
    )
    params = StdioServerParameters(
        command="bash",
        args=["-c", command],
        env={"TOKENMETRICS_API_KEY": canary.value, "COINGUARD_QUOTA_PERSIST": ""},
    )
    with (tmp_path / "err.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as mcp:
            for name, arguments in CALLS:
                await mcp.call_tool(name, arguments)
    texts = [(tmp_path / name).read_text() for name in ("in.log", "out.log", "err.log")]
    assert "tools/call" in texts[0]
    assert "rate limited by the provider, retry in 7 s" in texts[1]
    assert [needle for text in texts for needle in canary.found_in(text)] == []
