"""How an answer or a failed send becomes a result or a coinguard error (sans-I/O).

The one place where httpx's errors, HTTP statuses, a provider's own error codes and failure
envelopes are turned into the error tree. Every server-supplied string is redacted here, and
no foreign exception is chained: httpx's errors hold the keyed request, a decode error the
whole body.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
from typing import Any

import httpx

from . import _redact
from ._call import Call
from ._codes import coded_error
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CoinguardError,
    EnvelopeError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from ._headers import parse_server_quota, retry_after
from ._provider import ErrorCode, Provider
from ._retry import RetryPolicy

__all__ = ["Outcomes", "safe_url", "throttled_401"]

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    418: RateLimitError,
    429: RateLimitError,
}


class Outcomes:
    """The outcome half of :class:`coinguard._core.ClientCore`."""

    provider: Provider
    retry: RetryPolicy
    base_url: httpx.URL

    def translate(self, call: Call, exc: Exception, *, now: float) -> CoinguardError:
        """The one place where failures of a send become coinguard errors.

        The original exception is not chained: httpx's errors hold the request and the URL
        they were raised for, and an event hook's or a transport's exception may hold anything.
        Its type and redacted text are in the message instead.
        """
        if isinstance(exc, CoinguardError):
            return exc
        if isinstance(exc, httpx.HTTPStatusError):  # a caller's response hook: raise_for_status
            with contextlib.suppress(httpx.HTTPError, httpx.StreamError):  # closed by httpx
                exc.response.read()
            return self._status_error(call, exc.response, now=now)
        sent = not isinstance(exc, _NOT_SENT)
        where = f"{call.describe()} to {self.base_url.host}"
        if call.is_order and sent:
            return OrderOutcomeUnknownError(
                f"{where}: the connection failed after the order may have reached the server "
                f"({type(exc).__name__}); {_not_resent(call)}",
                idempotency_key=call.idempotency_key,
                sent_at=call.sent_at,
                method=call.method,
                url=safe_url(call.url),
            )
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        detail = _redact.redact(str(exc))[:200]
        return cls(
            f"{where} failed: {type(exc).__name__}" + (f": {detail}" if detail else ""),
            request_sent=sent,
            method=call.method,
            url=safe_url(call.url),
        )

    def outcome(self, call: Call, response: httpx.Response, *, now: float) -> Any:
        """Decode a response, or raise the error it stands for."""
        status = response.status_code
        if status >= 400 or 300 <= status < 400:
            raise self._status_error(call, response, now=now)
        if call.method == "HEAD" or status == 204 or not response.content:
            return None
        body = self._decode(call, response)
        failed = self.provider.envelope and isinstance(body, dict) and body.get("success") is False
        code = self.provider.error_code(body) if self.provider.error_code_at else None
        if code is not None:  # a code is text the provider chose: it may quote the key
            code = _redact.redact(code)
        if failed or (code is not None and code not in self.provider.success_codes):
            clean = _redact.redact_value(body)
            del body  # the raw body may echo the key: not a local of the raising frame
            raise self._body_error(call, response, clean, code, now=now)
        return body

    def _body_error(
        self, call: Call, response: httpx.Response, body: Any, code: str | None, *, now: float
    ) -> CoinguardError:
        """A 2xx whose body says it failed: an error code (CoinMarketCap checks it even on
        HTTP 200), or an envelope's ``success: false``."""
        meaning = self.provider.meaning(code) if code is not None else None
        if meaning is not None:
            return self._coded(call, response, body, code or "", meaning, now=now)
        return self._envelope_error(call, response, body, code)

    def _coded(
        self,
        call: Call,
        response: httpx.Response,
        body: Any,
        code: str,
        meaning: ErrorCode,
        *,
        now: float,
    ) -> CoinguardError:
        if meaning.kind == "unknown":  # "execution status unknown": never a plain failure
            return self._unknown_code(call, response, body, code, meaning)
        return coded_error(
            self.provider.name,
            code,
            meaning,
            where=call.describe(),
            status=response.status_code,
            text=_message(body),
            announced=retry_after(response.headers, now),
            now=now,
            body=body,
            request_id=self._request_id(response),
            method=call.method,
            url=safe_url(call.url),
        )

    def _unknown_code(
        self, call: Call, response: httpx.Response, body: Any, code: str, meaning: ErrorCode
    ) -> CoinguardError:
        said = _message(body)
        message = (
            f"{call.describe()}: HTTP {response.status_code}, {self.provider.name} error {code}"
            + (f" ({said})" if said else "")
            + (f": {meaning.hint}" if meaning.hint else "")
        )
        if call.is_order:
            return OrderOutcomeUnknownError(
                f"{message}; the order may have been executed; {_not_resent(call)}",
                idempotency_key=call.idempotency_key,
                sent_at=call.sent_at,
                status_code=response.status_code,
                body=body,
                request_id=self._request_id(response),
                method=call.method,
                url=safe_url(call.url),
            )
        return ServerError(
            message,
            status_code=response.status_code,
            body=body,
            request_id=self._request_id(response),
            method=call.method,
            url=safe_url(call.url),
        )

    def _envelope_error(
        self, call: Call, response: httpx.Response, body: Any, code: str | None = None
    ) -> EnvelopeError:
        reason = f" {_redact.redact(code)[:100]}" if code else ""
        return EnvelopeError(
            f"{call.describe()}: the provider reported failure{reason}: {_message(body)}",
            status_code=response.status_code,
            request_id=self._request_id(response),
            body=body,
            method=call.method,
            url=safe_url(call.url),
        )

    def _decode(self, call: Call, response: httpx.Response) -> Any:
        body = _json(response.content)
        if body is not _INVALID:
            return body
        # raised here, not in an except clause: the decode error would keep the body
        ctype = _redact.redact(response.headers.get("content-type", ""))[:100]
        if call.is_order:  # accepted with an answer nobody can read: it may well have executed
            raise OrderOutcomeUnknownError(
                f"{call.describe()}: HTTP {response.status_code} with a body that is not JSON "
                f"({ctype or 'no content type'}): the order may have been executed; "
                f"{_not_resent(call)}",
                idempotency_key=call.idempotency_key,
                sent_at=call.sent_at,
                status_code=response.status_code,
                method=call.method,
                url=safe_url(call.url),
            )
        raise ResponseDecodeError(
            f"{call.describe()}: expected JSON, got {ctype or 'no content type'} "
            f"with status {response.status_code} ({len(response.content)} bytes)",
            status_code=response.status_code,
            content_type=ctype,
            method=call.method,
            url=safe_url(call.url),
        )

    def _request_id(self, response: httpx.Response) -> str | None:
        for name in self.provider.request_id_headers:
            if name in response.headers:
                return _redact.redact(response.headers[name])[:200]
        return None

    def _status_error(self, call: Call, response: httpx.Response, *, now: float) -> CoinguardError:
        status = response.status_code
        content = getattr(response, "_content", b"")  # unread when a caller's hook raised
        body = _json(content) if content else None
        body = None if body is _INVALID else _redact.redact_value(body)
        text = _message(body) if body is not None else ""
        text = text or _redact.redact(response.reason_phrase)[:100]
        message = f"{call.describe()}: HTTP {status} {text}".strip()
        common: dict[str, Any] = {
            "request_id": self._request_id(response),
            "method": call.method,
            "url": safe_url(call.url),
        }
        code = self.provider.error_code(body) if body is not None else None
        meaning = self.provider.meaning(code) if code is not None else None
        if meaning is not None:
            return self._coded(call, response, body, code or "", meaning, now=now)
        if throttled_401(self.provider, response):
            held = _throttled_for(response, now)
            return RateLimitError(
                f"{message}: throttled (the rate-limit headers say nothing remains), not a "
                f"bad key; retry after {held:.1f}s",
                retry_after=held,
                status_code=status,
                body=body,
                **common,
            )
        unknown = status == 408 or status >= 500
        if call.is_order and unknown and status not in self.retry.not_executed_statuses:
            return OrderOutcomeUnknownError(
                f"{message}: the order may have been executed; {_not_resent(call)}",
                idempotency_key=call.idempotency_key,
                sent_at=call.sent_at,
                status_code=status,
                body=body,
                **common,
            )
        cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
        after = retry_after(response.headers, now)  # any status may send it (RFC 9110)
        if after is not None:
            message += f" (retry after {after:.1f}s)"
        return cls(message, retry_after=after, status_code=status, body=body, **common)


_INVALID: Any = object()
_THROTTLE_FLOOR = 1.0  # seconds to hold a throttled key when the answer names no reset


def throttled_401(provider: Provider, response: httpx.Response) -> bool:
    """A 401 that is throttling, for a provider that answers it so (``throttles_with_401``):
    its headers say nothing remains, or name a Retry-After. A bad key's 401 says neither."""
    if not provider.throttles_with_401 or response.status_code != 401:
        return False
    headers = response.headers
    spent = headers.get("x-ratelimit-remaining", "").strip() == "0"
    return spent or "retry-after" in headers


def _throttled_for(response: httpx.Response, now: float) -> float:
    """How long a throttled 401 holds the key: its Retry-After, else its window's reset."""
    said = retry_after(response.headers, now)
    if said is not None:
        return said
    windows = parse_server_quota(response.headers, now=now).windows
    return max([_THROTTLE_FLOOR, *(w.reset for w in windows if w.reset is not None)])


def _not_resent(call: Call) -> str:
    if call.idempotent:
        return "re-sent under its idempotency key until the retries ran out. Reconcile first"
    return "not re-sent without an idempotency key. Reconcile before trying again"


def _json(content: bytes) -> Any:
    """The decoded body, or ``_INVALID``; never raises (a decode error keeps the whole body)."""
    try:
        return jsonlib.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _INVALID


def _message(body: Any) -> str:
    """The provider's own error text, from the shapes the known providers use."""
    if isinstance(body, dict):
        for key in ("message", "msg", "error_message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _redact.redact(value)[:300]
            if isinstance(value, list) and value:
                return _redact.redact("; ".join(map(str, value)))[:300]
        for nested in ("status", "error_response"):  # CoinMarketCap's, Coinbase's
            inner = body.get(nested)
            if isinstance(inner, dict):
                return _message(inner)
    return ""


def safe_url(url: httpx.URL) -> str:
    """A URL for messages: no query string (it may hold a key), any live key redacted."""
    return _redact.redact(str(url.copy_with(query=None, fragment=None)))
