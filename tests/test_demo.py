"""The main job: the demo runs end to end on the embedded sandbox and tells the truth."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coinguard._demo import run_demo
from coinguard.sandbox import Sandbox, SandboxConfig, Window

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
    monkeypatch.delenv("COINGUARD_BASE_URL", raising=False)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _sections(text: str) -> list[str]:
    return re.findall(r"^== (\d)\.", text, flags=re.MULTILINE)


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
        "8. Signed trading",
        "signed read of /api/v3/account",
        "sent 1 time, orders that exist: 1",
    ):
        assert needle in text, needle
    signed = text.split("== 8.")[1]
    assert "order requests that reached the server: 0" in signed  # the read-only client


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
    """examples/agent_tool.py: reads work, a large answer is cut by rows, a made-up tool or
    parameter and an out-of-range value are error results, overspending is refused."""
    proc = _run_example("agent_tool.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in (
        "prices: 2/2 rows, first {'symbol': 'BTC'",
        "ohlcv: ",
        "place_order: unknown_tool: no tool 'place_order'",
        "prices: invalid_arguments: invalid arguments: api_key: Extra inputs are not permitted",
        "price: invalid_arguments: invalid arguments: limit: Input should be less than or equal",
        "prices: budget_spent: budget spent: 3/3 calls this day",
        "trade requests that reached the server: 0",
    ):
        assert needle in out, needle
    assert "/242 rows" in out
    assert "sbx_" not in out
    assert "Traceback" not in out + proc.stderr


def test_demo_with_a_real_key_and_no_network_degrades_to_one_line(closed_port: int) -> None:
    """TOKENMETRICS_API_KEY set, API unreachable: one note, every sandbox step, exit 0."""
    env = {
        **os.environ,
        "TOKENMETRICS_API_KEY": "tm-demo-key-unreachable",
        # the real host is never contacted in tests: the client honours COINGUARD_BASE_URL
        "COINGUARD_BASE_URL": f"http://127.0.0.1:{closed_port}/v2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "coinguard._cli", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    notes = [line for line in proc.stdout.splitlines() if "could not reach Token Metrics" in line]
    assert len(notes) == 1
    assert notes[0].endswith("; showing the sandbox instead")
    assert "Traceback" not in proc.stdout
    assert "tm-demo-key-unreachable" not in proc.stdout
    assert _sections(proc.stdout) == ["0", "1", "2", "3", "4", "5", "6", "7", "8"]


@pytest.mark.parametrize("failure", ["rejected key", "429"])
def test_demo_goes_on_when_the_api_rejects_or_limits(
    failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 (rejected key) or a 429 from the 'real' API is one line, then the sandbox steps."""
    config = SandboxConfig(windows=(Window(1, 3600.0),))
    with Sandbox(config) as api:
        key = "not-a-key-of-this-server" if failure == "rejected key" else api.keys.read
        if failure == "429":  # spend the one-per-hour window first
            httpx.get(f"{api.base_url}/tokens", headers={"x-api-key": key}, timeout=5)
        monkeypatch.setenv("TOKENMETRICS_API_KEY", key)
        monkeypatch.setenv("COINGUARD_BASE_URL", api.base_url)
        out = io.StringIO()
        assert run_demo(out) == 0
    text = out.getvalue()
    expected = "HTTP 401" if failure == "rejected key" else "HTTP 429"
    (note,) = [line for line in text.splitlines() if "could not reach Token Metrics" in line]
    assert expected in note
    assert key not in text
    assert _sections(text) == ["0", "1", "2", "3", "4", "5", "6", "7", "8"]


def test_demo_steps_explain_themselves() -> None:
    """Step 2 names the cost of 2, step 5's retry says why it is safe, step 6 shows every line."""
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert "GET /daily-ohlcv costs 2" in text
    assert "so each window has used 3 units" in text
    retry = [line for line in text.splitlines() if "retrying POST /orders" in line]
    assert len(retry) == 1
    assert "safe to re-send: the same Idempotency-Key goes with it" in retry[0]
    step6 = text.split("== 6.")[1].splitlines()[1:]
    shown = [line for line in step6 if re.match(r"   [\w.]+ (INFO|WARNING) ", line)]
    (count,) = re.findall(r"(\d+) log lines", text)
    assert len(shown) == int(count)


def test_demo_does_not_flag_the_good_read_key_as_old() -> None:
    """Only the over-privileged key is old; the good read key's line carries no age finding."""
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    read_fp = re.search(r"read key (fp:[0-9a-f]{12}): can_read", text)
    assert read_fp is not None
    old = [line for line in text.splitlines() if "days old" in line]
    assert old
    assert not [line for line in old if read_fp.group(1) in line]
    assert "KeyAgeWarning" not in text


def test_demo_survives_an_unexpected_answer_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'real' answer without a data list prints nothing for it and the demo goes on."""
    import respx

    monkeypatch.setenv("TOKENMETRICS_API_KEY", "tm-demo-key-456-abcdefgh")
    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://api.tokenmetrics.com/v2/price").respond(json={"success": True})
        mock.route(host="127.0.0.1").pass_through()
        out = io.StringIO()
        assert run_demo(out) == 0
    assert _sections(out.getvalue()) == ["0", "1", "2", "3", "4", "5", "6", "7", "8"]
