"""Settings from the environment, an opt-in ``.env`` file or a secrets directory.

The read and trade key fields live in separate settings classes so that a read-only client can
resolve its configuration without ever loading a trade key into memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._redact import masked_url

__all__ = [
    "BaseSettings",
    "Settings",
    "key_fields",
    "load_general_settings",
    "load_scope_settings",
    "unread_dotenv",
]

_CONFIG = SettingsConfigDict(
    env_prefix="COINGUARD_",
    hide_input_in_errors=True,  # a validation error would otherwise quote the key
    env_file=None,  # opt-in: Settings(_env_file=".env")
    extra="ignore",
    frozen=True,
)


class _NoPickle:
    def __reduce__(self) -> NoReturn:
        raise TypeError("coinguard settings cannot be pickled: they may hold keys")


class KeyStr(SecretStr):
    """A ``SecretStr`` that refuses pickling: ``model_dump()`` output stays safe to hand around
    (pydantic's own ``SecretStr`` pickles its value in clear)."""

    def __reduce__(self) -> NoReturn:
        raise TypeError("a coinguard key cannot be pickled: it would write the key in clear")


class _ReadKeySettings(_NoPickle, BaseSettings):
    model_config = _CONFIG
    read_key: KeyStr | None = None
    read_key_file: Path | None = None
    read_key_ref: str | None = None
    read_secret: KeyStr | None = None
    read_secret_file: Path | None = None
    read_secret_ref: str | None = None


class _TradeKeySettings(_NoPickle, BaseSettings):
    model_config = _CONFIG
    trade_key: KeyStr | None = None
    trade_key_file: Path | None = None
    trade_key_ref: str | None = None
    trade_secret: KeyStr | None = None
    trade_secret_file: Path | None = None
    trade_secret_ref: str | None = None


class _GeneralSettings(_NoPickle, BaseSettings):
    model_config = _CONFIG
    quota_store: str | None = None
    base_url: str | None = None
    plan: str | None = None
    audit_log: str | None = None

    def __repr_args__(self) -> Any:
        # a Redis store URL may hold a password: reprs (and tracebacks' locals) mask it
        for name, value in super().__repr_args__():
            if name == "quota_store" and isinstance(value, str):
                value = masked_url(value)
            yield name, value


class Settings(_GeneralSettings, _ReadKeySettings, _TradeKeySettings):
    """coinguard configuration from ``COINGUARD_*`` variables (and ``.env`` when asked for).

    Keys are ``SecretStr``: their repr is masked. Pass an instance as ``Client(settings=...)``;
    without one, a read-only client reads only the read-key variables.

    >>> Settings(read_key="abc123")
    Settings(read_key=SecretStr('**********'), ...)  # doctest: +SKIP
    >>> Settings(_env_file=".env")  # opt in to a .env file  # doctest: +SKIP

    Also ``COINGUARD_QUOTA_STORE``, ``COINGUARD_BASE_URL`` and ``COINGUARD_AUDIT_LOG`` (a
    JSON Lines file every client journals its attempts to, see docs/observability.md). The
    day/month quota journal is set with ``COINGUARD_QUOTA_PERSIST``, read by the quota engine
    itself (see docs/quota.md).
    """


def load_general_settings(env_file: str | Path | None = None) -> _GeneralSettings:
    """``COINGUARD_QUOTA_STORE`` and ``COINGUARD_BASE_URL``, without touching any key variable."""
    return _GeneralSettings(_env_file=env_file)  # type: ignore[call-arg]


def key_fields(settings: BaseSettings, scope: str, kind: str = "key") -> dict[str, Any]:
    """The key (or signing secret) fields of one scope, read from a settings object."""
    return {
        "key": getattr(settings, f"{scope}_{kind}", None),
        "file": getattr(settings, f"{scope}_{kind}_file", None),
        "ref": getattr(settings, f"{scope}_{kind}_ref", None),
    }


def load_scope_settings(scope: str, env_file: str | Path | None = None) -> BaseSettings:
    """Load only one scope's key settings from the environment."""
    cls: type[BaseSettings] = _ReadKeySettings if scope == "read" else _TradeKeySettings
    return cls(_env_file=env_file)


def unread_dotenv(env_file: str | Path | None, opt_in: str, cwd: Path | None = None) -> str | None:
    """A note when ``./.env`` exists but is not read (loading it is opt-in), else None.

    ``opt_in`` says how to opt in where the note is shown, e.g. ``env_file=".env"``.

    >>> unread_dotenv(".env", 'env_file=".env"') is None
    True
    """
    if env_file is not None or not ((cwd or Path.cwd()) / ".env").is_file():
        return None
    return f"a .env file in the working directory was not read: loading it is opt-in ({opt_in})"
