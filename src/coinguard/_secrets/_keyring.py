"""``keyring://service/username``: the OS keychain through the ``keyring`` library."""

from __future__ import annotations

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, SecretBackendError, check_options, import_extra

__all__ = ["KeyringBackend"]


class KeyringBackend:
    """Reads ``keyring.get_password(service, username)`` with whatever backend keyring selected."""

    local = False

    def __init__(self, ref: ParsedRef) -> None:
        check_options(ref, set())
        service, _, username = ref.path.rpartition("/")
        if not service or not username or ref.fragment is not None:
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write keyring://service/username"
            )
        self.reference = ref.text
        self.service = service
        self.username = username

    def fetch(self) -> str:
        keyring = import_extra("keyring", "keyring", self.reference)
        errors = import_extra("keyring.errors", "keyring", self.reference)
        try:
            value = keyring.get_password(self.service, self.username)
        except errors.KeyringLocked:
            raise SecretBackendError(self.reference, "access_denied", "keyring is locked") from None
        except errors.NoKeyringError:
            raise SecretBackendError(
                self.reference, "unreachable", "no keyring backend is available"
            ) from None
        except errors.KeyringError as exc:
            raise SecretBackendError(self.reference, "unreachable", type(exc).__name__) from None
        if value is None:
            raise SecretBackendError(
                self.reference, "not_found", f"no entry for {self.username!r} in {self.service!r}"
            )
        return str(value)

    def metadata(self) -> KeyMetadata | None:
        return None
