"""Provider profiles: route scopes, auth styles, built-ins."""

from __future__ import annotations

import pytest

import coinguard
from coinguard import BearerKey, ConfigurationError, HeaderKey, Provider, QueryKey, Scope


def _p(**kw: object) -> Provider:
    return Provider(name="t", base_url="https://api.example.com/v2", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/price", Scope.READ),
        ("head", "/price", Scope.READ),
        ("OPTIONS", "/x", Scope.READ),
        ("POST", "/orders", Scope.TRADE),
        ("PUT", "/orders/1", Scope.TRADE),
        ("PATCH", "/anything", Scope.TRADE),
        ("DELETE", "/orders/1", Scope.TRADE),
        ("BREW", "/coffee", Scope.TRADE),
    ],
)
def test_default_scope_rule(method: str, path: str, scope: Scope) -> None:
    """Safe methods are reads; every other method, known or not, is a trade."""
    assert _p().scope_of(method, path) is scope


def test_read_routes_make_unsafe_methods_reads() -> None:
    """A POST listed in read_routes is a read; a neighbouring POST stays a trade."""
    p = _p(read_routes=["POST /search"])
    assert p.scope_of("POST", "/search") is Scope.READ
    assert p.scope_of("POST", "/search/more") is Scope.TRADE


def test_trade_routes_with_wildcard() -> None:
    """trade_routes mark private safe-method routes as trades, with * wildcards."""
    p = _p(trade_routes=["GET /orders*", "GET /account/*/balances"])
    assert p.scope_of("GET", "/orders") is Scope.TRADE
    assert p.scope_of("GET", "/orders/42") is Scope.TRADE
    assert p.scope_of("GET", "/account/7/balances") is Scope.TRADE
    assert p.scope_of("GET", "/price") is Scope.READ


@pytest.mark.parametrize("bad", ["/orders", "GET orders", "", "GET"])
def test_bad_route_pattern_names_the_field(bad: str) -> None:
    """A malformed pattern is a ConfigurationError that says which list and pattern."""
    with pytest.raises(ConfigurationError, match="trade_routes"):
        _p(trade_routes=[bad])


def test_routes_as_a_single_string_is_refused() -> None:
    """A bare string (a common slip) is not iterated character by character."""
    with pytest.raises(ConfigurationError, match="list"):
        _p(read_routes="POST /search")


def test_auth_styles_validate_names() -> None:
    """Header and query names must be HTTP tokens."""
    assert HeaderKey("x-api-key").name == "x-api-key"
    assert QueryKey("api_key").name == "api_key"
    assert BearerKey().prefix == "Bearer"
    with pytest.raises(ConfigurationError):
        HeaderKey("bad header")


def test_provider_is_frozen_and_printable() -> None:
    """Policies are values: immutable and readable."""
    p = _p()
    with pytest.raises(AttributeError):
        p.name = "x"  # type: ignore[misc]
    assert "api.example.com" in repr(p)


def test_builtin_providers() -> None:
    """Token Metrics and the sandbox are built in; unknown names list the known ones."""
    tm = coinguard.get_provider("tokenmetrics")
    assert tm.base_url == "https://api.tokenmetrics.com/v2"
    assert tm.auth == HeaderKey("x-api-key")
    assert tm.read_key_env == "TOKENMETRICS_API_KEY"
    assert tm.envelope
    assert coinguard.get_provider("sandbox").scope_of("GET", "/orders/1") is Scope.TRADE
    with pytest.raises(ConfigurationError, match="tokenmetrics"):
        coinguard.get_provider("nope")


def test_idempotent_routes_are_declared_not_guessed() -> None:
    """Only routes the provider lists are idempotent trades; PUT is not assumed to be."""
    p = _p(idempotent_routes=["POST /quotes"])
    assert not p.is_idempotent("PUT", "/orders/1")
    assert not p.is_idempotent("POST", "/orders")
    assert p.is_idempotent("POST", "/quotes")
