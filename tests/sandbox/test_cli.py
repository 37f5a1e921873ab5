"""The `coinguard sandbox` command: JSON announce line, serving, clean exit on signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest

from coinguard._cli import main


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "coinguard._cli", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()


def test_json_line_then_serves_then_exits_0_on_sigterm() -> None:
    """--json prints one line with base_url and keys; the server answers; SIGTERM exits 0."""
    proc = _spawn("--json", "--limit", "20/s", "--limit", "600/min")
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["keys"]) == {"read", "trade", "overprivileged"}
        r = httpx.get(
            info["base_url"] + "/price",
            params={"symbol": "BTC"},
            headers={"x-api-key": info["keys"]["read"]},
            timeout=5,
        )
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"w1";q=20;w=1, "w60";q=600;w=60'
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0


def test_text_mode_says_keys_are_throwaway_and_exits_0_on_sigint() -> None:
    """Text mode prints the URL, the three keys with a note, and SIGINT exits 0."""
    proc = _spawn("--header-style", "legacy", "--error-rate", "0.1")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        assert "http://127.0.0.1:" in lines[0]
        assert "throwaway" in lines[1].lower()
        assert [line.split()[0] for line in lines[2:5]] == ["read", "trade", "overprivileged"]
    finally:
        code = _finish(proc, signal.SIGINT)
    assert code == 0


def test_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    """A non-loopback --host is refused (exit 2) unless --allow-remote is given."""
    assert main(["sandbox", "--host", "192.0.2.1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad limit or rate is a clean error, not a traceback."""
    assert main(["sandbox", "--limit", "fast"]) == 2
    assert "bad limit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["sandbox", "--error-rate", "2"])
    assert info.value.code == 2


def test_a_subcommand_is_required() -> None:
    """Running `coinguard` with no subcommand is a usage error."""
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_bad_cost_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--cost needs PATH=N."""
    assert main(["sandbox", "--cost", "/price"]) == 2
    assert "bad cost" in capsys.readouterr().err
