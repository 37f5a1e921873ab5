"""The MCP server, driven by the official SDK's own client: in memory, over stdio from
`coinguard mcp`, and over streamable HTTP behind a bearer token."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

import coinguard
from coinguard.agents import mcp_server
from coinguard.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def _spellings(value: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    return [value, quote(value, safe=""), quote_plus(value), value[4:-4]]


async def test_in_memory_lists_and_calls_tools(box: Sandbox) -> None:
    """Every tool is listed read-only; a read returns structured content; a bad call and a
    spent budget come back as is_error results, with nothing sent."""
    with coinguard.Client(provider="sandbox", base_url=box.base_url, read_key=box.keys.read) as c:
        tools = coinguard.agent_tools(c, budget=coinguard.Budget(calls=2))
        async with Client(mcp_server(tools)) as mcp:
            listed = (await mcp.list_tools()).tools
            assert [t.name for t in listed] == tools.names()
            for tool in listed:
                assert tool.input_schema == tools[tool.name].json_schema()
                assert tool.annotations.read_only_hint is True
                assert tool.annotations.destructive_hint is False
                assert "key" not in json.dumps(tool.input_schema).lower()
            answer = await mcp.call_tool("prices", {"symbols": ["BTC", "ETH"]})
            assert answer.is_error is False
            assert [r["symbol"] for r in answer.structured_content["rows"]] == ["BTC", "ETH"]
            bad = await mcp.call_tool("price", {"symbol": "NOPE"})
            assert bad.is_error is True
            assert "unknown symbol 'NOPE'" in bad.content[0].text
            sent = len(box.ledger.entries())
            spent = await mcp.call_tool("price", {"symbol": "BTC"})
            assert spent.is_error is True
            assert '"kind": "budget_spent"' in spent.content[0].text
            assert len(box.ledger.entries()) == sent


def _stdio(box: Sandbox, tmp_path: Path, *extra: str) -> StdioServerParameters:
    """`coinguard mcp` as an MCP client starts it, its stdin and stdout copied to files."""
    exe = shutil.which("coinguard", path=str(Path(sys.executable).parent))
    assert exe is not None
    command = " ".join(
        [f"tee {tmp_path / 'in.log'} |", exe, "mcp", "--provider", "sandbox",
         "--base-url", box.base_url, *extra, f"| tee {tmp_path / 'out.log'}"]
    )  # fmt: skip
    # the child inherits only a few variables: the key goes in env=, as a client config does,
    # by reference, so the config holds no key
    key_file = tmp_path / "read.key"
    key_file.write_text(box.keys.read)
    key_file.chmod(0o600)
    return StdioServerParameters(
        command="bash",
        args=["-c", command],
        env={"COINGUARD_READ_KEY_REF": f"file://{key_file}", "COINGUARD_QUOTA_PERSIST": ""},
    )


async def test_stdio_server_from_the_command_line(box: Sandbox, tmp_path: Path) -> None:
    """Spawned over stdio with the key given by a secret reference: tools listed, a read
    answered, no trade tool, the budget enforced, and the key in no byte of the wire nor of
    the server's stderr."""
    errlog = (tmp_path / "err.log").open("w")
    params = _stdio(box, tmp_path, "--budget-calls", "2")
    try:
        async with Client(stdio_client(params, errlog=errlog)) as mcp:
            listed = (await mcp.list_tools()).tools
            assert "prices" in [t.name for t in listed]
            assert all(t.annotations.read_only_hint for t in listed)
            assert not [t.name for t in listed if "order" in t.name]
            answer = await mcp.call_tool("ohlcv", {"symbols": ["BTC"], "start": "2026-11-01",
                                                   "end": "2026-11-03"})  # fmt: skip
            assert answer.structured_content["count"] == 3
            assert (await mcp.call_tool("price", {"symbol": "BTC"})).is_error is False
            over = await mcp.call_tool("price", {"symbol": "BTC"})
            assert over.is_error is True
            assert "budget spent: 2/2 calls" in over.content[0].text
    finally:
        errlog.close()
    wire = (tmp_path / "in.log").read_text() + (tmp_path / "out.log").read_text()
    stderr = (tmp_path / "err.log").read_text()
    assert "tools/call" in wire
    assert "tool call agent=mcp tool=price outcome=budget_spent" in stderr
    for needle in _spellings(box.keys.read):
        assert needle not in wire
        assert needle not in stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["env", "file", "ref"])
def http_server(
    box: Sandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, str, Path]]:
    """The server, its bearer token given as a value, a file, or a secret reference."""
    port = _free_port()
    token = "T0KEN-" + os.urandom(12).hex()
    held = tmp_path / "token"
    held.write_text(token + "\n")
    given = {
        "env": {"COINGUARD_MCP_TOKEN": token},
        "file": {"COINGUARD_MCP_TOKEN_FILE": str(held)},
        "ref": {"COINGUARD_MCP_TOKEN_REF": f"file://{held}"},
    }[request.param]
    env = {**os.environ, "COINGUARD_READ_KEY": box.keys.read, "COINGUARD_QUOTA_PERSIST": "",
           **given}  # fmt: skip
    for name in ("COINGUARD_MCP_TOKEN", "COINGUARD_MCP_TOKEN_FILE", "COINGUARD_MCP_TOKEN_REF"):
        if name not in given:
            env.pop(name, None)
    log = tmp_path / "http.log"
    exe = Path(sys.executable).parent / "coinguard"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(exe), "mcp", "--provider", "sandbox", "--base-url", box.base_url, "--http",
             "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", token, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_http_needs_the_bearer_token(http_server: tuple[str, str, Path]) -> None:
    """Streamable HTTP on loopback: without the token a 401, with it the tools answer."""
    import httpx2

    url, token, log = http_server
    async with httpx2.AsyncClient() as anonymous:
        ask = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        refused = await anonymous.post(url, json=ask)
        wrong = await anonymous.post(url, json=ask, headers={"Authorization": "Bearer nope"})
    assert refused.status_code == wrong.status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers) as http:
        from mcp.client.streamable_http import streamable_http_client

        async with Client(streamable_http_client(url, http_client=http)) as mcp:
            answer = await mcp.call_tool("prices", {"symbols": ["SOL"]})
    assert answer.structured_content["rows"][0]["symbol"] == "SOL"
    assert token not in log.read_text()


def test_http_refuses_a_public_bind_and_a_missing_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--http on a non-loopback host, or without a token, exits 2 before serving."""
    from coinguard._cli import main

    monkeypatch.setenv("COINGUARD_MCP_TOKEN", "long-enough-token-value")
    assert main(["mcp", "--http", "--host", "0.0.0.0"]) == 2  # noqa: S104
    assert "refusing to bind 0.0.0.0: not loopback" in capsys.readouterr().err
    monkeypatch.delenv("COINGUARD_MCP_TOKEN")
    assert main(["mcp", "--http"]) == 2
    assert "needs a bearer token" in capsys.readouterr().err
