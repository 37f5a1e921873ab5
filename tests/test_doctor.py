"""``coinguard doctor``: key sources, fingerprints, findings and exit codes, never a key value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import coinguard
from coinguard._cli import main
from coinguard._doctor import diagnose
from coinguard.sandbox import Sandbox

if TYPE_CHECKING:
    from conftest import Canary

VARS = [
    f"COINGUARD_{scope}_{kind}{suffix}"
    for scope in ("READ", "TRADE")
    for kind in ("KEY", "SECRET")
    for suffix in ("", "_FILE", "_REF")
] + [
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "BINANCE_TRADE_API_KEY",
    "BINANCE_TRADE_API_SECRET",
    "COINGUARD_SANDBOX_READ_KEY",
    "COINGUARD_SANDBOX_TRADE_KEY",
    "TOKENMETRICS_API_KEY",
    "COINGUARD_BASE_URL",
]


ENTRY = "from coinguard._cli import main; raise SystemExit(main())"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test runs in an empty directory with no key variables and no user git config."""
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def canary(make_canary: Callable[[str], Canary]) -> Canary:
    """A fake key whose every spelling is searched for in the output."""
    return make_canary("DOCTOR")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox server with the default keys (read key 30 days old)."""
    with Sandbox() as sb:
        yield sb


Doctor = Callable[..., tuple[int, str]]


@pytest.fixture
def doctor(capsys: pytest.CaptureFixture[str], canary: Canary) -> Doctor:
    """Run ``coinguard doctor ARGS`` in-process; fail if any secret shows in stdout or stderr."""

    def run(*args: str, secrets: tuple[str, ...] = ()) -> tuple[int, str]:
        code = main(["doctor", *args])
        out, err = capsys.readouterr()
        for text in (out, err):
            assert canary.found_in(text) == []
            assert not [s for s in secrets if s in text]
        return code, out

    return run


def _report(doctor: Doctor, *args: str, secrets: tuple[str, ...] = ()) -> tuple[int, Any]:
    code, out = doctor("--json", *args, secrets=secrets)
    return code, json.loads(out)


def _codes(report: Any) -> list[str]:
    return [f["code"] for f in report["findings"]]


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git repository in the test directory, with a local identity."""
    _git("init", "-q")
    _git("config", "user.email", "doctor@example.com")
    _git("config", "user.name", "Doctor Test")
    _git("config", "commit.gpgsign", "false")
    return tmp_path


def _commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    _git("add", *files)
    _git("commit", "-q", "-m", "add files")


def test_clean_setup_exits_zero(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read key from the environment, no repo, no files: no findings and exit 0."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    code, out = doctor()
    assert code == 0
    assert "No findings." in out


def test_env_key_shows_source_and_fingerprint(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source names the variable and the fingerprint is coinguard.fingerprint of the value."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    out = doctor()[1]
    assert "settings COINGUARD_READ_KEY" in out
    assert coinguard.fingerprint(canary.value) in out
    _, report = _report(doctor)
    (read,) = report["keys"]
    assert read["reference"] == "COINGUARD_READ_KEY"
    assert read["fingerprint"] == coinguard.fingerprint(canary.value)


def test_provider_variable_is_used_last(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --provider, the provider's own variable is a source, as in the client."""
    monkeypatch.setenv("COINGUARD_SANDBOX_READ_KEY", canary.value)
    code, report = _report(doctor, "--provider", "sandbox")
    assert code == 0
    assert report["keys"][0]["source"] == "env var COINGUARD_SANDBOX_READ_KEY"


@pytest.mark.parametrize(("mode", "expected"), [(0o644, ["file-permissions"]), (0o600, [])])
def test_key_file_mode(
    doctor: Doctor,
    canary: Canary,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: int,
    expected: list[str],
) -> None:
    """A key file open to group/others is a finding (mode bits, also as root); 0600 is not."""
    path = tmp_path / "read.key"
    path.write_text(canary.value + "\n")
    path.chmod(mode)
    monkeypatch.setenv("COINGUARD_READ_KEY_FILE", str(path))
    code, report = _report(doctor)
    assert _codes(report) == expected
    assert code == (1 if expected else 0)
    assert report["keys"][0]["fingerprint"] == coinguard.fingerprint(canary.value)


def test_file_ref_mode_and_age(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file:// reference is mode-checked, and its mtime counts as the last rotation."""
    path = tmp_path / "read.key"
    path.write_text(canary.value)
    path.chmod(0o640)
    old = (datetime.now(timezone.utc) - timedelta(days=200)).timestamp()
    os.utime(path, (old, old))
    monkeypatch.setenv("COINGUARD_READ_KEY_REF", f"file://{path}")
    code, report = _report(doctor)
    assert code == 1
    assert sorted(_codes(report)) == ["file-permissions", "key-age"]
    assert "200 days old" in " ".join(f["message"] for f in report["findings"])
    assert report["keys"][0]["rotated_at"] is not None


def test_remote_reference_is_not_fetched_offline(
    doctor: Doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --verify a remote secret store is named but never asked for the key."""
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv("COINGUARD_READ_KEY_REF", "vault://secret/coinguard/tm#read_key")
    code, report = _report(doctor)
    assert code == 0
    (read,) = report["keys"]
    assert read["reference"] == "vault://secret/coinguard/tm#read_key"
    assert read["fingerprint"] is None
    assert "--verify" in read["note"]


def test_tracked_env_file(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    """A .env file tracked by git is a finding; a tracked .env.example is not."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    _commit(repo, {".env": "OTHER=1\n", ".env.example": "COINGUARD_READ_KEY=\n"})
    code, report = _report(doctor)
    assert code == 1
    assert _codes(report) == ["env-file-tracked"]
    assert report["findings"][0]["message"] == ".env is tracked by git"
    assert report["findings"][0]["path"] == ".env"


def test_committed_key_names_file_and_line(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    """A key in a tracked file is reported as file:line, without the line's text."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    (repo / "sub").mkdir()
    _commit(repo, {"sub/config.py": f'import os\n\nTOKEN = "{canary.value}"  # line-marker\n'})
    _commit(repo, {"logo.bin": "\0" + canary.value})
    monkeypatch.chdir(repo / "sub")  # the whole repository is scanned, not only the cwd
    code, out = doctor()
    assert code == 1
    assert "sub/config.py:3" in out
    assert "line-marker" not in out
    _, report = _report(doctor)
    (leak,) = report["findings"]
    assert (leak["code"], leak["path"], leak["line"]) == ("key-in-repo", "sub/config.py", 3)


def test_no_git_repository_is_tolerated(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without git on PATH the repository checks are skipped, not failed."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert doctor()[0] == 0


def test_same_read_and_trade_key(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --trade, one value used for both scopes is a finding."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    monkeypatch.setenv("COINGUARD_TRADE_KEY", canary.value)
    code, report = _report(doctor, "--trade")
    assert code == 1
    assert _codes(report) == ["same-key"]
    assert [k["scope"] for k in report["keys"]] == ["read", "trade"]


def test_missing_key(doctor: Doctor) -> None:
    """No key anywhere: a finding that lists where it looked, exit 1."""
    code, out = doctor("--trade")
    assert code == 1
    assert "no read key found; looked in: COINGUARD_READ_KEY" in out
    assert "no trade key found" in out


def test_verify_flags_overprivileged_read_key(
    doctor: Doctor, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--verify asks the sandbox: an over-privileged read key can trade and withdraw."""
    monkeypatch.setenv("COINGUARD_READ_KEY", sandbox.keys.overprivileged)
    args = ("--verify", "--provider", "sandbox", "--base-url", sandbox.base_url)
    keys = (sandbox.keys.read, sandbox.keys.trade, sandbox.keys.overprivileged)
    code, report = _report(doctor, *args, secrets=keys)
    assert code == 1
    privileged = [f for f in report["findings"] if f["code"] == "over-privileged"]
    assert "read key can trade" in privileged[0]["message"]
    assert "read key can withdraw" in privileged[0]["message"]
    assert report["keys"][0]["permissions"] == ["read", "trade", "withdraw"]
    assert doctor(*args, secrets=keys)[0] == 1


def test_verify_reports_age_and_keeps_keys_separate(
    doctor: Doctor, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read key 120 days old: an age finding; the trade key is fine."""
    old_read = sandbox.issue_key(("read",), age_days=120)
    monkeypatch.setenv("COINGUARD_SANDBOX_READ_KEY", old_read)
    monkeypatch.setenv("COINGUARD_SANDBOX_TRADE_KEY", sandbox.keys.trade)
    args = ("--verify", "--trade", "--provider", "sandbox", "--base-url", sandbox.base_url)
    keys = (old_read, sandbox.keys.trade)
    code, report = _report(doctor, *args, secrets=keys)
    assert code == 1
    assert _codes(report) == ["key-age"]
    assert "120 days old" in report["findings"][0]["message"]
    assert [k["permissions"] for k in report["keys"]] == [["read"], ["trade"]]
    assert _report(doctor, *args, "--max-age-days", "365", secrets=keys)[0] == 0


def test_the_sandbox_default_keys_are_clean(
    doctor: Doctor, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox's good read and trade keys pass --verify with the default age policy."""
    monkeypatch.setenv("COINGUARD_SANDBOX_READ_KEY", sandbox.keys.read)
    monkeypatch.setenv("COINGUARD_SANDBOX_TRADE_KEY", sandbox.keys.trade)
    args = ("--verify", "--trade", "--provider", "sandbox", "--base-url", sandbox.base_url)
    code, report = _report(doctor, *args, secrets=(sandbox.keys.read, sandbox.keys.trade))
    assert (code, _codes(report)) == (0, [])


def test_verify_failure_is_a_finding(
    doctor: Doctor, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key the provider rejects gives a verify-failed finding, not a traceback."""
    revoked = sandbox.issue_key(("read",))
    sandbox.revoke(revoked)
    monkeypatch.setenv("COINGUARD_READ_KEY", revoked)
    args = ("--verify", "--provider", "sandbox", "--base-url", sandbox.base_url)
    code, report = _report(doctor, *args, secrets=(revoked,))
    assert code == 1
    assert _codes(report) == ["verify-failed"]
    assert "401" in report["findings"][0]["message"]


def test_json_report_has_fingerprints_only(
    doctor: Doctor, canary: Canary, monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    """--json parses, carries every section and never the key, even with findings."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    _commit(repo, {"notes.txt": canary.value + "\n"})
    code, report = _report(doctor, "--trade")
    assert code == 1
    assert set(report) == {
        "ok",
        "provider",
        "base_url",
        "verified",
        "checked_at",
        "keys",
        "findings",
        "notes",
    }
    assert sorted(_codes(report)) == ["key-in-repo", "missing-key"]
    assert canary.found_in(json.dumps(report)) == []


def test_usage_and_configuration_errors_exit_two(
    doctor: Doctor, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad flags, a missing env file, an unknown provider or plain http exit 2, no traceback."""
    with pytest.raises(SystemExit) as bad_flag:
        main(["doctor", "--max-age-days", "soon"])
    assert bad_flag.value.code == 2
    capsys.readouterr()
    assert doctor("--env-file", "nowhere.env")[0] == 2
    assert doctor("--provider", "nosuch")[0] == 2
    assert doctor("--base-url", "http://example.com/v2")[0] == 2
    assert doctor("--verify")[0] == 2
    assert "Traceback" not in capsys.readouterr().err


def test_env_file_is_a_source_and_mode_checked(
    doctor: Doctor, canary: Canary, tmp_path: Path
) -> None:
    """--env-file feeds the settings, is named as the reference and is mode-checked."""
    env = tmp_path / "keys.env"
    env.write_text(f"COINGUARD_READ_KEY={canary.value}\n")
    env.chmod(0o604)
    code, report = _report(doctor, "--env-file", str(env))
    assert code == 1
    assert report["keys"][0]["reference"] == str(env)
    assert _codes(report) == ["file-permissions"]
    assert "open to others" in report["findings"][0]["message"]


def test_diagnose_api(canary: Canary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """diagnose() returns a Report with an exit code; its repr holds no key."""
    monkeypatch.setenv("COINGUARD_READ_KEY", canary.value)
    report = diagnose(cwd=tmp_path)
    assert report.ok
    assert report.exit_code == 0
    assert report.keys[0].fingerprint == coinguard.fingerprint(canary.value)
    assert canary.found_in(repr(report)) == []


def test_console_command_json(canary: Canary, tmp_path: Path) -> None:
    """The command run as a process prints parseable JSON without the key and exits 0."""
    env = {**os.environ, "COINGUARD_READ_KEY": canary.value}
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["keys"][0]["fingerprint"] == coinguard.fingerprint(canary.value)
    assert canary.found_in(done.stdout + done.stderr) == []


def test_base_url_comes_from_the_environment_as_in_a_client(
    doctor: Doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COINGUARD_BASE_URL is the base URL, as the client uses it, and the report says so."""
    monkeypatch.setenv("COINGUARD_BASE_URL", "http://127.0.0.1:9/v2")
    report = _report(doctor, "--provider", "sandbox")[1]
    assert report["base_url"] == "http://127.0.0.1:9/v2"
    assert "base URL from COINGUARD_BASE_URL" in report["notes"][0]
    with pytest.raises(coinguard.MissingKeyError):  # the client agrees on the URL it would use
        coinguard.Client(provider="sandbox")
    assert doctor("--provider", "sandbox", "--base-url", "https://x.example/v2")[1].startswith(
        "coinguard doctor: provider sandbox, https://x.example/v2"
    )


def test_base_url_and_key_come_from_the_env_file(
    doctor: Doctor, canary: Canary, tmp_path: Path
) -> None:
    """--env-file supplies COINGUARD_BASE_URL and the key, exactly as Client(env_file=...)."""
    env = tmp_path / "app.env"
    env.write_text(f"COINGUARD_BASE_URL=http://127.0.0.1:9/v2\nCOINGUARD_READ_KEY={canary.value}\n")
    env.chmod(0o600)
    code, report = _report(doctor, "--provider", "sandbox", "--env-file", str(env))
    assert (code, report["base_url"]) == (0, "http://127.0.0.1:9/v2")
    with coinguard.Client(provider="sandbox", env_file=env) as client:
        assert str(client._core.base_url) == report["base_url"]


def test_an_unread_dotenv_is_noted_with_how_to_opt_in(
    doctor: Doctor, canary: Canary, tmp_path: Path
) -> None:
    """./.env exists but is not read (opt-in, as in a client): the report says so and how."""
    (tmp_path / ".env").write_text(f"COINGUARD_READ_KEY={canary.value}\n")
    code, out = doctor("--provider", "sandbox")
    assert code == 1  # the key in .env was not used: missing-key
    assert "note: a .env file in the working directory was not read" in out
    assert "pass --env-file .env to read it" in out
    (tmp_path / ".env").chmod(0o600)
    code, report = _report(doctor, "--provider", "sandbox", "--env-file", ".env")
    assert (code, report["notes"]) == (0, [])


@pytest.mark.parametrize(("trade", "finding"), [("trade", None), ("unrestricted", "IP")])
def test_doctor_verifies_binance_key_pairs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trade: str, finding: str | None
) -> None:
    """A signed provider: each key is verified with its own scope's secret against
    apiRestrictions; an IP-unrestricted trade key is a finding."""
    from coinguard.sandbox import Sandbox

    with Sandbox(profile="binance") as bn:
        keys = vars(bn.keys)
        monkeypatch.setenv("COINGUARD_READ_KEY", keys["read"])
        monkeypatch.setenv("COINGUARD_READ_SECRET", keys["read_secret"])
        monkeypatch.setenv("COINGUARD_TRADE_KEY", keys[trade])
        monkeypatch.setenv("COINGUARD_TRADE_SECRET", keys[f"{trade}_secret"])
        report = diagnose(
            provider="binance", base_url=bn.origin, trade=True, verify=True, cwd=tmp_path
        )
    codes = [(f.code, f.scope) for f in report.findings]
    assert ("verify-failed", "read") not in codes
    assert ("verify-failed", "trade") not in codes
    if finding is None:
        assert report.findings == ()
    else:
        assert [f.code for f in report.findings] == ["over-privileged"]
        assert "not restricted" in report.findings[0].message


def test_doctor_names_a_missing_signing_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_canary: Callable[[str], Canary]
) -> None:
    """A signed provider with a key and no secret: a missing-secret finding naming where."""
    monkeypatch.setenv("COINGUARD_READ_KEY", make_canary("READ").value)
    report = diagnose(provider="binance", cwd=tmp_path)
    missing = [f for f in report.findings if f.code == "missing-secret"]
    assert len(missing) == 1
    assert "COINGUARD_READ_SECRET" in missing[0].fix
    assert "BINANCE_API_SECRET" in missing[0].fix
