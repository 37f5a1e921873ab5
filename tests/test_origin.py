"""Transport guard: https only (plain http to loopback), and only the provider's origin."""

from __future__ import annotations

import httpx
import pytest

from coinguard import ConfigurationError, InsecureTransportError
from coinguard._origin import check_base_url, is_loopback, join_url


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("api.localhost", False),  # may resolve through DNS
        ("127.evil.example", False),
        ("10.0.0.1", False),
        ("localhost.evil.com", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    """Only 127/8, ::1 and localhost count as loopback."""
    assert is_loopback(host) is expected


def test_plain_http_refused_for_remote_hosts() -> None:
    """http:// to a non-loopback host is refused at construction."""
    with pytest.raises(InsecureTransportError, match="plain http"):
        check_base_url("http://api.example.com/v2", "p")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/v2", "http://localhost/v2", "http://[::1]:80/"]
)
def test_plain_http_allowed_to_loopback(url: str) -> None:
    """The sandbox on loopback works over plain http."""
    assert check_base_url(url, "p").scheme == "http"


@pytest.mark.parametrize("url", ["ftp://x/", "api.example.com", "https://x/v2?api_key=1", ""])
def test_bad_base_urls(url: str) -> None:
    """Relative, non-http, or key-in-query base URLs are configuration errors."""
    with pytest.raises(ConfigurationError):
        check_base_url(url, "p")


def test_join_relative_and_absolute_same_origin() -> None:
    """Relative paths join under the base path; same-origin absolute URLs are accepted."""
    base = check_base_url("https://api.example.com/v2/", "p")
    url, path = join_url(base, "/price")
    assert str(url) == "https://api.example.com/v2/price"
    assert path == "/price"
    url, path = join_url(base, "price")
    assert path == "/price"
    url, path = join_url(base, "https://api.example.com:443/v2/tokens")
    assert path == "/tokens"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/v2/price",
        "http://api.example.com/v2/price",
        "https://api.example.com:8443/v2/price",
        "//evil.example.com/v2/price",
        "https://api.example.com/other/price",
    ],
)
def test_join_refuses_foreign_origin_or_path(target: str) -> None:
    """Another scheme, host, port or base path is refused before anything is sent."""
    base = check_base_url("https://api.example.com/v2", "p")
    with pytest.raises(InsecureTransportError):
        join_url(base, target)


def test_origin_default_ports() -> None:
    """Explicit default ports compare equal to implicit ones."""
    from coinguard._origin import origin_of

    assert origin_of(httpx.URL("https://a.b:443/x")) == origin_of(httpx.URL("https://a.b/y"))
