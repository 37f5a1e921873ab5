"""vault:// against a real OpenBao dev server: KV v2, token and AppRole auth, a deny policy."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from coinguard._exceptions import ConfigurationError
from coinguard._secrets import SecretBackendError, secret
from coinguard._secrets._vault import _timestamp

POLICY = """
path "secret/data/coinguard/*" { capabilities = ["read"] }
path "secret/metadata/coinguard/*" { capabilities = ["read"] }
path "secret/data/coinguard/trade" { capabilities = ["deny"] }
"""


@pytest.fixture(scope="module")
def seeded(bao_server: Any) -> dict[str, str]:
    """KV v2 secrets, a read policy that denies the trade path, and an AppRole using it."""
    root = bao_server.client()
    kv = root.secrets.kv.v2
    kv.create_or_update_secret(
        path="coinguard/tm", secret={"read_key": "CANARY-bao-read", "other": "CANARY-bao-other"}
    )
    kv.create_or_update_secret(path="coinguard/single", secret={"key": "CANARY-bao-single"})
    kv.create_or_update_secret(path="coinguard/trade", secret={"key": "CANARY-bao-trade"})
    kv.create_or_update_secret(path="coinguard/number", secret={"key": 12345})
    root.sys.create_or_update_policy(name="coinguard-read", policy=POLICY)
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("coinguard", token_policies=["coinguard-read"])
    role_id = root.auth.approle.read_role_id("coinguard")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("coinguard")["data"]["secret_id"]
    reader = root.auth.token.create(policies=["coinguard-read"], ttl="1h")["auth"]["client_token"]
    return {"role_id": role_id, "secret_id": secret_id, "reader_token": reader}


def test_token_auth_reads_field(
    vault_env: Any, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_TOKEN auth reads one field of a KV v2 secret."""
    monkeypatch.setenv("VAULT_TOKEN", vault_env.root_token)
    assert secret("vault://secret/coinguard/tm#read_key").load().reveal() == "CANARY-bao-read"


def test_bao_variable_names(
    vault_env: Any, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BAO_ADDR and BAO_TOKEN work when the VAULT_ names are unset."""
    monkeypatch.delenv("VAULT_ADDR")
    monkeypatch.setenv("BAO_ADDR", vault_env.addr)
    monkeypatch.setenv("BAO_TOKEN", vault_env.root_token)
    assert secret("vault://secret/coinguard/single").load().reveal() == "CANARY-bao-single"


def test_approle_auth(
    vault_env: Any, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_ROLE_ID + VAULT_SECRET_ID log in through AppRole and read with its policy."""
    monkeypatch.setenv("VAULT_ROLE_ID", seeded["role_id"])
    monkeypatch.setenv("VAULT_SECRET_ID", seeded["secret_id"])
    ref = secret("vault://secret/coinguard/tm#read_key")
    assert ref.load().reveal() == "CANARY-bao-read"
    assert ref.refresh().reveal() == "CANARY-bao-read"


def test_approle_bad_secret_id_is_access_denied(
    vault_env: Any,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    no_leak: Callable[..., None],
) -> None:
    """A wrong AppRole secret id is access denied, and the secret id is not echoed."""
    monkeypatch.setenv("VAULT_ROLE_ID", seeded["role_id"])
    monkeypatch.setenv("VAULT_SECRET_ID", "CANARY-wrong-secret-id")
    with pytest.raises(SecretBackendError, match="access denied") as info:
        secret("vault://secret/coinguard/tm#read_key").load()
    no_leak("CANARY-wrong-secret-id", info.value)


@pytest.mark.parametrize("auth", ["token", "approle"])
def test_deny_policy_on_trade_path(
    vault_env: Any,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
    no_leak: Callable[..., None],
) -> None:
    """A policy that denies the trade path yields 'access denied' naming the reference."""
    if auth == "token":
        monkeypatch.setenv("VAULT_TOKEN", seeded["reader_token"])
    else:
        monkeypatch.setenv("VAULT_ROLE_ID", seeded["role_id"])
        monkeypatch.setenv("VAULT_SECRET_ID", seeded["secret_id"])
    with pytest.raises(SecretBackendError) as info:
        secret("vault://secret/coinguard/trade#key").load()
    assert info.value.reason == "access_denied"
    assert "vault://secret/coinguard/trade#key: access denied" in str(info.value)
    no_leak("CANARY-bao-trade", info.value)


def test_not_found_and_missing_field(
    vault_env: Any,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    no_leak: Callable[..., None],
) -> None:
    """An absent path and an absent field are both not_found; other fields never leak."""
    monkeypatch.setenv("VAULT_TOKEN", vault_env.root_token)
    with pytest.raises(SecretBackendError) as absent:
        secret(f"vault://secret/coinguard/{uuid.uuid4().hex}#key").load()
    assert absent.value.reason == "not_found"
    with pytest.raises(SecretBackendError, match="no field 'nope'") as field:
        secret("vault://secret/coinguard/tm#nope").load()
    assert field.value.reason == "not_found"
    with pytest.raises(SecretBackendError, match="2 keys; add #field"):
        secret("vault://secret/coinguard/tm").load()
    no_leak("CANARY-bao", absent.value, field.value)


def test_non_string_field_is_invalid(
    vault_env: Any,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    no_leak: Callable[..., None],
) -> None:
    """A number stored in the field is invalid; the error gives its type, not its value."""
    monkeypatch.setenv("VAULT_TOKEN", vault_env.root_token)
    with pytest.raises(SecretBackendError, match="is int") as info:
        secret("vault://secret/coinguard/number#key").load()
    no_leak("12345", info.value)


def test_bad_token_is_access_denied(vault_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown token is access denied."""
    monkeypatch.setenv("VAULT_TOKEN", "not-a-token")
    with pytest.raises(SecretBackendError) as info:
        secret("vault://secret/coinguard/tm#read_key").load()
    assert info.value.reason == "access_denied"


def test_no_credentials_and_no_address(vault_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing credentials or a missing VAULT_ADDR are explained, naming the variables."""
    with pytest.raises(SecretBackendError, match="VAULT_ROLE_ID and VAULT_SECRET_ID"):
        secret("vault://secret/coinguard/tm#read_key").load()
    monkeypatch.delenv("VAULT_ADDR")
    with pytest.raises(SecretBackendError, match="VAULT_ADDR"):
        secret("vault://secret/coinguard/tm#read_key").load()


def test_unreachable(vault_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that is not listening is 'backend unreachable'."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VAULT_TOKEN", "t")
    with pytest.raises(SecretBackendError) as info:
        secret("vault://secret/coinguard/tm#read_key").load()
    assert info.value.reason == "unreachable"


def test_metadata_and_new_version(
    vault_env: Any, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """metadata() gives created_time and the current version; a new version is served on refresh."""
    monkeypatch.setenv("VAULT_TOKEN", vault_env.root_token)
    path = f"coinguard/rot-{uuid.uuid4().hex[:8]}"
    kv = vault_env.client().secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"key": "CANARY-bao-v1"})
    ref = secret(f"vault://secret/{path}#key")
    assert ref.load().reveal() == "CANARY-bao-v1"
    kv.create_or_update_secret(path=path, secret={"key": "CANARY-bao-v2"})
    assert ref.refresh().reveal() == "CANARY-bao-v2"
    meta = ref.metadata()
    assert meta is not None
    assert meta.version == "2"
    assert meta.created_at is not None
    assert meta.rotated_at is not None
    assert meta.rotated_at >= meta.created_at


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without hvac the error names `pip install 'coinguard[vault]'` (no server needed)."""
    monkeypatch.setitem(sys.modules, "hvac", None)
    monkeypatch.setitem(sys.modules, "hvac.exceptions", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'coinguard\[vault\]'"):
        secret("vault://secret/x#f").load()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:20:30.123456789Z", datetime(2024, 5, 1, 10, 20, 30, 123456, timezone.utc)),
        ("2024-05-01T10:20:30.5Z", datetime(2024, 5, 1, 10, 20, 30, 500000, timezone.utc)),
        ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)),
        ("", None),
        ("garbage", None),
    ],
)
def test_vault_timestamps(text: str, expected: datetime | None) -> None:
    """Vault's nanosecond RFC 3339 times parse on every supported Python; junk gives None."""
    assert _timestamp(text) == expected
