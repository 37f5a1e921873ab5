"""Local backends: ``env://VAR``, ``file:///abs/path`` and ``dotenv://path/.env#VAR``."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, SecretBackendError, check_options

__all__ = ["DotenvBackend", "EnvBackend", "FileBackend"]


def _read_text(reference: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretBackendError(reference, "not_found", f"no file {path}") from None
    except PermissionError:
        raise SecretBackendError(reference, "access_denied", f"cannot read {path}") from None
    except IsADirectoryError:
        raise SecretBackendError(reference, "invalid", f"{path} is a directory") from None
    except UnicodeDecodeError:
        raise SecretBackendError(reference, "invalid", f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise SecretBackendError(reference, "unreachable", type(exc).__name__) from None


class EnvBackend:
    """``env://VAR``: an environment variable, read at each fetch."""

    local = True

    def __init__(self, ref: ParsedRef) -> None:
        check_options(ref, set())
        if not ref.path or ref.fragment is not None:
            raise ConfigurationError(f"secret reference {ref.text!r}: write env://VARIABLE_NAME")
        self.reference = ref.text
        self.var = ref.path

    def fetch(self) -> str:
        value = os.environ.get(self.var)
        if value is None:
            raise SecretBackendError(self.reference, "not_found", f"{self.var} is not set")
        return value

    def metadata(self) -> KeyMetadata | None:
        return None


class FileBackend:
    """``file:///run/secrets/tm_read``: a whole file (absolute path); its mtime is the rotation."""

    local = True

    def __init__(self, ref: ParsedRef) -> None:
        check_options(ref, set())
        if not ref.path.startswith("/") or ref.fragment is not None:
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write file:// followed by an absolute path, "
                "e.g. file:///run/secrets/tm_read"
            )
        self.reference = ref.text
        self.path = Path(ref.path)

    def fetch(self) -> str:
        return _read_text(self.reference, self.path)

    def metadata(self) -> KeyMetadata | None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return None
        return KeyMetadata(rotated_at=datetime.fromtimestamp(mtime, tz=timezone.utc))


class DotenvBackend:
    """``dotenv://path/to/.env#VAR``: one variable of a ``.env`` file (relative to the cwd)."""

    local = True

    def __init__(self, ref: ParsedRef) -> None:
        check_options(ref, set())
        if not ref.path or not ref.fragment:
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write dotenv://path/to/.env#VARIABLE_NAME"
            )
        self.reference = ref.text
        self.path = Path(ref.path)
        self.var = ref.fragment

    def fetch(self) -> str:
        from dotenv import dotenv_values  # a dependency of pydantic-settings

        if not self.path.is_file():
            raise SecretBackendError(self.reference, "not_found", f"no file {self.path}")
        try:
            values = dotenv_values(self.path, interpolate=False, encoding="utf-8")
        except PermissionError:
            raise SecretBackendError(
                self.reference, "access_denied", f"cannot read {self.path}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretBackendError(self.reference, "invalid", type(exc).__name__) from None
        value = values.get(self.var)
        if value is None:
            raise SecretBackendError(
                self.reference, "not_found", f"{self.var} is not set in {self.path}"
            )
        return value

    def metadata(self) -> KeyMetadata | None:
        return None
