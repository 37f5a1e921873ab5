"""The httpx auth flow that puts a key on the wire, and only on the pinned origin."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from urllib.parse import unquote

import httpx

from . import _redact
from ._exceptions import CoinguardError, ConfigurationError, InsecureTransportError
from ._origin import Origin, origin_of
from ._provider import AuthStyle, BearerKey, HeaderKey, QueryKey, SignedKey
from ._secret import Secret
from ._signing import SigningInput

__all__ = ["NONCE_EXTENSION", "ScopedKeyAuth", "SignedKeyAuth", "strip_key"]

#: Where the flow puts the nonce it drew for one attempt (``request.extensions``): the auth is
#: shared by concurrent calls, the request is not.
NONCE_EXTENSION = "coinguard.nonce"


class ScopedKeyAuth(httpx.Auth):
    """Attach ``secret`` to a request for ``origin``; refuse any other origin.

    The key becomes bytes here and nowhere else, on a copy of the request that exists only to
    be sent: the request coinguard built, ``response.request`` and every request coinguard
    keeps between steps carry no key, so a traceback's local variables cannot show one. If the
    send fails (a transport error, a timeout, a cancellation) the copy is stripped too, since
    the frames of that failure still point at it.

    >>> auth = ScopedKeyAuth(Secret("k3y-demo"), HeaderKey("x-api-key"),
    ...                      ("https", "api.example.com", 443))
    >>> req = httpx.Request("GET", "https://api.example.com/v2/price")
    >>> flow = auth.sync_auth_flow(req)
    >>> next(flow).headers["x-api-key"]
    'k3y-demo'
    >>> "x-api-key" in req.headers
    False
    """

    def __init__(self, secret: Secret, style: AuthStyle, origin: Origin) -> None:
        self._secret = secret
        self._style = style
        self._origin = origin

    def _keyed(self, request: httpx.Request) -> httpx.Request:
        if origin_of(request.url) != self._origin:
            raise InsecureTransportError(
                f"refusing to attach the key to {request.url.scheme}://{request.url.host}: "
                "not the provider's origin"
            )
        # A shallow copy that shares the body stream; building a new Request would re-encode it.
        keyed: httpx.Request = object.__new__(httpx.Request)
        keyed.__dict__.update(request.__dict__)
        style = self._style
        if isinstance(style, QueryKey):
            keyed.url = request.url.copy_set_param(style.name, self._secret.reveal())
            return keyed
        keyed.headers = request.headers.copy()
        if isinstance(style, HeaderKey):
            keyed.headers[style.name] = self._secret.reveal()
        elif isinstance(style, SignedKey):
            keyed.headers[style.header] = self._secret.reveal()
            self._sign(keyed)
        else:
            keyed.headers[style.header] = f"{style.prefix} {self._secret.reveal()}".strip()
        return keyed

    def _sign(self, keyed: httpx.Request) -> None:
        """Overridden by :class:`SignedKeyAuth`; an unsigned flow has nothing to add."""

    def _done(
        self, request: httpx.Request, keyed: httpx.Request, response: httpx.Response | None
    ) -> None:
        if response is None:  # the send failed: its frames still point at the keyed copy
            strip_key(keyed, self._style)
            return
        response.request = request
        # httpx builds the redirect request from the keyed one, headers included
        if response.next_request is not None:
            strip_key(response.next_request, self._style)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        keyed = self._keyed(request)
        response = None
        try:
            response = yield keyed
        finally:
            self._done(request, keyed, response)

    # Overridden so that closing the flow (httpx does, on every exit) runs the cleanup at once,
    # not when a wrapping generator happens to be collected.
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self.requires_request_body:
            request.read()
        return self.auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.requires_request_body:
            await request.aread()
        keyed = self._keyed(request)
        response = None
        try:
            response = yield keyed
        finally:
            self._done(request, keyed, response)

    def __repr__(self) -> str:
        return f"ScopedKeyAuth({self._secret.fingerprint})"


class SignedKeyAuth(ScopedKeyAuth):
    """:class:`ScopedKeyAuth` for a :class:`SignedKey` style: the key in its header and, on a
    signed route, the signature the style's signer computes from the request, the signing
    secret and ``now_ms()`` (the provider's clock). It runs on every attempt, so each one is
    signed with a fresh timestamp; the signature, like the key, lives only on the copy sent.

    >>> from coinguard import BinanceSigner
    >>> style = SignedKey("X-MBX-APIKEY", BinanceSigner())
    >>> auth = SignedKeyAuth(Secret("k3y-demo"), Secret("s" * 64), style,
    ...                      ("https", "api.binance.com", 443), "", lambda: 1499827319559)
    >>> flow = auth.sync_auth_flow(httpx.Request("GET", "https://api.binance.com/x"))
    >>> sent = next(flow)
    >>> sent.url.params["timestamp"], sent.headers["X-MBX-APIKEY"]
    ('1499827319559', 'k3y-demo')
    """

    # httpx reads the body before the flow (a redirect hop's is a stream): the signature needs it
    requires_request_body = True

    def __init__(
        self,
        secret: Secret,
        signing: Secret,
        style: SignedKey,
        origin: Origin,
        base_path: str,
        now_ms: Callable[[], int],
    ) -> None:
        super().__init__(secret, style, origin)
        self._signing = signing
        self._signed = style
        self._base_path = base_path.rstrip("/")
        self._now_ms = now_ms

    def _sign(self, keyed: httpx.Request) -> None:
        style = self._signed
        path = keyed.url.path
        relative = path[len(self._base_path) :] if path.startswith(self._base_path) else path
        if not style.signs(keyed.method, relative or "/"):
            return
        query = keyed.url.query.decode("ascii")
        nonce = keyed.extensions.get(NONCE_EXTENSION)
        try:
            attempt = SigningInput(
                keyed.method,
                path,
                query,
                keyed.content,
                self._now_ms(),
                nonce,
                keyed.url.host,
                self._secret.reveal(),
            )
            signature = style.sign(attempt, self._signing.reveal())
        except CoinguardError:  # a signer's own refusal says what to do
            raise
        except Exception as exc:  # nothing was sent: never an "outcome unknown"
            raise ConfigurationError(
                f"{keyed.method} {_redact.redact(path)}: the request cannot be signed"
                f" ({type(exc).__name__}); nothing was sent"
            ) from None
        if signature.query is not None:
            keyed.url = keyed.url.copy_with(query=signature.query.encode("ascii") or None)
        if signature.body is not None:  # only the copy sent carries the signed body
            keyed.stream = httpx.ByteStream(signature.body)
            keyed._content = signature.body
            keyed.headers.pop("Transfer-Encoding", None)
            keyed.headers["Content-Length"] = str(len(signature.body))
        for name, value in signature.headers.items():
            keyed.headers[name] = value
        shown = [keyed.headers[h] for h in style.secret_headers if h in keyed.headers]
        for part in (signature.query or "").split("&"):
            name, _, value = part.partition("=")
            if name in style.secret_params and value:
                shown.append(unquote(value))  # indexed raw and URL-encoded
        for value in shown:  # a server may echo one in an answer logged or raised later
            _redact.register_transient(value)

    def __repr__(self) -> str:
        return f"SignedKeyAuth({self._secret.fingerprint}, {self._signing.fingerprint})"


def strip_key(request: httpx.Request, style: AuthStyle) -> None:
    """Remove the key (header or query parameter), and any signature, from a request."""
    if isinstance(style, SignedKey):
        request.headers.pop(style.header, None)
        for name in style.secret_headers:
            request.headers.pop(name, None)
        for name in style.secret_params:
            if name in request.url.params:
                request.url = request.url.copy_remove_param(name)
    elif isinstance(style, HeaderKey):
        request.headers.pop(style.name, None)
    elif isinstance(style, BearerKey):
        request.headers.pop(style.header, None)
    elif isinstance(style, QueryKey) and style.name in request.url.params:
        request.url = request.url.copy_remove_param(style.name)
