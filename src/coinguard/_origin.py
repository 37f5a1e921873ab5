"""Transport guard: a key travels only over HTTPS (or to loopback), only to its origin."""

from __future__ import annotations

import ipaddress

import httpx

from ._exceptions import ConfigurationError, InsecureTransportError

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

    An absolute ``target`` must have the base's origin and live under its path.
    """
    base_path = base.path.rstrip("/")
    if "://" in target or target.startswith("//"):
        url = httpx.URL(target)
        if origin_of(url) != origin_of(base):
            raise InsecureTransportError(
                f"refusing to send the key to {url.scheme}://{url.host}: "
                f"not the provider's origin ({base.scheme}://{base.host})"
            )
        if not (url.path == base_path or url.path.startswith(base_path + "/")):
            raise InsecureTransportError(f"{url.path} is outside the provider's base path")
        return url, url.path[len(base_path) :] or "/"
    if not target.startswith("/"):
        target = "/" + target
    return base.copy_with(path=base_path + target), target
