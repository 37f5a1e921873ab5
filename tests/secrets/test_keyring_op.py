"""keyring:// against keyrings.alt's file keyring, and op:// against a fake 1Password CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coinguard._exceptions import ConfigurationError
from coinguard._secrets import SecretBackendError, secret


def test_keyring_reads_password(file_keyring: Any, no_leak: Callable[..., None]) -> None:
    """keyring://service/username returns the stored password and refreshes after a change."""
    file_keyring.set_password("coinguard-tm", "read", "CANARY-keyring-1")
    ref = secret("keyring://coinguard-tm/read")
    assert ref.load().reveal() == "CANARY-keyring-1"
    file_keyring.set_password("coinguard-tm", "read", "CANARY-keyring-2")
    assert ref.refresh().reveal() == "CANARY-keyring-2"
    no_leak("CANARY-keyring", ref, ref.load())


def test_keyring_service_may_contain_slashes(file_keyring: Any) -> None:
    """The username is the last path segment; the service is everything before it."""
    file_keyring.set_password("api/tokenmetrics", "trade", "CANARY-keyring-t")
    assert secret("keyring://api/tokenmetrics/trade").load().reveal() == "CANARY-keyring-t"


def test_keyring_missing_entry_is_not_found(
    file_keyring: Any, no_leak: Callable[..., None]
) -> None:
    """keyring returning None becomes a not_found error naming service and user."""
    file_keyring.set_password("coinguard-tm", "read", "CANARY-keyring-other")
    with pytest.raises(SecretBackendError, match="not found") as info:
        secret("keyring://coinguard-tm/trade").load()
    assert "'trade'" in str(info.value)
    assert "'coinguard-tm'" in str(info.value)
    no_leak("CANARY-keyring", info.value)


def test_keyring_without_backend_is_unreachable(file_keyring: Any) -> None:
    """The fail keyring (no usable backend) is reported as unreachable, not a raw RuntimeError."""
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    keyring.set_keyring(FailKeyring())
    with pytest.raises(SecretBackendError) as info:
        secret("keyring://coinguard-tm/read").load()
    assert info.value.reason == "unreachable"


def test_keyring_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the keyring library the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "keyring", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'coinguard\[keyring\]'"):
        secret("keyring://s/u").load()


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_op_reads_value(fake_op: Path, no_leak: Callable[..., None]) -> None:
    """op:// runs `op read --no-newline <ref>` and serves its stdout."""
    ref = secret("op://Private/TokenMetrics/read key")
    assert ref.load().reveal() == "CANARY-OP-value"
    assert _calls(fake_op) == [["read", "--no-newline", "op://Private/TokenMetrics/read key"]]
    no_leak("CANARY-OP-value", ref, ref.load())


def test_op_not_found_names_ref_and_exit_code(fake_op: Path, no_leak: Callable[..., None]) -> None:
    """A non-zero exit is an error with the reference, the kind and op's exit code."""
    with pytest.raises(SecretBackendError) as info:
        secret("op://v/missing/field").load()
    assert info.value.reason == "not_found"
    assert "op://v/missing/field" in str(info.value)
    assert "exited with code 1" in str(info.value)


def test_op_signed_out_is_access_denied_without_stderr_text(
    fake_op: Path, no_leak: Callable[..., None]
) -> None:
    """op's stderr decides the kind but is not copied into the error."""
    with pytest.raises(SecretBackendError) as info:
        secret("op://v/signedout/field").load()
    assert info.value.reason == "access_denied"
    assert "code 6" in str(info.value)
    no_leak("CANARY-OP-STDERR", info.value)


def test_op_reference_is_never_given_to_a_shell(
    fake_op: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shell metacharacters in a reference reach op literally; nothing is executed."""
    monkeypatch.chdir(tmp_path)
    nasty = "op://vault/item$(touch pwned-a);touch pwned-b/`touch pwned-c`field"
    assert secret(nasty).load().reveal() == "CANARY-OP-value"
    assert _calls(fake_op)[-1][-1] == nasty
    assert not list(tmp_path.glob("pwned-*"))


def test_op_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without an op executable on PATH the error says so."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SecretBackendError, match="not on PATH") as info:
        secret("op://v/i/f").load()
    assert info.value.reason == "unreachable"


def test_op_empty_output_is_invalid(fake_op: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """op printing nothing is an invalid value, not an empty key."""
    monkeypatch.setenv("FAKE_OP_VALUE", "")
    with pytest.raises(SecretBackendError) as info:
        secret("op://v/i/f").load()
    assert info.value.reason == "invalid"
