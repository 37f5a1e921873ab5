"""The sans-I/O core shared by :class:`Client` and :class:`AsyncClient`.

It decides everything that needs no network: the scope of a call, which key slot serves it, the
URL and its origin, the auth flow, where a redirect may go with the key, how a response or an
httpx error becomes a result or a coinguard error. The shells only load, sleep, await and send.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json as jsonlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import httpx

from . import _redact
from ._auth import ScopedKeyAuth, strip_key
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    EnvelopeError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ScopeError,
    ServerError,
)
from ._headers import retry_after
from ._keys import KeyInput, KeySlot, resolve_source
from ._origin import check_base_url, join_url, origin_of
from ._provider import Provider, Scope, get_provider
from ._retry import RetryPolicy
from ._secret import Secret
from ._settings import (
    BaseSettings,
    Settings,
    key_fields,
    load_general_settings,
    load_scope_settings,
)
from ._verify import KeyReport, report

__all__ = ["Call", "ClientCore"]

log = logging.getLogger("coinguard.client")

_URL_CACHE = 4096
_USER_AGENT = f"coinguard/{_version('coinguard')} httpx/{httpx.__version__}"
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    418: RateLimitError,
    429: RateLimitError,
}


@dataclass(frozen=True)
class Call:
    """One logical API call, before any key is attached. Holds no secret."""

    method: str
    path: str
    url: httpx.URL
    scope: Scope
    params: Any
    json: Any
    content: Any
    headers: Mapping[str, str] | None
    idempotency_key: str | None
    idempotent: bool
    sent_at: datetime

    def describe(self) -> str:
        return f"{self.method} {self.path}"


class ClientCore:
    """Everything :class:`Client` and :class:`AsyncClient` share; does no I/O."""

    def __init__(
        self,
        *,
        provider: Provider | str,
        read_key: KeyInput | None,
        trade_key: KeyInput | None,
        allow_trading: bool,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        settings: Settings | None,
        env_file: str | Path | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
        follow_redirects: bool,
        max_redirects: int,
    ) -> None:
        self.provider = get_provider(provider) if isinstance(provider, str) else provider
        general = settings or load_general_settings(env_file)
        self.quota_store = general.quota_store
        url = base_url or general.base_url or self.provider.base_url
        if not url:
            raise ConfigurationError(
                f"provider {self.provider.name!r} has no base_url; pass base_url=..."
            )
        self.base_url = check_base_url(url, self.provider.name)
        self.origin = origin_of(self.base_url)
        self.allow_trading = allow_trading
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = dataclasses.replace(policy, max_retries=max_retries)
        extra = self.provider.retryable_statuses - policy.retry_statuses
        if extra:
            policy = dataclasses.replace(policy, retry_statuses=policy.retry_statuses | extra)
        self.retry = policy
        self.follow_redirects = follow_redirects
        self._urls: dict[str, tuple[httpx.URL, str]] = {}
        self._auths: dict[str, tuple[Secret, ScopedKeyAuth]] = {}
        self.max_redirects = max_redirects
        self.read = self._slot("read", read_key, settings, env_file, self.provider.read_key_env)
        self.trade: KeySlot | None = None
        if allow_trading:
            self.trade = self._slot(
                "trade", trade_key, settings, env_file, self.provider.trade_key_env
            )
            self.trade.peer, self.read.peer = self.read, self.trade
            self._eager(self.trade)
        self._eager(self.read)
        _redact.install()

    @staticmethod
    def _slot(
        scope: str,
        explicit: KeyInput | None,
        settings: Settings | None,
        env_file: str | Path | None,
        provider_env: str | None,
    ) -> KeySlot:
        source_settings: BaseSettings = settings or load_scope_settings(scope, env_file)
        source = resolve_source(scope, explicit, key_fields(source_settings, scope), provider_env)
        return KeySlot(scope, source)

    @staticmethod
    def _eager(slot: KeySlot) -> None:
        if slot.source.local:
            _redact.register(slot.get())

    # -- building a call ---------------------------------------------------------------------

    def prepare(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        scope: Scope | None = None,
    ) -> Call:
        """Classify and vet a call; raises ScopeError/InsecureTransportError before any I/O.

        ``scope`` overrides the route rule; only key verification uses it, to ask the
        key-info route about each key.
        """
        method = method.upper()
        joined = self._urls.get(url)
        if joined is None:
            joined = join_url(self.base_url, url)
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[url] = joined
        full, path = joined
        scope = scope or self.provider.scope_of(method, path)
        if scope is Scope.TRADE and self.trade is None:
            raise ScopeError(
                f"{method} {path} needs the trade key, and this client is read-only; "
                "create it with allow_trading=True and a trade_key"
            )
        idem_header = self.provider.idempotency_header
        if idempotency_key is not None and not idem_header:
            raise ConfigurationError(
                f"provider {self.provider.name!r} declares no idempotency header, so "
                "idempotency_key= cannot be sent; set Provider(idempotency_header=...)"
            )
        idem = None
        if scope is Scope.TRADE and idem_header and method not in ("GET", "HEAD", "OPTIONS"):
            idem = idempotency_key or str(uuid.uuid4())
        # Reads are always safe to re-send. A trade only when the server de-duplicates it: an
        # idempotency key goes with it, or the provider lists the route as idempotent (whatever
        # the HTTP method says: a PUT that places an order is not idempotent in practice).
        idempotent = (
            scope is Scope.READ or idem is not None or self.provider.is_idempotent(method, path)
        )
        return Call(
            method=method,
            path=path,
            url=full,
            scope=scope,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idem,
            idempotent=idempotent,
            sent_at=datetime.now(timezone.utc),
        )

    def key_checks(self) -> list[tuple[Call, KeySlot]]:
        """One key-info call per configured scope, each to be sent with that scope's key."""
        check = self.provider.key_check
        if check is None:
            raise ConfigurationError(
                f"provider {self.provider.name!r} has no key-info check; "
                "set Provider(key_check=...)"
            )
        slots = [self.read] + ([self.trade] if self.trade is not None else [])
        return [
            (self.prepare(check.method, check.path, scope=Scope(slot.scope_name)), slot)
            for slot in slots
        ]

    def key_report(self, slot: KeySlot, body: Any, *, max_age: timedelta) -> KeyReport:
        """Judge one key from its key-info answer."""
        secret = slot.loaded
        return report(
            slot.scope_name,
            secret.fingerprint if secret else "?",
            self.provider.key_check.parse(body),
            max_age=max_age,
            now=datetime.now(timezone.utc),
        )

    def slot(self, call: Call) -> KeySlot:
        """The key slot that serves this call; there is no fallback between slots."""
        if call.scope is Scope.READ:
            return self.read
        if self.trade is None:  # prepare() already refused; kept for defence in depth
            raise ScopeError(f"{call.describe()} needs the trade key")
        return self.trade

    def http_defaults(self) -> dict[str, Any]:
        """Settings for an httpx client coinguard creates itself (then not repeated per request)."""
        return {"headers": {"user-agent": _USER_AGENT}, "timeout": self.timeout}

    def build_args(self, call: Call, *, own_client: bool) -> dict[str, Any]:
        """Arguments for ``httpx.Client.build_request``; the key is not among them.

        A caller's own httpx client keeps its settings, so ours are applied per request.
        """
        headers = dict(call.headers or {})
        if call.idempotency_key and self.provider.idempotency_header:
            headers[self.provider.idempotency_header] = call.idempotency_key
        args = {
            "method": call.method,
            "url": call.url,
            "params": call.params,
            "json": call.json,
            "content": call.content,
            "headers": headers,
        }
        if not own_client:
            headers.setdefault("user-agent", _USER_AGENT)
            args["timeout"] = self.timeout
        return args

    def build(
        self, http: httpx.Client | httpx.AsyncClient, call: Call, *, own_client: bool
    ) -> httpx.Request:
        """The request for one attempt, or a :class:`ConfigurationError` saying why it cannot
        be built (a body that is not JSON, bad params): raised before any quota is spent."""
        try:
            return http.build_request(**self.build_args(call, own_client=own_client))
        except (TypeError, ValueError) as exc:
            part = "json=" if call.json is not None else "content=, params= or headers="
            raise ConfigurationError(
                _redact.redact(
                    f"{call.describe()}: the request cannot be built from its {part}"
                    f" ({type(exc).__name__}: {exc})"
                )
            ) from None

    def auth(self, secret: Secret) -> ScopedKeyAuth:
        """The auth flow for this key (one per key value, reused across requests)."""
        cached = self._auths.get(secret.fingerprint)
        if cached is not None and cached[0] is secret:
            return cached[1]
        _redact.register(secret)
        auth = ScopedKeyAuth(secret, self.provider.auth, self.origin)
        self._auths[secret.fingerprint] = (secret, auth)
        return auth

    def next_hop(self, response: httpx.Response, hops: int) -> tuple[httpx.Request, bool] | None:
        """The next redirect request and whether it may carry the key, or None to stop here."""
        nxt = response.next_request
        if nxt is None or not self.follow_redirects:
            return None
        if hops >= self.max_redirects:
            raise APIConnectionError(
                f"more than {self.max_redirects} redirects", method=nxt.method, url=_safe(nxt.url)
            )
        same = origin_of(nxt.url) == self.origin
        if not same:
            strip_key(nxt, self.provider.auth)
            log.info("redirect to another origin %s: sending without the key", nxt.url.host)
        return nxt, same

    def from_provider(self, response: httpx.Response) -> bool:
        """True when the response came from the provider's origin (after any redirects)."""
        return origin_of(response.request.url) == self.origin

    # -- outcomes ----------------------------------------------------------------------------

    def translate(self, call: Call, exc: httpx.HTTPError) -> APIConnectionError:
        """The one place where httpx transport errors become coinguard errors.

        The httpx error stays chained as ``__cause__``; the request it holds is the one the auth
        flow put the key on, so the key is taken off it first.
        """
        with contextlib.suppress(RuntimeError):  # an httpx error raised before any request
            strip_key(exc.request, self.provider.auth)
        sent = not isinstance(exc, _NOT_SENT)
        where = f"{call.describe()} to {self.base_url.host}"
        if call.scope is Scope.TRADE and sent:
            return OrderOutcomeUnknownError(
                f"{where}: the connection failed after the order may have reached the server "
                f"({type(exc).__name__}); not re-sent without an idempotency key. Reconcile "
                "before trying again",
                idempotency_key=call.idempotency_key,
                sent_at=call.sent_at,
                method=call.method,
                url=_safe(call.url),
            )
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        return cls(
            _redact.redact(f"{where} failed: {type(exc).__name__}: {exc}"),
            request_sent=sent,
            method=call.method,
            url=_safe(call.url),
        )

    def outcome(self, call: Call, response: httpx.Response, *, now: float) -> Any:
        """Decode a response, or raise the error it stands for."""
        status = response.status_code
        if status >= 400 or 300 <= status < 400:
            raise self._status_error(call, response, now=now)
        if call.method == "HEAD" or status == 204 or not response.content:
            return None
        body = self._decode(call, response)
        if self.provider.envelope and isinstance(body, dict) and body.get("success") is False:
            raise EnvelopeError(
                f"{call.describe()}: the provider reported failure: {_message(body)}",
                status_code=status,
                request_id=self._request_id(response),
                body=_redact.redact_value(body),
                method=call.method,
                url=_safe(call.url),
            )
        return body

    def _decode(self, call: Call, response: httpx.Response) -> Any:
        ctype = response.headers.get("content-type", "")
        try:
            return jsonlib.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise ResponseDecodeError(
                f"{call.describe()}: expected JSON, got {ctype or 'no content type'} "
                f"with status {response.status_code} ({len(response.content)} bytes)",
                status_code=response.status_code,
                content_type=ctype,
                method=call.method,
                url=_safe(call.url),
            ) from None

    def _request_id(self, response: httpx.Response) -> str | None:
        for name in self.provider.request_id_headers:
            if name in response.headers:
                return response.headers[name]
        return None

    def _status_error(self, call: Call, response: httpx.Response, *, now: float) -> APIStatusError:
        status = response.status_code
        try:
            body = (
                _redact.redact_value(jsonlib.loads(response.content)) if response.content else None
            )
        except (ValueError, UnicodeDecodeError):
            body = None
        cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
        text = _message(body) if body is not None else response.reason_phrase
        message = f"{call.describe()}: HTTP {status} {text}".strip()
        common: dict[str, Any] = {
            "status_code": status,
            "request_id": self._request_id(response),
            "body": body,
            "method": call.method,
            "url": _safe(call.url),
        }
        after = retry_after(response.headers, now)  # any status may send it (RFC 9110)
        if after is not None:
            message += f" (retry after {after:.1f}s)"
        return cls(message, retry_after=after, **common)


def _message(body: Any) -> str:
    """The provider's own error text, from the shapes the known providers use."""
    if isinstance(body, dict):
        for key in ("message", "msg", "error_message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _redact.redact(value)[:300]
            if isinstance(value, list) and value:
                return _redact.redact("; ".join(map(str, value)))[:300]
        status = body.get("status")
        if isinstance(status, dict):
            return _message(status)
    return ""


def _safe(url: httpx.URL) -> str:
    """A URL for messages: no query string (it may hold a key)."""
    return str(url.copy_with(query=None))
