"""The one error tree of coinguard.

Every error coinguard raises is a :class:`CoinguardError`. No message, attribute or
``__cause__`` chain ever holds a key value: keys are named by where they came from and by
their fingerprint.

::

    CoinguardError
    ├── ConfigurationError            bad settings, provider, key source or argument
    │   ├── ArgumentTypeError         an argument of the wrong type (also a TypeError)
    │   ├── MissingKeyError           no key where we looked (names every place looked)
    │   ├── SecretBackendError        a secret reference failed: not found, access denied, ...
    │   └── OverPrivilegedKeyError    verify_key(): a read key can trade, a trade key can withdraw
    ├── ScopeError                    trade call on a read-only client; refused before any I/O
    ├── InsecureTransportError        plain http to a non-loopback host, or a foreign origin
    ├── QuotaExceededError            a declared window is full and on_quota="raise" (or max_wait,
    │                                 or the call's deadline); ``window`` names it
    ├── TradeRefusedError             an agent's trade tool refused an order (symbol, cap,
    │                                 approval) before sending anything
    ├── BudgetExceededError           an agent's own budget (agent tools) has no room; nothing
    │                                 was sent
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
            └── OrderOutcomeUnknownError  a trade may have been executed: the connection
                                          failed after sending, or the answer was 408/5xx

Warnings (``UserWarning`` subclasses): ``KeyAgeWarning`` (a key is older than the rotation policy
or expires soon), ``KeyPrivilegeWarning`` (``verify_key(on_finding="warn")``).

A wrong argument is refused at the call that received it, before any I/O, with a message naming
the argument and the fix: a wrong *type* raises :class:`ArgumentTypeError` (a ``TypeError`` too,
as Python convention has it), a wrong *value* or combination raises ``ConfigurationError``.

httpx errors are translated in exactly one place (``translate`` in
``coinguard._outcome``). No coinguard error chains a foreign exception (``__cause__`` and
``__context__`` are empty or coinguard errors): httpx's errors hold the keyed request, a JSON
decode error holds the whole document, a backend's error may hold the secret. The foreign
error's type and redacted text are in the message instead; where key material was handled
below a raise (key sources, secret backends), ``seal()`` also drops the frames under it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ArgumentTypeError",
    "AuthenticationError",
    "BudgetExceededError",
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
    "TradeRefusedError",
    "seal",
]


class CoinguardError(Exception):
    """Base class of every coinguard error."""


class ConfigurationError(CoinguardError):
    """Settings, provider definition or key source are invalid."""


class ArgumentTypeError(ConfigurationError, TypeError):
    """An argument has the wrong type; the message names it and what it accepts.

    >>> issubclass(ArgumentTypeError, TypeError)
    True
    """


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


class TradeRefusedError(CoinguardError):
    """A trade tool refused an order before sending it: symbol, cap or approval."""


class BudgetExceededError(CoinguardError):
    """An agent's own budget has no room for this tool call; nothing was sent."""


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
    """429 (or 418, an IP ban). ``retry_after`` is seconds to wait, or None when unknown;
    ``final`` is True for a limit that is never retried (a monthly allowance spent)."""

    def __init__(self, message: str, *, final: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.final = final


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

    Raised when the connection failed after the order may have been sent (a read timeout, a
    reset), and when the server answered with a status that does not say whether it executed
    the order (408, 5xx): then ``status_code``, ``body`` and ``request_id`` hold that answer
    (they are None when there was none). coinguard never re-sends such a request on its own
    unless the provider de-duplicates it (an idempotency key). Reconcile with the provider
    (e.g. list open orders, or query by ``idempotency_key``) before trying again.

    For a provider that declares :class:`coinguard.ClientOrderId`, coinguard reconciles by
    itself and raises this only when it still cannot tell: ``client_order_id`` is the id the
    order carried, ``tried`` what was done to find out (each lookup, each re-send).
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str | None,
        sent_at: datetime,
        status_code: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        method: str = "",
        url: str = "",
        client_order_id: str | None = None,
        tried: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, request_sent=True, method=method, url=url)
        self.idempotency_key = idempotency_key
        self.client_order_id = client_order_id
        self.tried = tried
        self.sent_at = sent_at
        self.status_code = status_code
        self.body = body
        self.request_id = request_id


def seal(exc: CoinguardError) -> CoinguardError:
    """Cut ``exc`` off from every foreign exception in its chain, and from the tracebacks of
    the coinguard errors chained to it (their frames may hold a raw key in a local).

    Raise the result outside any ``except`` clause, with ``.with_traceback(None)`` where the
    frames below the raise handled key material.

    >>> try:
    ...     try:
    ...         {}["key-value"]
    ...     except KeyError:
    ...         raise ConfigurationError("no such key") from None
    ... except ConfigurationError as caught:
    ...     err = caught
    >>> seal(err).__context__ is None
    True
    """
    node: BaseException | None = exc
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if node is not exc:
            node.__traceback__ = None
        if not isinstance(node.__cause__, CoinguardError):
            node.__cause__ = None
        if not isinstance(node.__context__, CoinguardError):
            node.__context__ = None
        node = node.__cause__ or node.__context__
    return exc
