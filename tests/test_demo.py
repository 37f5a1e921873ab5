"""The main job: the demo runs end to end on the embedded sandbox and tells the truth."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from coinguard._demo import run_demo

ROOT = Path(__file__).resolve().parents[1]


def _run_example(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENMETRICS_API_KEY", raising=False)


def test_demo_runs_every_step_and_exits_zero() -> None:
    """Every section prints, the order is not duplicated, no key reaches the logs."""
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    for needle in (
        "1. Market data",
        "BTC",
        "50/s",
        "ScopeError",
        "order requests that reached the server: 0",
        "can_trade=False",
        "the read key can trade",
        "orders that exist: 1",
        "keys found in them: 0",
        "windows exceeded on the server: 0",
        "<key fp:",
    ):
        assert needle in text, needle


def test_quickstart_script_runs_as_a_newcomer_would() -> None:
    """`python examples/quickstart.py` works from a plain interpreter and prints no sandbox key."""
    proc = _run_example("quickstart.py")
    assert proc.returncode == 0, proc.stderr
    assert "sbx_" not in proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_demo_reads_from_the_real_api_when_a_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """With TOKENMETRICS_API_KEY set, step 1 goes to api.tokenmetrics.com with that key."""
    import respx

    monkeypatch.setenv("TOKENMETRICS_API_KEY", "tm-demo-key-123-abcdefgh")
    body = {"success": True, "message": "", "length": 1, "data": [{"symbol": "BTC", "price": 1}]}
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get("https://api.tokenmetrics.com/v2/price").respond(json=body)
        mock.route(host="127.0.0.1").pass_through()
        out = io.StringIO()
        assert run_demo(out) == 0
    assert route.calls.last.request.headers["x-api-key"] == "tm-demo-key-123-abcdefgh"
    assert "real API" in out.getvalue()
    assert "tm-demo-key-123-abcdefgh" not in out.getvalue()


def test_agent_tool_example_refuses_what_an_agent_must_not_do() -> None:
    """examples/agent_tool.py: reads work; trading, exfiltrating, smuggling, overspending fail."""
    proc = _run_example("agent_tool.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in (
        '"symbol": "BTC"',
        "ScopeError",
        "InsecureTransportError",
        "QuotaExceededError",
        "trade requests that reached the server: 0",
    ):
        assert needle in out, needle
    assert "sbx_" not in out
