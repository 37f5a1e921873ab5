"""The httpx auth flow that puts a key on the wire, and only on the pinned origin."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ._exceptions import InsecureTransportError
from ._origin import Origin, origin_of
from ._provider import AuthStyle, BearerKey, HeaderKey, QueryKey
from ._secret import Secret

__all__ = ["ScopedKeyAuth", "strip_key"]


class ScopedKeyAuth(httpx.Auth):
    """Attach ``secret`` to a request for ``origin``; refuse any other origin.

    The key becomes bytes here and nowhere else: the request built by coinguard carries no key.

    >>> auth = ScopedKeyAuth(Secret("k3y-demo"), HeaderKey("x-api-key"),
    ...                      ("https", "api.example.com", 443))
    >>> req = next(auth.auth_flow(httpx.Request("GET", "https://api.example.com/v2/price")))
    >>> req.headers["x-api-key"]
    'k3y-demo'
    """

    def __init__(self, secret: Secret, style: AuthStyle, origin: Origin) -> None:
        self._secret = secret
        self._style = style
        self._origin = origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin_of(request.url) != self._origin:
            raise InsecureTransportError(
                f"refusing to attach the key to {request.url.scheme}://{request.url.host}: "
                "not the provider's origin"
            )
        value = self._secret.reveal()
        style = self._style
        if isinstance(style, HeaderKey):
            request.headers[style.name] = value
        elif isinstance(style, BearerKey):
            request.headers[style.header] = f"{style.prefix} {value}".strip()
        else:
            request.url = request.url.copy_set_param(style.name, value)
        yield request

    def __repr__(self) -> str:
        return f"ScopedKeyAuth({self._secret.fingerprint})"


def strip_key(request: httpx.Request, style: AuthStyle) -> None:
    """Remove the key (header or query parameter) from a request about to leave the origin."""
    if isinstance(style, HeaderKey):
        request.headers.pop(style.name, None)
    elif isinstance(style, BearerKey):
        request.headers.pop(style.header, None)
    elif isinstance(style, QueryKey):
        request.url = request.url.copy_remove_param(style.name)
