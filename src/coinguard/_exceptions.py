"""The one error tree of coinguard.

Every error coinguard raises is a :class:`CoinguardError`. No message, attribute or
``__cause__`` chain ever holds a key value: keys are named by where they came from and by
their fingerprint.

::

    CoinguardError
    ├── ConfigurationError            bad settings, provider or key source
    │   ├── MissingKeyError           no key where we looked (names every place looked)
    │   ├── SecretBackendError        a secret reference failed: not found, access denied, ...
    │   └── OverPrivilegedKeyError    verify_key(): a read key can trade, a trade key can withdraw
    ├── ScopeError                    trade call on a read-only client; refused before any I/O
    ├── InsecureTransportError        plain http to a non-loopback host, or a foreign origin
    ├── QuotaExceededError            a declared window is full and on_quota="raise" (or max_wait,
    │                                 or the call's deadline); ``window`` names it
    ├── QuotaStoreError               the quota store (SQLite, Redis) failed before the call was
    │                                 sent; nothing was sent. After an answer a store failure is
    │                                 only logged: it never replaces the call's outcome
    └── APIError                      anything that went wrong talking to the provider
        ├── ResponseDecodeError       a body that is not the JSON we expected
        ├── APIStatusError            an HTTP error status, or success:false in an envelope
        │   ├── EnvelopeError         200 with success:false (message from the provider)
        │   ├── AuthenticationError   401
        │   ├── PermissionDeniedError 403
        │   ├── NotFoundError         404
        │   ├── RateLimitError        429 and 418 (IP ban); carries retry_after
        │   └── ServerError           5xx
        └── APIConnectionError        no HTTP response
            ├── APITimeoutError
            └── OrderOutcomeUnknownError  a trade request may have reached the server

Warnings (``UserWarning`` subclasses): ``KeyAgeWarning`` (a key is older than the rotation policy
or expires soon), ``KeyPrivilegeWarning`` (``verify_key(on_finding="warn")``).

httpx errors are translated in exactly one place (``ClientCore.translate`` in
``coinguard._core``), always with ``raise ... from exc``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "CoinguardError",
    "ConfigurationError",
    "EnvelopeError",
    "InsecureTransportError",
    "KeyAgeWarning",
    "KeyPrivilegeWarning",
    "MissingKeyError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "OverPrivilegedKeyError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "QuotaStoreError",
    "RateLimitError",
    "ResponseDecodeError",
    "ScopeError",
    "SecretBackendError",
    "ServerError",
]


class CoinguardError(Exception):
    """Base class of every coinguard error."""


class ConfigurationError(CoinguardError):
    """Settings, provider definition or key source are invalid."""


class MissingKeyError(ConfigurationError):
    """No key was found for a scope; the message names every place that was looked at."""


Reason = Literal["not_found", "access_denied", "unreachable", "invalid"]

_REASON_TEXT: dict[str, str] = {
    "not_found": "not found",
    "access_denied": "access denied",
    "unreachable": "backend unreachable",
    "invalid": "invalid value or reference",
}


class SecretBackendError(ConfigurationError):
    """A secret reference could not be resolved.

    ``reference`` is the reference text (never the value); ``reason`` is one of ``"not_found"``,
    ``"access_denied"``, ``"unreachable"`` or ``"invalid"``.

    >>> err = SecretBackendError("env://TM_KEY", "not_found", "the variable is not set")
    >>> str(err)
    'secret env://TM_KEY: not found (the variable is not set)'
    """

    def __init__(self, reference: str, reason: Reason, detail: str = "") -> None:
        message = f"secret {reference}: {_REASON_TEXT[reason]}"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.reference = reference
        self.reason: Reason = reason


class OverPrivilegedKeyError(ConfigurationError):
    """A key can do more than its scope needs (e.g. a read key that can trade)."""


class KeyAgeWarning(UserWarning):
    """A key is older than the age policy allows, has expired, or expires soon."""


class KeyPrivilegeWarning(UserWarning):
    """Issued instead of :class:`OverPrivilegedKeyError` when ``on_finding="warn"``."""


class ScopeError(CoinguardError):
    """A request needs a scope this client may not use. Raised before any network I/O."""


class InsecureTransportError(CoinguardError):
    """The request would send a key over plain HTTP or to an origin other than the provider's."""


class QuotaExceededError(CoinguardError):
    """A declared rate-limit window has no room for this call.

    ``window`` names the window, ``retry_after`` is the number of seconds until it has room.
    """

    def __init__(self, message: str, *, window: str, retry_after: float) -> None:
        super().__init__(message)
        self.window = window
        self.retry_after = retry_after


class QuotaStoreError(CoinguardError):
    """The quota store failed (SQLite "database is locked", Redis connection lost, ...).

    Raised only before a call is sent, so nothing was sent; ``store`` names the store, and the
    store's own exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, store: str) -> None:
        super().__init__(message)
        self.store = store


class APIError(CoinguardError):
    """Talking to the provider failed. ``method`` and ``url`` never include a query-string key."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ResponseDecodeError(APIError):
    """The body is not the JSON we expected; the message gives status and content type, not body."""

    def __init__(
        self, message: str, *, status_code: int, content_type: str, method: str = "", url: str = ""
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.content_type = content_type


class APIStatusError(APIError):
    """The provider answered with an error (an HTTP status, or ``success: false``).

    ``retry_after`` is the server's ``Retry-After`` in seconds (any status may send it, e.g. a
    503 during maintenance), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after


class EnvelopeError(APIStatusError):
    """A 2xx response whose envelope says ``success: false``."""


class AuthenticationError(APIStatusError):
    """401: the key was rejected."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404."""


class RateLimitError(APIStatusError):
    """429 (or 418, an IP ban). ``retry_after`` is seconds to wait, or None when unknown."""


class ServerError(APIStatusError):
    """5xx."""


class APIConnectionError(APIError):
    """No HTTP response was received (DNS, refused, reset, TLS, protocol error).

    ``request_sent`` is False when the failure happened before any byte of the request could
    reach the server (connect errors, pool timeouts), so re-sending is always safe.
    """

    def __init__(
        self, message: str, *, request_sent: bool = True, method: str = "", url: str = ""
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class OrderOutcomeUnknownError(APIConnectionError):
    """A trade request may have reached the server, and we do not know what it did.

    coinguard never re-sends such a request on its own. Reconcile with the provider (e.g. list
    open orders, or query by ``idempotency_key``) before trying again.
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str | None,
        sent_at: datetime,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message, request_sent=True, method=method, url=url)
        self.idempotency_key = idempotency_key
        self.sent_at = sent_at
