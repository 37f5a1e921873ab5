"""``gcp-sm://projects/p/secrets/s/versions/v`` and ``azure-kv://vault/secret[/version]``.

Both use the vendor SDK's default credential chain (Application Default Credentials;
``DefaultAzureCredential``). Errors are classified by exception class name, so this module
imports nothing from the SDKs until a fetch runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, Reason, SecretBackendError, check_options, import_extra

__all__ = ["AzureBackend", "GcpBackend", "classify"]

TIMEOUT_SECONDS = 10.0

_GCP_ERRORS: dict[str, Reason] = {
    "NotFound": "not_found",
    "PermissionDenied": "access_denied",
    "Unauthenticated": "access_denied",
    "Forbidden": "access_denied",
    "DefaultCredentialsError": "access_denied",
    "RefreshError": "access_denied",
    "InvalidArgument": "invalid",
    "FailedPrecondition": "not_found",  # a disabled or destroyed version
}

_AZURE_ERRORS: dict[str, Reason] = {
    "ResourceNotFoundError": "not_found",
    "ClientAuthenticationError": "access_denied",
    "CredentialUnavailableError": "access_denied",
    "ServiceRequestError": "unreachable",
    "ServiceResponseError": "unreachable",
}


def classify(exc: BaseException, table: dict[str, Reason]) -> Reason | None:
    """Name the failure kind from the exception's class hierarchy, or an HTTP status it carries."""
    for cls in type(exc).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    if status in (401, 403):
        return "access_denied"
    if status == 404:
        return "not_found"
    return None


class GcpBackend:
    """One Google Secret Manager version; ``.../secrets/s`` alone means ``versions/latest``."""

    local = False

    def __init__(self, ref: ParsedRef, *, client_factory: Callable[[], Any] | None = None) -> None:
        check_options(ref, set())
        parts = ref.path.split("/")
        if len(parts) == 4:
            parts += ["versions", "latest"]
        shape_ok = len(parts) == 6 and parts[0::2] == ["projects", "secrets", "versions"]
        if not shape_ok or not all(parts) or ref.fragment is not None:
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write "
                "gcp-sm://projects/PROJECT/secrets/NAME/versions/latest"
            )
        self.reference = ref.text
        self.name = "/".join(parts)
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    def fetch(self) -> str:
        client = self._get_client()
        try:
            response = client.access_secret_version(
                request={"name": self.name}, timeout=TIMEOUT_SECONDS
            )
        except Exception as exc:
            reason = classify(exc, _GCP_ERRORS) or "unreachable"
            raise SecretBackendError(self.reference, reason, type(exc).__name__) from None
        try:
            return bytes(response.payload.data).decode("utf-8")
        except UnicodeDecodeError:
            raise SecretBackendError(self.reference, "invalid", "payload is not UTF-8") from None

    def metadata(self) -> KeyMetadata | None:
        return None

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                if self._factory is not None:
                    self._client = self._factory()
                else:
                    sm = import_extra("google.cloud.secretmanager", "gcp", self.reference)
                    try:
                        self._client = sm.SecretManagerServiceClient()
                    except Exception as exc:
                        reason = classify(exc, _GCP_ERRORS) or "unreachable"
                        raise SecretBackendError(
                            self.reference, reason, type(exc).__name__
                        ) from None
            return self._client


class AzureBackend:
    """One Azure Key Vault secret; ``vault`` is a name (``.vault.azure.net``) or a full host."""

    local = False

    def __init__(
        self, ref: ParsedRef, *, client_factory: Callable[[str], Any] | None = None
    ) -> None:
        check_options(ref, set())
        parts = ref.path.split("/")
        if len(parts) not in (2, 3) or not all(parts) or ref.fragment is not None:
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write azure-kv://VAULT_NAME/SECRET_NAME[/VERSION]"
            )
        host = parts[0] if "." in parts[0] else f"{parts[0]}.vault.azure.net"
        self.reference = ref.text
        self.vault_url = f"https://{host}"
        self.name = parts[1]
        self.version = parts[2] if len(parts) == 3 else None
        self._factory = client_factory
        self._client: Any = None
        self._last: KeyMetadata | None = None
        self._lock = threading.Lock()

    def fetch(self) -> str:
        client = self._get_client()
        try:
            secret = client.get_secret(self.name, self.version)
        except Exception as exc:
            reason = classify(exc, _AZURE_ERRORS) or "unreachable"
            raise SecretBackendError(self.reference, reason, type(exc).__name__) from None
        props = secret.properties
        self._last = KeyMetadata(
            created_at=getattr(props, "created_on", None),
            rotated_at=getattr(props, "updated_on", None),
            expires_at=getattr(props, "expires_on", None),
            version=getattr(props, "version", None),
        )
        if not isinstance(secret.value, str):
            raise SecretBackendError(self.reference, "invalid", "the secret has no value")
        return secret.value

    def metadata(self) -> KeyMetadata | None:
        """Known from the last fetch (Key Vault returns properties with the value)."""
        return self._last

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                if self._factory is not None:
                    self._client = self._factory(self.vault_url)
                else:
                    secrets = import_extra("azure.keyvault.secrets", "azure", self.reference)
                    identity = import_extra("azure.identity", "azure", self.reference)
                    self._client = secrets.SecretClient(
                        vault_url=self.vault_url, credential=identity.DefaultAzureCredential()
                    )
            return self._client
