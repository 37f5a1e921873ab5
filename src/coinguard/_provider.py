"""Provider profiles: where an API lives, how its key is sent, which routes are reads or trades."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ._exceptions import ConfigurationError
from ._quota import QuotaPolicy, Window
from ._verify import KeyCheck, sandbox_key_info

__all__ = [
    "AuthStyle",
    "BearerKey",
    "HeaderKey",
    "Provider",
    "QueryKey",
    "Scope",
    "get_provider",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Scope(str, Enum):
    """Which key a request needs: ``READ`` for data, ``TRADE`` for anything that can move money."""

    READ = "read"
    TRADE = "trade"


def _check_name(kind: str, name: str) -> str:
    if not name or not _HEADER_NAME.match(name):
        raise ConfigurationError(f"{kind} name {name!r} is not a valid HTTP token")
    return name


@dataclass(frozen=True)
class HeaderKey:
    """Send the key in a request header, e.g. ``HeaderKey("x-api-key")``."""

    name: str

    def __post_init__(self) -> None:
        _check_name("header", self.name)


@dataclass(frozen=True)
class QueryKey:
    """Send the key as a query parameter, e.g. ``QueryKey("api_key")``; prefer headers."""

    name: str

    def __post_init__(self) -> None:
        _check_name("query parameter", self.name)


@dataclass(frozen=True)
class BearerKey:
    """Send the key as ``Authorization: Bearer <key>``."""

    header: str = "Authorization"
    prefix: str = "Bearer"


AuthStyle = HeaderKey | QueryKey | BearerKey


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    pattern: str

    @classmethod
    def parse(cls, pattern: str, where: str) -> _Route:
        method, sep, path = pattern.strip().partition(" ")
        if not sep or not path.startswith("/") or not method:
            raise ConfigurationError(
                f"{where}: route {pattern!r} must look like 'METHOD /path' (e.g. 'GET /orders*')"
            )
        body = ".*".join(re.escape(part) for part in path.strip().split("*"))
        return cls(method.upper(), re.compile(f"^{body}$"), pattern)

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and self.regex.match(path) is not None


def _routes(patterns: Iterable[str], where: str) -> tuple[_Route, ...]:
    return tuple(_Route.parse(p, where) for p in patterns)


@dataclass(frozen=True)
class Provider:
    """A provider profile: base URL, key placement, route scopes and provider quirks.

    >>> p = Provider(name="example", base_url="https://api.example.com/v2",
    ...              auth=HeaderKey("x-api-key"), trade_routes=["GET /orders*"])
    >>> p.scope_of("GET", "/orders/7")
    <Scope.TRADE: 'trade'>
    """

    name: str
    base_url: str | None
    auth: AuthStyle = field(default_factory=lambda: HeaderKey("x-api-key"))
    read_routes: Iterable[str] = ()
    trade_routes: Iterable[str] = ()
    read_key_env: str | None = None
    trade_key_env: str | None = None
    envelope: bool = False
    request_id_headers: tuple[str, ...] = ("x-request-id",)
    idempotency_header: str | None = None
    idempotent_routes: Iterable[str] = ()
    retryable_statuses: frozenset[int] = frozenset()
    quota: QuotaPolicy | None = None
    key_check: Any = None
    _read: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _trade: tuple[_Route, ...] = field(init=False, repr=False, compare=False)
    _idempotent: tuple[_Route, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.auth, HeaderKey | QueryKey | BearerKey):
            raise ConfigurationError(
                f"provider {self.name!r}: auth must be HeaderKey, QueryKey or BearerKey"
            )
        for attr in ("read_routes", "trade_routes", "idempotent_routes"):
            value = getattr(self, attr)
            if isinstance(value, str):
                raise ConfigurationError(
                    f"{self.name}.{attr} must be a list of 'METHOD /path' strings, not one string"
                )
            object.__setattr__(self, attr, tuple(value))
        object.__setattr__(self, "_read", _routes(self.read_routes, f"{self.name}.read_routes"))
        object.__setattr__(self, "_trade", _routes(self.trade_routes, f"{self.name}.trade_routes"))
        object.__setattr__(
            self, "_idempotent", _routes(self.idempotent_routes, f"{self.name}.idempotent_routes")
        )

    def scope_of(self, method: str, path: str) -> Scope:
        """Classify a request. Unsafe methods are trades unless listed in ``read_routes``.

        ``path`` is relative to the base URL, e.g. ``/price``.
        """
        method = method.upper()
        if method in _SAFE_METHODS:
            trade = any(r.matches(method, path) for r in self._trade)
            return Scope.TRADE if trade else Scope.READ
        read = any(r.matches(method, path) for r in self._read)
        return Scope.READ if read else Scope.TRADE

    def is_idempotent(self, method: str, path: str) -> bool:
        """True when the provider declares that re-sending this trade route repeats nothing."""
        return any(r.matches(method.upper(), path) for r in self._idempotent)


_TOKENMETRICS = Provider(
    name="tokenmetrics",
    base_url="https://api.tokenmetrics.com/v2",
    auth=HeaderKey("x-api-key"),
    read_key_env="TOKENMETRICS_API_KEY",
    envelope=True,
)

_SANDBOX = Provider(
    name="sandbox",
    base_url="http://127.0.0.1:8765/v2",
    auth=HeaderKey("x-api-key"),
    trade_routes=["GET /orders*"],
    read_key_env="COINGUARD_SANDBOX_READ_KEY",
    trade_key_env="COINGUARD_SANDBOX_TRADE_KEY",
    envelope=True,
    idempotency_header="Idempotency-Key",
    key_check=KeyCheck("GET", "/key", sandbox_key_info),
    # The embedded sandbox's default limits and costs (coinguard.sandbox.SandboxConfig).
    quota=QuotaPolicy(
        (Window.per_second(50), Window.per_minute(1000)),
        costs={"GET /daily-ohlcv*": 2, "GET /hourly-ohlcv*": 2},
    ),
)

_GENERIC = Provider(name="generic", base_url=None)

_BUILTIN = {p.name: p for p in (_TOKENMETRICS, _SANDBOX, _GENERIC)}


def get_provider(name: str) -> Provider:
    """Return a built-in provider profile by name (``tokenmetrics``, ``sandbox``, ``generic``)."""
    try:
        return _BUILTIN[name.lower()]
    except KeyError:
        known = ", ".join(sorted(_BUILTIN))
        raise ConfigurationError(f"unknown provider {name!r}; built-in: {known}") from None
