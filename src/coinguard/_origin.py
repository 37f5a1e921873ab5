"""Transport guard: a key travels only over HTTPS (or to loopback), only to its origin."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

import httpx

from ._exceptions import ConfigurationError, InsecureTransportError, ScopeError

__all__ = ["Origin", "is_loopback", "join_url", "origin_of"]

Origin = tuple[str, str, int]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``.

    >>> is_loopback("127.0.0.2"), is_loopback("example.com")
    (True, False)
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: httpx.URL) -> Origin:
    """(scheme, host, port) with the scheme's default port filled in."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host.lower(), port)


def check_base_url(base_url: str, provider: str) -> httpx.URL:
    """Parse and vet a provider base URL: https, or http only to a loopback host."""
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"provider {provider!r}: base_url is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"provider {provider!r}: base_url must be an absolute http(s) URL, got {base_url!r}"
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"provider {provider!r}: base_url must not carry a query string")
    if url.scheme == "http" and not is_loopback(url.host):
        raise InsecureTransportError(
            f"provider {provider!r}: refusing plain http to {url.host}; keys are only sent over "
            "https (plain http is allowed to loopback addresses such as the sandbox)"
        )
    return url.copy_with(path=url.path.rstrip("/") or "/")


def join_url(base: httpx.URL, target: str) -> tuple[httpx.URL, str]:
    """Resolve ``target`` against ``base``; return the full URL and the path relative to ``base``.

    An absolute ``target`` must have the base's origin and live under its path. The relative
    path returned is percent-decoded: it is what the server will route on, so it is what scope
    and cost are decided on. Dot segments are refused, because servers resolve them and a
    read route could then name a trade route (``/search/../orders``).

    >>> base = check_base_url("https://api.example.com/v2", "p")
    >>> join_url(base, "/price")[1]
    '/price'
    """
    parts = urlsplit(target)
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{target!r}: pass query parameters as params=..., not in the path"
        )
    base_path = base.path.rstrip("/")
    if parts.scheme or parts.netloc:
        try:
            url = httpx.URL(target)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"{target!r} is not a valid URL") from exc
        if origin_of(url) != origin_of(base):
            raise InsecureTransportError(
                f"refusing to send the key to {url.host}: "
                f"not the provider's origin ({base.scheme}://{base.host})"
            )
        raw = parts.path
        if not (raw == base_path or raw.startswith(base_path + "/")):
            raise InsecureTransportError(f"{raw} is outside the provider's base path")
        relative = raw[len(base_path) :] or "/"
    else:
        relative = parts.path if parts.path.startswith("/") else "/" + parts.path
    decoded = unquote(relative)
    if "\\" in decoded or any(seg in (".", "..") for seg in decoded.split("/")):
        raise ScopeError(
            f"{target!r}: dot segments and backslashes are refused; name the route directly"
        )
    try:
        url = base.copy_with(path=base_path + relative)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{target!r} is not a valid path") from exc
    return url, decoded
