"""``vault://mount/path#field``: a KV v2 secret in HashiCorp Vault or OpenBao, via hvac.

Environment (``BAO_*`` is read when the ``VAULT_*`` name is unset):

* ``VAULT_ADDR`` / ``BAO_ADDR`` -- server address (required);
* ``VAULT_TOKEN`` / ``BAO_TOKEN`` -- token auth; otherwise
* ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID`` -- AppRole login, at ``VAULT_APPROLE_MOUNT`` (default
  ``approle``);
* ``VAULT_NAMESPACE``, ``VAULT_CACERT`` -- optional namespace and CA bundle.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, Reason, SecretBackendError, check_options, import_extra

__all__ = ["VaultBackend"]

TIMEOUT_SECONDS = 10

_HVAC_ERRORS: tuple[tuple[str, Reason], ...] = (
    ("InvalidPath", "not_found"),
    ("Forbidden", "access_denied"),
    ("Unauthorized", "access_denied"),
    ("InvalidRequest", "invalid"),
)


def _env(name: str) -> str | None:
    return os.environ.get(f"VAULT_{name}") or os.environ.get(f"BAO_{name}") or None


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # Vault prints nanoseconds ("...:05.123456789Z"); datetime takes at most microseconds.
    head, dot, frac = text.rstrip("Z").partition(".")
    micro = f".{frac[:6].ljust(6, '0')}" if dot else ""
    try:
        return datetime.fromisoformat(f"{head}{micro}+00:00")
    except ValueError:
        return None


class VaultBackend:
    """One field of a KV v2 secret; without ``#field`` the secret must hold exactly one key."""

    local = False

    def __init__(self, ref: ParsedRef) -> None:
        check_options(ref, set())
        mount, _, path = ref.path.partition("/")
        if not mount or not path or ref.fragment == "":
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write vault://mount/path/to/secret#field"
            )
        self.reference = ref.text
        self.mount = mount
        self.path = path
        self.field = ref.fragment
        self._client: Any = None
        self._lock = threading.Lock()

    def fetch(self) -> str:
        response = self._call(
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        )
        data: dict[str, Any] = response.get("data", {}).get("data") or {}
        if self.field is None:
            if len(data) != 1:
                raise SecretBackendError(
                    self.reference, "invalid", f"the secret has {len(data)} keys; add #field"
                )
            return self._as_text(next(iter(data.values())), next(iter(data)))
        if self.field not in data:
            raise SecretBackendError(self.reference, "not_found", f"no field {self.field!r}")
        return self._as_text(data[self.field], self.field)

    def metadata(self) -> KeyMetadata | None:
        response = self._call(
            lambda c: c.secrets.kv.v2.read_secret_metadata(path=self.path, mount_point=self.mount)
        )
        meta: dict[str, Any] = response.get("data") or {}
        current = meta.get("current_version")
        version_info = (meta.get("versions") or {}).get(str(current)) or {}
        return KeyMetadata(
            created_at=_timestamp(meta.get("created_time")),
            rotated_at=_timestamp(version_info.get("created_time")),
            version=None if current is None else str(current),
        )

    def _as_text(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise SecretBackendError(
                self.reference, "invalid", f"field {name!r} is {type(value).__name__}"
            )
        return value

    def _call(self, operation: Any) -> Any:
        hvac_exc = import_extra("hvac.exceptions", "vault", self.reference)
        requests_exc = import_extra("requests.exceptions", "vault", self.reference)
        for attempt in (1, 2):
            client, approle = self._get_client()
            try:
                return operation(client)
            except (hvac_exc.Forbidden, hvac_exc.Unauthorized):
                if approle and attempt == 1:
                    self._drop_client()  # the AppRole token may have expired: log in again once
                    continue
                raise SecretBackendError(self.reference, "access_denied") from None
            except hvac_exc.VaultError as exc:
                reason: Reason = next(
                    (r for name, r in _HVAC_ERRORS if isinstance(exc, getattr(hvac_exc, name))),
                    "unreachable",
                )
                raise SecretBackendError(self.reference, reason, type(exc).__name__) from None
            except requests_exc.RequestException as exc:
                raise SecretBackendError(
                    self.reference, "unreachable", type(exc).__name__
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_client(self) -> None:
        with self._lock:
            self._client = None

    def _get_client(self) -> tuple[Any, bool]:
        role_id, secret_id = _env("ROLE_ID"), _env("SECRET_ID")
        approle = _env("TOKEN") is None and role_id is not None
        with self._lock:
            if self._client is None:
                self._client = self._login(role_id, secret_id)
            return self._client, approle

    def _login(self, role_id: str | None, secret_id: str | None) -> Any:
        hvac = import_extra("hvac", "vault", self.reference)
        address, token = _env("ADDR"), _env("TOKEN")
        if address is None:
            raise SecretBackendError(self.reference, "invalid", "set VAULT_ADDR (or BAO_ADDR)")
        client = hvac.Client(
            url=address,
            token=token,
            namespace=_env("NAMESPACE"),
            verify=_env("CACERT") or True,
            timeout=TIMEOUT_SECONDS,
        )
        if token is not None:
            return client
        if role_id is None or secret_id is None:
            raise SecretBackendError(
                self.reference,
                "access_denied",
                "no credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID",
            )
        hvac_exc = import_extra("hvac.exceptions", "vault", self.reference)
        requests_exc = import_extra("requests.exceptions", "vault", self.reference)
        mount = _env("APPROLE_MOUNT") or "approle"
        try:
            client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
        except hvac_exc.VaultError as exc:
            raise SecretBackendError(
                self.reference, "access_denied", f"AppRole login failed ({type(exc).__name__})"
            ) from None
        except requests_exc.RequestException as exc:
            raise SecretBackendError(self.reference, "unreachable", type(exc).__name__) from None
        return client
