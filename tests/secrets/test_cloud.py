"""gcp-sm:// and azure-kv:// without network: missing extras, parsing, and error translation.

The SDKs are optional and not installed for the test suite; the client is injected through the
backends' ``client_factory`` and SDK exceptions are stood in for by classes with the same names.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from coinguard._exceptions import ConfigurationError
from coinguard._secrets import KeyAgeWarning, SecretBackendError, SecretRef, secret
from coinguard._secrets._base import parse_ref
from coinguard._secrets._cloud import AzureBackend, GcpBackend

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


class NotFound(Exception):
    """Named like google.api_core.exceptions.NotFound."""


class PermissionDenied(Exception):
    """Named like google.api_core.exceptions.PermissionDenied."""


class ResourceNotFoundError(Exception):
    """Named like azure.core.exceptions.ResourceNotFoundError."""


class ServiceRequestError(Exception):
    """Named like azure.core.exceptions.ServiceRequestError."""


class HttpResponseError(Exception):
    """Like azure's HttpResponseError: carries a status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code} CANARY-cloud-error-text")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("ref", "module", "extra"),
    [
        ("gcp-sm://projects/p/secrets/s/versions/latest", "google.cloud.secretmanager", "gcp"),
        ("azure-kv://my-vault/tm-read", "azure.keyvault.secrets", "azure"),
    ],
)
def test_missing_extra(ref: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the SDK the error names the exact pip command for the extra."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigurationError, match=rf"pip install 'coinguard\[{extra}\]'"):
        secret(ref).load()


def test_importing_coinguard_secrets_imports_no_sdk() -> None:
    """Backend libraries are imported only when a backend fetches."""
    import subprocess

    sdks = ("boto3", "hvac", "keyring", "google.cloud", "azure")
    code = f"import sys, coinguard._secrets; print([m for m in {sdks!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@dataclass
class FakeGcpClient:
    """Answers access_secret_version like the SDK client, or raises a given error."""

    value: bytes = b"CANARY-gcp-value\n"
    error: Exception | None = None
    names: list[str] = field(default_factory=list)

    def access_secret_version(self, *, request: dict[str, str], timeout: float) -> Any:
        self.names.append(request["name"])
        if self.error is not None:
            raise self.error

        class Payload:
            data = self.value

        class Response:
            payload = Payload

        return Response


def gcp(ref: str, client: FakeGcpClient) -> SecretRef:
    return SecretRef(GcpBackend(parse_ref(ref), client_factory=lambda: client))


def test_gcp_reads_latest_version(no_leak: Callable[..., None]) -> None:
    """A secret path without a version reads versions/latest."""
    client = FakeGcpClient()
    ref = gcp("gcp-sm://projects/p1/secrets/tm-read", client)
    assert ref.load().reveal() == "CANARY-gcp-value"
    assert client.names == ["projects/p1/secrets/tm-read/versions/latest"]
    assert ref.metadata() is None
    no_leak("CANARY-gcp-value", ref, ref.load())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotFound("x"), "not_found"),
        (PermissionDenied("x"), "access_denied"),
        (TimeoutError("x"), "unreachable"),
    ],
)
def test_gcp_error_translation(error: Exception, reason: str) -> None:
    """SDK exceptions map to failure kinds by class name."""
    with pytest.raises(SecretBackendError) as info:
        gcp("gcp-sm://projects/p/secrets/s/versions/3", FakeGcpClient(error=error)).load()
    assert info.value.reason == reason
    assert "gcp-sm://projects/p/secrets/s/versions/3" in str(info.value)


def test_gcp_non_utf8_payload_is_invalid() -> None:
    """A binary payload is an invalid value."""
    with pytest.raises(SecretBackendError) as info:
        gcp("gcp-sm://projects/p/secrets/s", FakeGcpClient(value=b"\xff\xfe")).load()
    assert info.value.reason == "invalid"


@dataclass
class FakeAzureClient:
    """Answers get_secret like azure.keyvault.secrets.SecretClient."""

    vault_url: str
    expires_on: datetime | None = None
    error: Exception | None = None

    def get_secret(self, name: str, version: str | None = None) -> Any:
        if self.error is not None:
            raise self.error

        @dataclass
        class Props:
            created_on: datetime
            updated_on: datetime
            expires_on: datetime | None
            version: str

        @dataclass
        class KeyVaultSecret:
            value: str
            properties: Props

        props = Props(NOW - timedelta(days=3), NOW - timedelta(days=1), self.expires_on, "v9")
        return KeyVaultSecret(f"CANARY-azure-{name}", props)


def azure(ref: str, **kwargs: Any) -> tuple[SecretRef, list[FakeAzureClient]]:
    made: list[FakeAzureClient] = []

    def factory(url: str) -> FakeAzureClient:
        made.append(FakeAzureClient(url, **kwargs))
        return made[-1]

    return SecretRef(AzureBackend(parse_ref(ref), client_factory=factory), now=lambda: NOW), made


def test_azure_reads_secret_and_metadata(no_leak: Callable[..., None]) -> None:
    """A vault name becomes https://NAME.vault.azure.net; properties become metadata."""
    ref, made = azure("azure-kv://my-vault/tm-read")
    assert ref.load().reveal() == "CANARY-azure-tm-read"
    no_leak("CANARY-azure-tm-read", ref, ref.load())
    assert made[0].vault_url == "https://my-vault.vault.azure.net"
    meta = ref.metadata()
    assert meta is not None
    assert meta.version == "v9"
    assert meta.rotated_at == NOW - timedelta(days=1)


def test_azure_full_host_for_other_clouds() -> None:
    """A vault given with dots is used as the host (sovereign clouds)."""
    ref, made = azure("azure-kv://v.vault.azure.cn/tm/0123")
    ref.load()
    assert made[0].vault_url == "https://v.vault.azure.cn"


def test_azure_expiring_secret_warns() -> None:
    """A Key Vault expiry within seven days emits KeyAgeWarning."""
    ref, _ = azure("azure-kv://v/tm", expires_on=NOW + timedelta(days=2))
    with pytest.warns(KeyAgeWarning, match="azure-kv://v/tm: key expires at"):
        ref.load()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ResourceNotFoundError("x"), "not_found"),
        (ServiceRequestError("x"), "unreachable"),
        (HttpResponseError(403), "access_denied"),
    ],
)
def test_azure_error_translation(error: Exception, reason: str) -> None:
    """SDK exceptions map to failure kinds by class name or HTTP status."""
    ref, _ = azure("azure-kv://v/tm", error=error)
    with pytest.raises(SecretBackendError) as info:
        ref.load()
    assert info.value.reason == reason
    assert "CANARY" not in str(info.value)
