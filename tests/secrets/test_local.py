"""Reference parsing, and the local backends: env://, file:// and dotenv://."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

import coinguard._secrets as secrets_pkg
from coinguard._exceptions import ConfigurationError
from coinguard._secrets import SecretBackendError, secret
from coinguard._secrets._base import parse_ref


def test_public_names_match_all() -> None:
    """The package exports exactly what its __all__ lists."""
    public = {name for name in dir(secrets_pkg) if not name.startswith("_")}
    assert set(secrets_pkg.__all__) <= public
    assert sorted(secrets_pkg.__all__) == secrets_pkg.__all__


@pytest.mark.parametrize(
    ("text", "path", "query", "fragment"),
    [
        ("env://TM_KEY", "TM_KEY", {}, None),
        ("aws-sm://prod/tm#read?region=eu-west-1", "prod/tm", {"region": "eu-west-1"}, "read"),
        ("aws-sm://prod/tm?region=eu-west-1#read", "prod/tm", {"region": "eu-west-1"}, "read"),
        ("vault://secret/a/b#f", "secret/a/b", {}, "f"),
        ("file:///run/secrets/tm", "/run/secrets/tm", {}, None),
    ],
)
def test_parse_ref(text: str, path: str, query: dict[str, str], fragment: str | None) -> None:
    """Path, options and field are split in either order, without URL-decoding."""
    parsed = parse_ref(text)
    assert (parsed.path, parsed.query, parsed.fragment) == (path, query, fragment)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("TM_KEY", "no scheme"),
        ("ftp://x", "unknown scheme 'ftp'"),
        ("file://relative/path", "absolute path"),
        ("dotenv://.env", "#VARIABLE_NAME"),
        ("keyring://only-service", "service/username"),
        ("op://vault/item", "op://vault/item/field"),
        ("vault://secret", "vault://mount/path"),
        ("aws-sm://x?regoin=eu-west-1", "unknown option"),
        ("aws-sm://x?stage=AWSCURRENT&version_id=1", "stage or version_id"),
        ("gcp-sm://projects/p/secret/s", "gcp-sm://projects/PROJECT"),
        ("azure-kv://vault-only", "azure-kv://VAULT_NAME"),
    ],
)
def test_bad_references_fail_at_construction(ref: str, match: str) -> None:
    """A malformed reference is a ConfigurationError naming the expected shape."""
    with pytest.raises(ConfigurationError, match=match):
        secret(ref)


@pytest.mark.parametrize(
    ("ref", "local"),
    [
        ("env://X", True),
        ("file:///x", True),
        ("dotenv://.env#X", True),
        ("keyring://s/u", False),
        ("op://v/i/f", False),
        ("aws-sm://x", False),
        ("vault://secret/x#f", False),
        ("gcp-sm://projects/p/secrets/s", False),
        ("azure-kv://v/s", False),
    ],
)
def test_local_flag_and_laziness(ref: str, local: bool) -> None:
    """Only env, file and dotenv are local; constructing any reference fetches nothing."""
    source = secret(ref)
    assert source.local is local
    assert source.reloadable
    assert repr(source) == f"SecretRef({ref})"


def test_env(monkeypatch: pytest.MonkeyPatch, no_leak: Callable[..., None]) -> None:
    """env:// reads the variable at load time and names it when unset."""
    monkeypatch.setenv("CG_TEST_KEY", "CANARY-env-1\n")
    ref = secret("env://CG_TEST_KEY", ttl=0)
    value = ref.load()
    assert value.reveal() == "CANARY-env-1"
    assert value.source == "secret env://CG_TEST_KEY"
    monkeypatch.delenv("CG_TEST_KEY")
    with pytest.raises(SecretBackendError, match=r"env://CG_TEST_KEY: not found") as info:
        ref.refresh()
    assert info.value.reason == "not_found"
    no_leak("CANARY-env-1", info.value, value, ref)


def test_env_value_with_inner_space_is_invalid(
    monkeypatch: pytest.MonkeyPatch, no_leak: Callable[..., None]
) -> None:
    """A variable holding two words is refused without echoing it."""
    monkeypatch.setenv("CG_TEST_KEY", "CANARY-env two")
    with pytest.raises(SecretBackendError) as info:
        secret("env://CG_TEST_KEY").load()
    assert info.value.reason == "invalid"
    no_leak("CANARY-env", info.value)


def test_file_with_trailing_newline(tmp_path: Path, no_leak: Callable[..., None]) -> None:
    """file:// strips the trailing newline Docker/Kubernetes secrets usually have."""
    path = tmp_path / "tm_read"
    path.write_text("CANARY-file-1\n", encoding="utf-8")
    ref = secret(f"file://{path}")
    assert ref.load().reveal() == "CANARY-file-1"
    path.write_text("CANARY-file-2\r\n", encoding="utf-8")
    assert ref.refresh().reveal() == "CANARY-file-2"
    no_leak("CANARY-file", ref, ref.load())


def test_file_errors(tmp_path: Path) -> None:
    """A missing file is not_found; a directory is invalid; both name the reference."""
    with pytest.raises(SecretBackendError, match="not found") as info:
        secret(f"file://{tmp_path}/absent").load()
    assert str(tmp_path) in str(info.value)
    with pytest.raises(SecretBackendError) as info:
        secret(f"file://{tmp_path}").load()
    assert info.value.reason == "invalid"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_permission_denied(tmp_path: Path) -> None:
    """An unreadable file is access_denied."""
    path = tmp_path / "locked"
    path.write_text("CANARY-locked", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(SecretBackendError) as info:
        secret(f"file://{path}").load()
    assert info.value.reason == "access_denied"


def test_file_metadata_is_mtime(tmp_path: Path) -> None:
    """A file's modification time is reported as its rotation time."""
    path = tmp_path / "tm_read"
    path.write_text("CANARY-file", encoding="utf-8")
    stamp = time.time() - 86400
    os.utime(path, (stamp, stamp))
    meta = secret(f"file://{path}").metadata()
    assert meta is not None
    assert meta.rotated_at == datetime.fromtimestamp(stamp, tz=timezone.utc)
    assert secret(f"file://{tmp_path}/absent").metadata() is None


def test_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leak: Callable[..., None]
) -> None:
    """dotenv:// reads one variable, relative paths from the cwd, without interpolation."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / ".env").write_text(
        '# keys\nTM_READ="CANARY-dotenv-$HOME"\nexport TM_TRADE=CANARY-trade\nEMPTY\n',
        encoding="utf-8",
    )
    assert secret("dotenv://config/.env#TM_READ").load().reveal() == "CANARY-dotenv-$HOME"
    assert secret("dotenv://config/.env#TM_TRADE").load().reveal() == "CANARY-trade"
    with pytest.raises(SecretBackendError, match="TM_OTHER is not set") as missing:
        secret("dotenv://config/.env#TM_OTHER").load()
    with pytest.raises(SecretBackendError, match="not found"):
        secret("dotenv://config/.env#EMPTY").load()
    with pytest.raises(SecretBackendError, match="no file"):
        secret("dotenv://nowhere/.env#TM_READ").load()
    no_leak("CANARY-", missing.value)
