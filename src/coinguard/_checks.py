"""Argument checks shared by :class:`Client` and :class:`AsyncClient` (sans-I/O).

A wrong argument is refused where it was passed, before any I/O, naming the argument and the
fix: a wrong type is :class:`ArgumentTypeError` (also a ``TypeError``), a wrong value or
combination :class:`ConfigurationError`. Without these checks the mistake surfaces later, from
inside httpx or the quota engine, as an ``AttributeError`` or ``TypeError`` that names neither.

>>> check_call("fetch", "/price", json=None, content=None, closed=False, extra_methods=())
Traceback (most recent call last):
...
coinguard._exceptions.ConfigurationError: method 'FETCH' is not an HTTP method coinguard sends; \
use one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping

import httpx

from ._exceptions import ArgumentTypeError, ConfigurationError
from ._quota import QuotaStore

__all__ = ["check_call", "check_client_args", "check_quota_args"]

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
_KNOWN = frozenset(METHODS)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def _type_name(value: object) -> str:
    return type(value).__name__


def _expect(name: str, value: object, types: tuple[type, ...], what: str) -> None:
    # bool is an int subclass; True is never meant as a count or a number of seconds
    if isinstance(value, bool) and bool not in types:
        raise ArgumentTypeError(f"{name} must be {what}, not bool")
    if not isinstance(value, types):
        raise ArgumentTypeError(f"{name} must be {what}, not {_type_name(value)}")


def _non_negative_int(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    _expect(name, value, (int,), "an int >= 0" + (" or None" if optional else ""))
    if value < 0:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be >= 0, got {value}")


def _seconds(name: str, value: object, what: str, *, zero: bool = False) -> None:
    _expect(name, value, (int, float), what)
    seconds = float(value)  # type: ignore[arg-type]
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        least = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise ConfigurationError(f"{name} must be {least}, got {value}")


def check_client_args(
    *,
    provider: object,
    trade_key: object,
    allow_trading: object,
    base_url: object,
    timeout: object,
    settings: object,
    env_file: object,
    retry: object,
    max_retries: object,
    follow_redirects: object,
    max_redirects: object,
) -> None:
    """Refuse constructor arguments a client could not use; called before anything is loaded."""
    from ._provider import Provider
    from ._retry import RetryPolicy
    from ._settings import Settings

    _expect(
        "provider",
        provider,
        (str, Provider),
        "a built-in provider name ('tokenmetrics', 'sandbox', 'generic') or a coinguard.Provider",
    )
    _expect("allow_trading", allow_trading, (bool,), "True or False")
    if trade_key is not None and not allow_trading:
        raise ConfigurationError(
            "trade_key was given but allow_trading is False, so it would never be used; pass "
            "allow_trading=True to place trades with it, or drop trade_key for a read-only client"
        )
    if base_url is not None:
        _expect("base_url", base_url, (str,), "a URL string such as 'https://api.example.com/v2'")
    if timeout is not None and not isinstance(timeout, httpx.Timeout):
        _seconds("timeout", timeout, "a number of seconds, an httpx.Timeout or None")
    if settings is not None:
        _expect("settings", settings, (Settings,), "a coinguard.Settings or None")
    if env_file is not None:
        _expect("env_file", env_file, (str, os.PathLike), "a path such as '.env' or None")
    if retry is not None:
        _expect("retry", retry, (RetryPolicy,), "a coinguard.RetryPolicy or None")
    _non_negative_int("max_retries", max_retries, optional=True)
    _expect("follow_redirects", follow_redirects, (bool,), "True or False")
    _non_negative_int("max_redirects", max_redirects)


def check_quota_args(*, on_quota: object, max_wait: object, quota_store: object = None) -> None:
    """Refuse quota arguments the engine would only trip over at the first request."""
    if on_quota not in ("wait", "raise"):
        raise ConfigurationError(f"on_quota must be 'wait' or 'raise', not {on_quota!r}")
    _seconds("max_wait", max_wait, "a number of seconds", zero=True)  # 0: never wait
    if quota_store is not None and not isinstance(quota_store, str):
        _expect("quota_store", quota_store, (QuotaStore,), "a store URL or a QuotaStore")


def check_call(
    method: object,
    url: object,
    *,
    json: object,
    content: object,
    closed: bool,
    extra_methods: Collection[str],
    headers: object = None,
    idempotency_key: object = None,
) -> str:
    """Vet one call's arguments and return the method in upper case.

    ``extra_methods`` are methods a provider names in its routes (e.g. a ``QUERY`` route):
    those are sent as declared; any other unknown method is refused rather than guessed at.
    """
    if closed:
        raise ConfigurationError(
            "this client is closed; create a new one, or use it inside a with block that "
            "closes it at the end"
        )
    # every request passes here: the common case costs two type checks and two set lookups
    if type(method) is str and type(url) is str and headers is None and idempotency_key is None:
        upper = method.upper()
        if upper in _KNOWN and (upper not in _BODYLESS or (json is None and content is None)):
            return upper
    _expect("method", method, (str,), "an HTTP method such as 'GET' or 'POST'")
    upper = method.upper()  # type: ignore[attr-defined]
    if upper not in _KNOWN and upper not in extra_methods:
        raise ConfigurationError(
            f"method {upper!r} is not an HTTP method coinguard sends; "
            f"use one of {', '.join(METHODS)}"
        )
    _expect("url", url, (str,), "a path such as '/price' or a URL on the provider's origin")
    if upper in _BODYLESS:
        for name, value in (("json", json), ("content", content)):
            if value is not None:
                raise ConfigurationError(
                    f"{upper} sends no body, so {name}= would be ignored by the server; "
                    "pass query parameters as params={...}"
                )
    if headers is not None:
        _expect("headers", headers, (Mapping,), "a mapping of header names to values")
    if idempotency_key is not None:
        _expect("idempotency_key", idempotency_key, (str,), "a str or None")
        key = str(idempotency_key)
        # a header value: anything else fails inside h11, after the order was counted as sent
        if not 1 <= len(key) <= 255 or not all("!" <= ch <= "~" for ch in key):
            raise ConfigurationError(
                "idempotency_key must be 1 to 255 visible ASCII characters (it is sent as a "
                "header value)"
            )
    return str(upper)
