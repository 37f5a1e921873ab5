"""The sans-I/O core shared by :class:`Client` and :class:`AsyncClient`.

It decides everything that needs no network: the scope of a call, which key slot serves it, the
URL and its origin, the auth flow, where a redirect may go with the key; how a response or an
httpx error becomes a result or a coinguard error is its other half (``_outcome.py``). The
shells only load, sleep, await and send.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from http.cookiejar import CookieJar, DefaultCookiePolicy
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import httpx

from . import _redact
from ._auth import ScopedKeyAuth, SignedKeyAuth, strip_key
from ._call import SAFE_METHODS, Call, with_client_order_id
from ._checks import check_call, check_client_args
from ._exceptions import (
    APIConnectionError,
    CoinguardError,
    ConfigurationError,
    InsecureTransportError,
    MissingKeyError,
    ResponseDecodeError,
    ScopeError,
)
from ._keys import KeyInput, KeySlot, resolve_source
from ._origin import (
    check_base_url,
    is_loopback,
    join_url,
    origin_of,
    relative_to,
    route_path,
    shown,
)
from ._outcome import Outcomes, safe_url
from ._provider import Provider, Scope, SignedKey, get_provider
from ._retry import RetryPolicy
from ._secret import Secret
from ._settings import (
    BaseSettings,
    Settings,
    key_fields,
    load_general_settings,
    load_scope_settings,
    unread_dotenv,
)
from ._verify import KeyReport, report

__all__ = ["Call", "ClientCore"]  # Call is re-exported for the shells

_ORDER_IDS_KEPT = 10_000  # client order ids a client remembers, to refuse a reuse

log = logging.getLogger("coinguard.client")

_URL_CACHE = 4096
_USER_AGENT = f"coinguard/{_version('coinguard')} httpx/{httpx.__version__}"


class ClientCore(Outcomes):
    """Everything :class:`Client` and :class:`AsyncClient` share; does no I/O."""

    def __init__(
        self,
        *,
        provider: Provider | str,
        read_key: KeyInput | None,
        trade_key: KeyInput | None,
        read_secret: KeyInput | None,
        trade_secret: KeyInput | None,
        allow_trading: bool,
        base_url: str | None,
        plan: str | None,
        timeout: float | httpx.Timeout | None,
        settings: Settings | None,
        env_file: str | Path | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
        follow_redirects: bool,
        max_redirects: int,
    ) -> None:
        check_client_args(
            provider=provider,
            trade_key=trade_key,
            allow_trading=allow_trading,
            base_url=base_url,
            timeout=timeout,
            settings=settings,
            env_file=env_file,
            retry=retry,
            max_retries=max_retries,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
        )
        self.closed = False  # set by the shell's close(); every later call is refused
        self._order_ids: OrderedDict[str, None] = OrderedDict()  # the latest, oldest first
        self._order_ids_lock = threading.Lock()
        self.provider = get_provider(provider) if isinstance(provider, str) else provider
        general = settings or load_general_settings(env_file)
        # COINGUARD_PLAN only for a provider that has plans; plan= always (a wrong one is an error)
        chosen = plan if plan is not None else general.plan if self.provider.plans else None
        if chosen is not None:
            self.provider = self.provider.with_plan(chosen)
        self._methods = _route_methods(self.provider)
        self.quota_store = general.quota_store
        self.audit_log = general.audit_log
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
        proven = self.provider.not_executed_statuses - policy.not_executed_statuses
        if proven:
            policy = dataclasses.replace(
                policy, not_executed_statuses=policy.not_executed_statuses | proven
            )
        self.retry = policy
        self.follow_redirects = follow_redirects
        self._urls: dict[str, tuple[httpx.URL, str]] = {}
        self._auths: dict[tuple[str, str], tuple[Secret, ScopedKeyAuth]] = {}
        self.max_redirects = max_redirects
        self.read = self._slot("read", read_key, settings, env_file, self.provider)
        self.trade: KeySlot | None = None
        self.secrets: dict[str, KeySlot] = {}  # a signed provider's signing secret per scope
        signed = isinstance(self.provider.auth, SignedKey)
        if not signed and (read_secret is not None or trade_secret is not None):
            raise ConfigurationError(
                f"provider {self.provider.name!r} does not sign requests, so read_secret= and "
                "trade_secret= have no use; pass them only for a SignedKey provider"
            )
        if trade_secret is not None and not allow_trading:
            raise ConfigurationError(
                "trade_secret was given but allow_trading is False, so it would never be used"
            )
        if signed:
            for name in self.provider.auth.secret_params:  # type: ignore[union-attr]
                _redact.register_param(name)
            self.secrets["read"] = self._slot(
                "read", read_secret, settings, env_file, self.provider, kind="secret"
            )
        if allow_trading:
            self.trade = self._slot("trade", trade_key, settings, env_file, self.provider)
            self.trade.peer, self.read.peer = self.read, self.trade
            if signed:
                trade = self._slot(
                    "trade", trade_secret, settings, env_file, self.provider, kind="secret"
                )
                trade.peer, self.secrets["read"].peer = self.secrets["read"], trade
                self.secrets["trade"] = trade
                self._eager(trade)
            self._eager(self.trade)
        for slot in (self.read, *self.secrets.values()):
            self._eager(slot)
        _redact.install()

    @staticmethod
    def _slot(
        scope: str,
        explicit: KeyInput | None,
        settings: Settings | None,
        env_file: str | Path | None,
        provider: Provider,
        kind: str = "key",
    ) -> KeySlot:
        source_settings: BaseSettings = settings or load_scope_settings(scope, env_file)
        env = getattr(provider, f"{scope}_{kind}_env")
        fields = key_fields(source_settings, scope, kind)
        try:
            source = resolve_source(scope, explicit, fields, env, kind)
        except MissingKeyError as exc:
            note = None if settings else unread_dotenv(env_file, 'pass env_file=".env" to read it')
            if note is None:
                raise
            raise MissingKeyError(f"{exc}; {note}") from None
        return KeySlot(scope, source, min_length=provider.min_key_length, kind=kind)

    @staticmethod
    def _eager(slot: KeySlot) -> None:
        if slot.source.local:
            _redact.register(slot.get())

    # -- building a call ---------------------------------------------------------------------

    def _vet(
        self,
        method: str,
        url: str,
        json: Any,
        content: Any,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> str:
        """Refuse wrong call arguments before anything else (see ``_checks``); the method."""
        method = check_call(
            method,
            url,
            json=json,
            content=content,
            closed=self.closed,
            extra_methods=self._methods,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        if content is not None and isinstance(self.provider.auth, SignedKey):
            # the signature covers the body as text: know now that it can be signed
            text = content if isinstance(content, str) else None
            if isinstance(content, bytes | bytearray):
                try:
                    text = bytes(content).decode("utf-8")
                except UnicodeDecodeError:
                    text = None
            if text is None:
                raise ConfigurationError(
                    f"{method} {url}: content= of a signed request must be str or UTF-8 bytes"
                    f" (got {type(content).__name__} that is not): its signature covers it"
                )
        return method

    def _claim_order_id(self, client_id: str, param: str) -> None:
        """Refuse a client order id this client already used: an order lost later would be
        looked up by it and could be taken for the earlier one (an exchange that lets an id be
        used again once its order is filled answers with that one)."""
        used = self._order_ids
        with self._order_ids_lock:
            if client_id in used:
                raise ConfigurationError(
                    f"{param} {_redact.redact(client_id)!r} was already used by this client: "
                    "each order needs its own, or a lost order could not be told from the "
                    "earlier one (omit it and coinguard makes a fresh one)"
                )
            used[client_id] = None
            if len(used) > _ORDER_IDS_KEPT:
                used.popitem(last=False)

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
        method = self._vet(method, url, json, content, headers, idempotency_key)
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
        if scope is Scope.TRADE and idem_header and method not in SAFE_METHODS:
            idem = idempotency_key or str(uuid.uuid4())
        # Reads, and safe methods whatever their scope, are always safe to re-send (scope says
        # which key, idempotency whether it may go twice). A trade only when the server
        # de-duplicates it: an idempotency key goes with it, or the provider lists the route as
        # idempotent (whatever the HTTP method says: a PUT that places an order is not
        # idempotent in practice).
        idempotent = (
            scope is Scope.READ
            or method in SAFE_METHODS
            or idem is not None
            or self.provider.is_idempotent(method, path)
        )
        client_id = None
        spec = self.provider.client_order_id
        if spec is not None and scope is Scope.TRADE and spec.applies(method, path):
            if spec.where == "params":
                params, client_id = with_client_order_id(params, spec)
            elif content is None:  # a raw body is the caller's to write, id included
                json, client_id = with_client_order_id(json, spec)
            if client_id is not None:
                self._claim_order_id(client_id, spec.param)
        return Call(
            method=method,
            path=path,
            url=full,
            scope=scope,
            params=params,
            client_order_id=client_id,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idem,
            idempotent=idempotent,
            sent_at=datetime.now(timezone.utc),
        )

    def resend_note(self, call: Call) -> str | None:
        """Why re-sending this trade repeats nothing, for the retry log; None for a read."""
        if call.scope is not Scope.TRADE:
            return None
        if call.idempotency_key is not None:
            return (
                f"safe to re-send: the same {self.provider.idempotency_header} goes with it, "
                "so the provider keeps one order"
            )
        if call.idempotent:
            return "safe to re-send: the provider declares this route idempotent"
        # without either, only failures that were not processed are retried (see _retry)
        return "safe to re-send: the provider did not process the failed attempt"

    def key_checks(self) -> list[tuple[Call, KeySlot]]:
        """One key-info call per configured scope, each to be sent with that scope's key."""
        check = self.provider.key_check
        if check is None:
            raise ConfigurationError(
                f"provider {self.provider.name!r} has no key-info check; "
                "set Provider(key_check=...)"
            )
        slots = [self.read] + ([self.trade] if self.trade is not None else [])
        checks = []
        for slot in slots:
            call = self.prepare(
                check.method,
                check.path,
                params=dict(check.params) or None,
                scope=Scope(slot.scope_name),
            )
            # asking about a key changes nothing, whatever its method or the key it goes with
            checks.append((dataclasses.replace(call, probe=True, idempotent=True), slot))
        return checks

    def key_report(self, slot: KeySlot, body: Any, *, max_age: timedelta) -> KeyReport:
        """Judge one key from its key-info answer."""
        secret = slot.loaded
        check = self.provider.key_check
        try:
            permissions = check.parse(body)
        except CoinguardError:
            raise
        except Exception as exc:  # an answer of an unexpected shape: say so, keep no body
            failure = type(exc).__name__
        else:
            return report(
                slot.scope_name,
                secret.fingerprint if secret else "?",
                permissions,
                max_age=max_age,
                now=datetime.now(timezone.utc),
            )
        raise ResponseDecodeError(
            f"{check.method} {check.path}: the key-info answer has an unexpected shape ({failure})",
            status_code=200,
            content_type="application/json",
            method=check.method,
            url=safe_url(self.base_url),
        )

    def slot(self, call: Call) -> KeySlot:
        """The key slot that serves this call; there is no fallback between slots."""
        if call.scope is Scope.READ:
            return self.read
        if self.trade is None:  # prepare() already refused; kept for defence in depth
            raise ScopeError(f"{call.describe()} needs the trade key")
        return self.trade

    def http_defaults(self) -> dict[str, Any]:
        """Settings for an httpx client coinguard creates itself (then not repeated per request).

        No cookie jar (an API client needs none, and one jar would carry a cookie set during a
        read onto a trade). Proxies from the environment only for https, which a proxy can only
        tunnel: a plain-http loopback request sent to a proxy would hand it the key in clear.
        """
        return {
            "headers": {"user-agent": _USER_AGENT},
            "timeout": self.timeout,
            "cookies": CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            "trust_env": self.base_url.scheme == "https",
        }

    def check_http_client(self, http: httpx.Client | httpx.AsyncClient) -> None:
        """Refuse a caller's httpx client that would send plain-http requests through a proxy."""
        if self.base_url.scheme != "http":
            return
        try:
            transport = http._transport_for_url(self.base_url)
            pool = getattr(transport, "_pool", None)
        except Exception:
            return
        if pool is not None and "proxy" in type(pool).__name__.lower():
            raise InsecureTransportError(
                f"the http_client sends {self.base_url.scheme}://{self.base_url.host} through a "
                "proxy; plain-http requests carry the key in clear, so they never go through "
                "one (exempt the host with NO_PROXY or mounts, or use https)"
            )

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

    @staticmethod
    def drop_jar_cookies(request: httpx.Request, call: Call) -> None:
        """A caller's httpx client merges its cookie jar into every request: coinguard sends
        only the cookies the call itself names, so none crosses from one scope to the other."""
        if "cookie" in request.headers and not any(
            name.lower() == "cookie" for name in call.headers or ()
        ):
            del request.headers["cookie"]

    def build(
        self, http: httpx.Client | httpx.AsyncClient, call: Call, *, own_client: bool
    ) -> httpx.Request:
        """The request for one attempt, or a :class:`ConfigurationError` saying why it cannot
        be built (a body that is not JSON, bad params): raised before any quota is spent."""
        try:
            request = http.build_request(**self.build_args(call, own_client=own_client))
        except Exception as exc:  # any argument httpx cannot build a request from
            part = "json=" if call.json is not None else "content=, params= or headers="
            failure = f"{type(exc).__name__}: {exc}"
        else:
            if not own_client:
                self.drop_jar_cookies(request, call)
                if self.base_url.scheme == "http":  # whatever wraps the caller's transport
                    request.extensions["trace"] = self._direct_guard(http)
            return request
        raise ConfigurationError(
            _redact.redact(f"{call.describe()}: the request cannot be built from its {part}")
            + f" ({_redact.redact(failure)[:200]})"
        )

    def _direct_guard(self, http: httpx.Client | httpx.AsyncClient) -> Any:
        """An httpcore ``trace`` hook that refuses a plain-http connection to anything but the
        base URL's port on loopback (a proxy, wherever a caller's transport hid it). It runs
        when the TCP connection is made, before a byte of the request is written."""
        port = self.base_url.port or 80

        def stray(name: str, info: dict[str, Any]) -> Any:
            """The connection's stream if it reached something else, else None."""
            if name != "connection.connect_tcp.complete":
                return None
            stream = info.get("return_value")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if not isinstance(peer, tuple) or len(peer) < 2:
                return None
            return None if peer[1] == port and is_loopback(str(peer[0])) else stream

        def refused() -> InsecureTransportError:
            return InsecureTransportError(
                f"the http_client connected {self.base_url.host}:{port} through a proxy; "
                "plain-http requests carry the key in clear, so they never go through one"
            )

        def check(name: str, info: dict[str, Any]) -> None:
            stream = stray(name, info)
            if stream is not None:
                stream.close()  # httpcore leaves a connection that fails here open
                raise refused()

        async def acheck(name: str, info: dict[str, Any]) -> None:
            stream = stray(name, info)
            if stream is not None:
                await stream.aclose()
                raise refused()

        return acheck if isinstance(http, httpx.AsyncClient) else check

    def auth(
        self,
        secret: Secret,
        signing: Secret | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> ScopedKeyAuth:
        """The auth flow for this key (one per key value, reused across requests); for a
        signed provider, for this key and signing secret, signing with ``now_ms()``."""
        ident = (secret.fingerprint, signing.fingerprint if signing is not None else "")
        cached = self._auths.get(ident)
        if cached is not None and cached[0] is secret:
            return cached[1]
        _redact.register(secret)
        style = self.provider.auth
        auth: ScopedKeyAuth
        if isinstance(style, SignedKey):
            if signing is None or now_ms is None:
                raise ConfigurationError(f"provider {self.provider.name!r} signs: no secret")
            _redact.register(signing)
            base_path = self.base_url.path
            auth = SignedKeyAuth(secret, signing, style, self.origin, base_path, now_ms)
        else:
            auth = ScopedKeyAuth(secret, style, self.origin)
        self._auths[ident] = (secret, auth)
        return auth

    def signs(self, call: Call) -> bool:
        """True when this call goes out signed (a signed provider's signed route)."""
        style = self.provider.auth
        return isinstance(style, SignedKey) and style.signs(call.method, call.path)

    def next_hop(
        self, call: Call, response: httpx.Response, hops: int
    ) -> tuple[httpx.Request, bool] | None:
        """The next redirect request and whether it may carry the key, or None to stop here.

        Every hop is classified again, as the first request was: a read call is never carried
        onto a trade route (``ScopeError``, the hop is not sent), and a trade call is not carried
        onto a read route either (its 3xx answer is returned as the call's outcome). An order's
        redirect is never followed: its answer is its outcome. The key goes only to hops on the
        provider's origin, under its base path, and a hop elsewhere whose URL holds the key is
        refused.
        """
        nxt = response.next_request
        if nxt is None or not self.follow_redirects:
            return None
        if call.is_order:
            # The order was answered: that answer is its outcome. A hop that failed afterwards
            # must not make the call look unsent, nor its retries place the order again.
            log.info(
                "%s answered %d: an order's redirect is not followed",
                call.describe(),
                response.status_code,
            )
            return None
        if hops >= self.max_redirects:
            raise APIConnectionError(
                f"{call.describe()}: more than {self.max_redirects} redirects",
                method=call.method,
                url=safe_url(call.url),
            )
        strip_key(nxt, self.provider.auth)  # the auth flow did already; defence in depth
        raw = relative_to(self.base_url, nxt.url)
        if raw is None:
            if _redact.redact(str(nxt.url)) != str(nxt.url):  # e.g. ?next=/v2/x?api_key=...
                raise InsecureTransportError(
                    f"{call.describe()}: the redirect to {_redact.redact(nxt.url.host)} carries "
                    "the key inside its URL; not followed"
                )
            log.info(
                "redirect to %s, outside the provider's base URL: sending without the key",
                _redact.redact(nxt.url.host),
            )
            return nxt, False
        path = route_path(raw, f"{call.describe()} redirected to {shown(raw)}")
        scope = self.provider.scope_of(nxt.method, path)
        if scope is call.scope:
            return nxt, True
        if call.scope is Scope.READ:
            raise ScopeError(
                f"{call.describe()} was redirected to {nxt.method} {_redact.redact(path)}, a route "
                "that needs the trade key; the redirect was not followed"
            )
        log.info(
            "%s redirected to the read route %s %s: not followed",
            call.describe(),
            nxt.method,
            _redact.redact(path),
        )
        return None

    def from_provider(self, response: httpx.Response) -> bool:
        """True when the response came from the provider's origin (after any redirects)."""
        return origin_of(response.request.url) == self.origin


def _route_methods(provider: Provider) -> frozenset[str]:
    """Methods a provider names in its routes: sent as declared even when not standard."""
    routes = (*provider.read_routes, *provider.trade_routes, *provider.idempotent_routes)
    return frozenset(str(r).strip().partition(" ")[0].upper() for r in routes) - {"*"}
