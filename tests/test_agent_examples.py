"""The examples in examples/agents run offline (no model) and exercise each framework's tool
path; the MCP client config starts a command the parser accepts, with no key in it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from coinguard._cli import _build_parser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "agents"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("openai_chat.py", "tool: prices strict: True"),
        ("openai_agents_sdk.py", "close on 2026-11-01 = "),
        ("langchain_tools.py", "ToolMessage SOL"),
        ("pydantic_ai_agent.py", 'answer: "ETH"'),
        ("mcp_client.py", "BTC: True"),
    ],
)
def test_each_framework_example_runs_its_tool_path(script: str, expected: str) -> None:
    """Without OPENAI_API_KEY each example calls a tool the framework's way and prints it."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert "sbx_" not in proc.stdout + proc.stderr


def test_the_mcp_config_names_a_secret_reference_and_valid_options() -> None:
    """mcp_config.json: `coinguard mcp` with options its parser has, the key by reference."""
    config = json.loads((EXAMPLES / "mcp_config.json").read_text())
    server = config["mcpServers"]["coinguard"]
    assert server["command"] == "coinguard"
    args = _build_parser().parse_args(server["args"])
    assert args.command == "mcp"
    assert args.budget_calls == 200
    assert set(server["env"]) == {"COINGUARD_READ_KEY_REF"}
    assert server["env"]["COINGUARD_READ_KEY_REF"].startswith("keyring://")
    assert shlex.join(server["args"]).startswith("mcp --provider tokenmetrics")
