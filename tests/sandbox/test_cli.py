"""The `coinguard` command line: help and version, and `coinguard sandbox` (announce lines,
environment lines, a .env writer, serving, clean exit on signals)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import coinguard
from coinguard._cli import _build_parser, main


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


def test_bare_coinguard_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`coinguard` alone prints the help (commands and examples) to stdout, exit 0."""
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: coinguard")
    for command in ("demo", "sandbox", "doctor"):
        assert f"    {command}  " in out
    assert err == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`coinguard --version` prints the installed version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"coinguard {coinguard.__version__}\n"


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = _build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"coinguard": parser, **commands.choices}


def test_help_is_plain_text() -> None:
    """No reStructuredText markup (``...``) in any help text."""
    for name, parser in _parsers().items():
        text = parser.format_help()
        assert "``" not in text, name
        assert ":func:" not in text, name


@pytest.mark.parametrize("command", ["coinguard", "demo", "sandbox", "doctor"])
def test_every_option_has_help_and_states_its_default(command: str) -> None:
    """Each option says what it does; an option with a default value says which."""
    parser = _parsers()[command]
    for action in parser._actions:
        if not action.option_strings:
            continue
        assert action.help, action.option_strings
        if action.default not in (None, False, argparse.SUPPRESS):
            default = action.default
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"(default {shown})" in action.help, action.option_strings


def _env_lines(proc: subprocess.Popen[str]) -> tuple[dict[str, str], str]:
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while True:
        line = proc.stdout.readline()
        if line.startswith("# then: "):
            return env, line.removeprefix("# then: ").strip()
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        env[name] = value


def test_env_prints_lines_a_shell_evals_and_a_working_python_example(tmp_path: Path) -> None:
    """--env prints export lines and a one-line example; bash evals the lines and runs the
    example exactly as printed, and it reads a price from the sandbox."""
    proc = _spawn("--env")
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline() for _ in range(4)]
        exports, example = printed[:3], printed[3]
        assert [line.split("=")[0] for line in exports] == [
            "export COINGUARD_BASE_URL",
            "export COINGUARD_READ_KEY",
            "export COINGUARD_TRADE_KEY",
        ]
        assert example.startswith("# then: python -c ")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("COINGUARD_")}
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        script = f"eval \"$(cat <<'EOF'\n{''.join(exports)}EOF\n)\"\n"
        script += example.removeprefix("# then: ")
        done = subprocess.run(
            ["bash", "-c", script],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0
    assert done.returncode == 0, done.stderr
    assert "'symbol': 'BTC'" in done.stdout


def test_env_file_is_written_0600_and_read_by_a_client(tmp_path: Path) -> None:
    """--env-file writes the same lines (mode 0600); Client(env_file=...) reaches the sandbox."""
    path = tmp_path / "sandbox.env"
    proc = _spawn("--env-file", str(path))
    try:
        assert proc.stdout is not None
        text = "".join(proc.stdout.readline() for _ in range(11))
        assert "export COINGUARD_BASE_URL=http://127.0.0.1:" in text
        assert "python -c" in text
        assert f"Client(env_file={str(path)!r})" in text
        assert path.stat().st_mode & 0o777 == 0o600
        with coinguard.Client(provider="sandbox", env_file=path) as client:
            assert client.get("/price", params={"symbol": "BTC"})["data"][0]["symbol"] == "BTC"
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0


def test_query_auth_example_uses_a_query_key() -> None:
    """With --auth query, the printed example sends the key where that sandbox expects it."""
    proc = _spawn("--env", "--auth", "query")
    try:
        _, example = _env_lines(proc)
    finally:
        _finish(proc, signal.SIGTERM)
    assert 'QueryKey("api_key")' in example


def test_bad_cost_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--cost needs PATH=N."""
    assert main(["sandbox", "--cost", "/price"]) == 2
    assert "bad cost" in capsys.readouterr().err


def test_an_unwritable_env_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--env-file into a missing directory says it cannot write the file (exit 2)."""
    target = tmp_path / "no-such-dir" / "sandbox.env"
    assert main(["sandbox", "--port", "0", "--env-file", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {target}" in err
    assert "cannot bind" not in err


@pytest.mark.parametrize("profile", ["coingecko", "coinmarketcap"])
def test_profile_json_line_names_its_roots_and_keys(profile: str) -> None:
    """--profile serves that emulation: --json gives its roots and keys, and a key works."""
    proc = _spawn("--json", "--profile", profile)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        if profile == "coingecko":
            assert set(info["keys"]) == {"read", "pro"}
            assert info["pro_base_url"].endswith("/pro/api/v3")
            url, header, key = info["pro_base_url"] + "/ping", "x-cg-pro-api-key", "pro"
        else:
            assert set(info["keys"]) == {"read"}
            url, header, key = info["base_url"] + "/v1/key/info", "X-CMC_PRO_API_KEY", "read"
        r = httpx.get(url, headers={header: info["keys"][key]}, timeout=5)
        assert r.status_code == 200
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0


def test_profile_env_lines_point_a_client_at_the_emulation() -> None:
    """--profile coinmarketcap --env: the export lines and the example use that provider."""
    proc = _spawn("--env", "--profile", "coinmarketcap")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        _finish(proc, signal.SIGTERM)
    assert lines[0].startswith("export COINGUARD_BASE_URL=http://127.0.0.1:")
    assert lines[1].startswith("export COINGUARD_READ_KEY=")
    assert 'provider=\\"coinmarketcap\\"' in lines[2] or 'provider="coinmarketcap"' in lines[2]


@pytest.mark.parametrize(
    ("profile", "shown"),
    [("binance", "'balances'"), ("kraken", "'ZUSD'")],
    ids=["binance", "kraken"],
)
def test_signed_profile_env_lines_run_a_signed_read(
    tmp_path: Path, profile: str, shown: str
) -> None:
    """--profile binance or kraken with --env exports both key pairs and the origin; the
    printed example makes a signed private read against the emulation."""
    proc = _spawn("--profile", profile, "--env")
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline() for _ in range(6)]
        exports, example = printed[:5], printed[5]
        assert [line.split("=")[0] for line in exports] == [
            "export COINGUARD_BASE_URL",
            "export COINGUARD_READ_KEY",
            "export COINGUARD_READ_SECRET",
            "export COINGUARD_TRADE_KEY",
            "export COINGUARD_TRADE_SECRET",
        ]
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("COINGUARD_", "BIN", "KRAK"))
        }
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        script = f"eval \"$(cat <<'EOF'\n{''.join(exports)}EOF\n)\"\n"
        script += example.removeprefix("# then: ")
        done = subprocess.run(
            ["bash", "-c", script],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout


def test_coinbase_profile_env_lines_run_a_jwt_signed_read(tmp_path: Path) -> None:
    """--profile coinbase --env exports the origin, the CDP key names and their PEM private
    keys (quoted across lines); the printed example reads key_permissions with a JWT."""
    proc = _spawn("--profile", "coinbase", "--env")
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        while not printed or not printed[-1].startswith("# then: "):
            printed.append(proc.stdout.readline())
        exports, example = "".join(printed[:-1]), printed[-1]
        names = [line.split("=")[0] for line in exports.splitlines() if line.startswith("export")]
        assert names == [
            "export COINGUARD_BASE_URL",
            "export COINGUARD_READ_KEY",
            "export COINGUARD_READ_SECRET",
            "export COINGUARD_TRADE_KEY",
            "export COINGUARD_TRADE_SECRET",
        ]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("COINGUARD_", "COIN"))}
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        script = f"eval \"$(cat <<'EOF'\n{exports}EOF\n)\"\n"
        script += example.removeprefix("# then: ")
        done = subprocess.run(
            ["bash", "-c", script],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    finally:
        code = _finish(proc, signal.SIGTERM)
    assert code == 0
    assert done.returncode == 0, done.stderr
    assert "'can_view': True" in done.stdout
