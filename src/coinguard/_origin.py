"""Transport guard: a key travels only over HTTPS (or to loopback), only to its origin."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

import httpx

from . import _redact
from ._exceptions import ConfigurationError, InsecureTransportError, ScopeError

__all__ = [
    "Origin",
    "canonical_path",
    "check_base_url",
    "is_loopback",
    "join_url",
    "origin_of",
    "relative_to",
    "route_path",
    "shown",
]

Origin = tuple[str, str, int]


def is_loopback(host: str) -> bool:
    """True for a literal loopback address (127.0.0.0/8, ::1) and for ``localhost`` itself.

    Names under ``.localhost`` are not accepted: they may be resolved through DNS.

    >>> is_loopback("127.0.0.2"), is_loopback("example.com"), is_loopback("api.localhost")
    (True, False, False)
    """
    # "localhost." (with the root dot) is not in the hosts file: it goes to DNS
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: httpx.URL) -> Origin:
    """(scheme, host, port) with the scheme's default port filled in."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host.lower(), port)


def shown(target: str) -> str:
    """A target as error messages may quote it: no query or fragment, keys redacted.

    >>> shown("/price?api_key=abc")
    "'/price?…'"
    """
    head, sep, _ = target.partition("?")
    head, hash_, _ = head.partition("#")
    return repr(_redact.redact(head) + ("?…" if sep else "#…" if hash_ else ""))


def check_base_url(base_url: str, provider: str) -> httpx.URL:
    """Parse and vet a provider base URL: https, or http only to a loopback host."""
    if not isinstance(base_url, str):
        raise ConfigurationError(
            f"provider {provider!r}: base_url must be a string, not {type(base_url).__name__}"
        )
    url = _parse(base_url)
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"provider {provider!r}: base_url must be an absolute http(s) URL, "
            f"got {shown(base_url)}"
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"provider {provider!r}: base_url must not carry a query string")
    if url.scheme == "http" and not is_loopback(url.host):
        raise InsecureTransportError(
            f"provider {provider!r}: refusing plain http to {url.host}; keys are only sent over "
            "https (plain http is allowed to loopback addresses such as the sandbox)"
        )
    return url.copy_with(path=url.path.rstrip("/") or "/")


def _parse(text: str) -> httpx.URL | None:
    try:
        return httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def canonical_path(path: str) -> str:
    """A path as the most permissive mainstream server routes it, for scope decisions.

    Decoded until stable (some servers decode twice), ``;`` path parameters dropped from each
    segment (Tomcat, Spring, Jetty), empty segments and a trailing slash collapsed (nginx,
    Spring, Werkzeug's redirect). Letter case is left to the caller.

    >>> canonical_path("//x/%252e%252e;/Orders/")
    '/x/../Orders'
    """
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    segments = (segment.split(";", 1)[0] for segment in path.split("/"))
    return "/" + "/".join(segment for segment in segments if segment)


def route_path(raw: str, shown_as: str) -> str:
    """The relative path a server routes on (decoded once); refuses dot segments and backslashes.

    A server resolves ``/search/../orders`` to ``/orders`` (and Tomcat ``/x/..;/orders``), so a
    read route could name a trade route: such paths are refused rather than classified.
    """
    decoded = unquote(raw)
    canonical = canonical_path(raw)
    if "\\" in canonical or any(seg in (".", "..") for seg in canonical.split("/")):
        raise ScopeError(
            f"{shown_as}: dot segments and backslashes are refused; name the route directly"
        )
    return decoded


def relative_to(base: httpx.URL, url: httpx.URL) -> str | None:
    """The raw path of ``url`` below ``base`` (``/price``), or None if it is elsewhere."""
    if origin_of(url) != origin_of(base):
        return None
    base_path = base.path.rstrip("/")
    raw = url.raw_path.decode("ascii").split("?", 1)[0]
    if not (raw == base_path or raw.startswith(base_path + "/")):
        return None
    return raw[len(base_path) :] or "/"


def join_url(base: httpx.URL, target: str) -> tuple[httpx.URL, str]:
    """Resolve ``target`` against ``base``; return the full URL and the path relative to ``base``.

    An absolute ``target`` must have the base's origin and live under its path. The relative
    path returned is percent-decoded: it is what the server will route on, so it is what scope
    and cost are decided on. Dot segments are refused (see :func:`route_path`). Error messages
    quote the target without its query string and with any live key redacted.

    >>> base = check_base_url("https://api.example.com/v2", "p")
    >>> join_url(base, "/price")[1]
    '/price'
    """
    if not isinstance(target, str):
        raise ConfigurationError(f"the URL must be a string, not {type(target).__name__}")
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "http://[::1/price": an unclosed IPv6 literal
        parts = None
    if parts is None:
        raise ConfigurationError(f"{shown(target)} is not a valid URL")
    if parts.query or parts.fragment or "?" in target or "#" in target:
        raise ConfigurationError(
            f"{shown(target)}: pass query parameters as params=..., not in the path"
        )
    base_path = base.path.rstrip("/")
    if parts.scheme or parts.netloc:
        url = _parse(target)
        if url is None:
            raise ConfigurationError(f"{shown(target)} is not a valid URL")
        if origin_of(url) != origin_of(base):
            raise InsecureTransportError(
                f"refusing to send the key to {_redact.redact(url.host)}: "
                f"not the provider's origin ({base.scheme}://{base.host})"
            )
        raw = parts.path
        if not (raw == base_path or raw.startswith(base_path + "/")):
            raise InsecureTransportError(f"{shown(raw)} is outside the provider's base path")
        relative = raw[len(base_path) :] or "/"
    else:
        relative = parts.path if parts.path.startswith("/") else "/" + parts.path
    decoded = route_path(relative, shown(target))
    try:
        url = base.copy_with(path=base_path + relative)
    except (httpx.InvalidURL, ValueError):  # ValueError: e.g. a lone surrogate, not encodable
        url = None
    if url is None:
        raise ConfigurationError(f"{shown(target)} is not a valid path")
    return url, decoded
