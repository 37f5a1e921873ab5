"""The adversarial review, replayed: each attack that broke a promise, now refused or redacted.

Servers are real sockets on 127.0.0.1: the loopback servers of conftest, and a Werkzeug app for
the routing attacks, because a real framework's router is what decides which handler a
spelling reaches.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import coinguard
from coinguard import HeaderKey, QueryKey

if TYPE_CHECKING:
    from conftest import Canary, LoopbackServer, Route, Seen

SRC = Path(coinguard.__file__).parent


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for scope in ("READ", "TRADE"):
        for suffix in ("", "_FILE", "_REF"):
            monkeypatch.delenv(f"COINGUARD_{scope}_KEY{suffix}", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for name in (var, var.lower()):
            monkeypatch.delenv(name, raising=False)


def _leaks(canary: Canary, *texts: str) -> list[str]:
    return [needle for text in texts for needle in canary.found_in(text)]


def _chain(exc: BaseException) -> list[BaseException]:
    found, todo = [], [exc]
    while todo:
        err = todo.pop()
        if any(err is seen for seen in found):
            continue
        found.append(err)
        todo += [e for e in (err.__cause__, err.__context__) if e is not None]
    return found


def _texts(exc: BaseException) -> str:
    import traceback

    return "\n".join(
        f"{err!s} {err!r} {err.args!r} {''.join(traceback.format_exception(err))}"
        for err in _chain(exc)
    )


def _call(mode: str, kwargs: dict[str, Any], method: str, path: str, **request: Any) -> Any:
    """One request through Client or AsyncClient (the same spec holds for both)."""
    if mode == "sync":
        with coinguard.Client(**kwargs) as client:
            return client.request(method, path, **request)

    async def main() -> Any:
        async with coinguard.AsyncClient(**kwargs) as client:
            return await client.request(method, path, **request)

    return anyio.run(main)


# -- a real framework's router ---------------------------------------------------------------


class Exchange:
    """A Werkzeug app: orders behind ``/v2/orders``, a read-only ``POST /v2/search``."""

    def __init__(self) -> None:
        self.placed: list[str] = []  # one entry per time the order handler ran
        self.lock = threading.Lock()
        self.routes = Map(
            [
                Rule("/v2/price", endpoint="price", methods=["GET"]),
                Rule("/v2/search", endpoint="search", methods=["POST"]),
                Rule("/v2/orders", endpoint="orders", methods=["GET", "POST"]),
                Rule("/v2/receipt", endpoint="receipt", methods=["GET"]),
                Rule("/v2/orders/<oid>/fills", endpoint="fills", methods=["GET"]),
            ],
            merge_slashes=True,
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = self.routes.bind_to_environ(environ)
        try:
            endpoint, _args = adapter.match()
        except Exception as exc:  # werkzeug's HTTPException (404, 405, the 308 slash merge)
            return exc(environ, start_response)  # type: ignore[operator]
        response = getattr(self, endpoint)(request)
        return response(environ, start_response)

    def price(self, request: Request) -> Response:
        return Response(json.dumps({"price": 1}), content_type="application/json")

    def search(self, request: Request) -> Response:
        target = request.args.get("to", "/v2/price")
        return Response(status=307, headers={"Location": target})

    def orders(self, request: Request) -> Response:
        with self.lock:
            self.placed.append(request.method)
        if request.args.get("then") == "receipt":
            return Response(status=303, headers={"Location": "/v2/receipt"})
        return Response(json.dumps({"id": len(self.placed)}), content_type="application/json")

    def fills(self, request: Request) -> Response:
        with self.lock:
            self.placed.append(request.method)
        return Response(json.dumps({"fills": []}), content_type="application/json")

    def receipt(self, request: Request) -> Response:
        return Response(json.dumps({"receipt": True}), content_type="application/json")


@pytest.fixture
def exchange() -> Iterator[tuple[Exchange, str]]:
    """The Werkzeug exchange on a loopback port, and its base URL."""
    app = Exchange()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}/v2"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _exchange_provider(base: str) -> coinguard.Provider:
    return coinguard.Provider(
        name="werkzeug",
        base_url=base,
        auth=HeaderKey("x-api-key"),
        read_routes=["POST /search"],
        trade_routes=["GET /orders*"],
    )


READ_KEY = "read-key-for-the-exchange-0001"
TRADE_KEY = "trade-key-for-the-exchange-001"

# -- 8: reads that trade through a redirect ----------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("trading", [False, True], ids=["read-only", "trading"])
def test_a_read_redirected_onto_a_trade_route_is_refused(
    exchange: tuple[Exchange, str], mode: str, trading: bool
) -> None:
    """A read POST answered 307 to the order route: ScopeError, the order handler never runs."""
    app, base = exchange
    kwargs: dict[str, Any] = {
        "provider": _exchange_provider(base),
        "read_key": READ_KEY,
        "follow_redirects": True,
        "max_retries": 3,
    }
    if trading:
        kwargs.update(trade_key=TRADE_KEY, allow_trading=True)
    params = {"to": "/v2/orders"}
    with pytest.raises(coinguard.ScopeError, match="redirected to POST /orders"):
        _call(mode, kwargs, "POST", "/search", json={"q": "BTC"}, params=params)
    assert app.placed == []


def test_plain_httpx_does_follow_the_read_onto_the_order_route(
    exchange: tuple[Exchange, str],
) -> None:
    """The positive control: without coinguard the same 307 re-posts to the order handler."""
    app, base = exchange
    httpx.post(f"{base}/search?to=/v2/orders", json={"q": "BTC"}, follow_redirects=True)
    assert app.placed == ["POST"]


def test_a_trade_redirected_onto_a_read_route_is_not_followed(
    exchange: tuple[Exchange, str],
) -> None:
    """An order answered 303 to a read route: placed once, the 3xx returned, no key swap."""
    app, base = exchange
    with (
        coinguard.Client(
            provider=_exchange_provider(base),
            read_key=READ_KEY,
            trade_key=TRADE_KEY,
            allow_trading=True,
            follow_redirects=True,
        ) as client,
        pytest.raises(coinguard.APIStatusError) as info,
    ):
        client.post("/orders", json={"symbol": "BTC"}, params={"then": "receipt"})
    assert info.value.status_code == 303
    assert app.placed == ["POST"]


# -- 9: route spellings a server treats as the order route -------------------------------------

SPELLINGS = [("HEAD", "/orders"), ("GET", "//orders")]


@pytest.mark.parametrize(("method", "path"), SPELLINGS, ids=[f"{m} {p}" for m, p in SPELLINGS])
def test_werkzeug_routes_each_spelling_to_the_order_route(
    exchange: tuple[Exchange, str], method: str, path: str
) -> None:
    """The positive control: Werkzeug runs the order handler for each spelling (HEAD through
    the GET route, ``//orders`` redirected onto it)."""
    app, base = exchange
    response = httpx.request(method, base + path, follow_redirects=True)
    assert response.status_code == 200
    assert app.placed == [method]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *SPELLINGS,
        ("OPTIONS", "/orders"),
        ("GET", "/Orders"),
        ("GET", "/ORDERS/7"),
        ("GET", "/orders;jsessionid=1"),
        ("GET", "/orders/"),
    ],
)
def test_every_spelling_of_a_trade_route_needs_the_trade_key(
    exchange: tuple[Exchange, str], method: str, path: str
) -> None:
    """A read-only client refuses each spelling before any byte is sent (also via base + path)."""
    app, base = exchange
    with coinguard.Client(provider=_exchange_provider(base), read_key=READ_KEY) as client:
        with pytest.raises(coinguard.ScopeError, match="needs the trade key"):
            client.request(method, base + path)
        # "//orders" alone is a scheme-relative URL naming the host "orders": refused too
        refused = (
            coinguard.InsecureTransportError if path.startswith("//") else coinguard.ScopeError
        )
        with pytest.raises(refused):
            client.request(method, path)
    assert app.placed == []


@pytest.mark.parametrize("path", ["/x/..;/orders", "/x/%2e%2e;jsessionid=1/orders", "/%252e%252e"])
def test_semicolon_and_double_encoded_dot_segments_are_refused(
    exchange: tuple[Exchange, str], path: str
) -> None:
    """Tomcat resolves ``..;`` like ``..``; servers that decode twice see ``%252e`` as a dot."""
    _, base = exchange
    with (
        coinguard.Client(provider=_exchange_provider(base), read_key=READ_KEY) as client,
        pytest.raises(coinguard.ScopeError, match="dot segments"),
    ):
        client.get(path)


def test_read_exemptions_match_only_their_exact_spelling() -> None:
    """An unsafe method is a read only on the route exactly as listed: other spellings trade."""
    provider = coinguard.Provider(name="p", base_url=None, read_routes=["POST /search"])
    assert provider.scope_of("POST", "/search") is coinguard.Scope.READ
    for path in ("/SEARCH", "//search", "/search;x", "/search/"):
        assert provider.scope_of("POST", path) is coinguard.Scope.TRADE


# -- 10: 408 is not "not executed" -------------------------------------------------------------


def _executing(status: int, orders: list[str]) -> Route:
    """An exchange that places the order, then answers ``status``."""

    def route(seen: Seen) -> dict[str, Any]:
        orders.append(seen.method)
        return {"status": status, "body": {"code": -1007, "msg": "Timeout waiting for backend"}}

    return route


@pytest.mark.parametrize("status", [408, 500, 503, 504])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_order_answered_outcome_unknown_is_sent_once(
    http_server: Callable[[Route], LoopbackServer], status: int, mode: str
) -> None:
    """Executed, then 408/5xx: the order exists once, and the caller is told the outcome is
    unknown (with the answer), not that it failed."""
    orders: list[str] = []
    server = http_server(_executing(status, orders))
    kwargs: dict[str, Any] = {
        "provider": coinguard.Provider(name="ex", base_url=server.url("/v2")),
        "read_key": READ_KEY,
        "trade_key": TRADE_KEY,
        "allow_trading": True,
        "max_retries": 4,
        "sleep": (lambda s: None) if mode == "sync" else _no_sleep,
    }
    with pytest.raises(coinguard.OrderOutcomeUnknownError) as info:
        _call(mode, kwargs, "POST", "/orders", json={"symbol": "BTC"})
    assert orders == ["POST"]
    assert info.value.status_code == status
    assert info.value.body == {"code": -1007, "msg": "Timeout waiting for backend"}


async def _no_sleep(seconds: float) -> None:
    return None


# -- 2: exceptions that reach the user chain nothing that holds a key --------------------------


def test_a_response_hook_raise_for_status_leaks_nothing(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """httpx's documented ``raise_for_status`` hook: an AuthenticationError, no httpx chain."""
    canary = make_canary("READ")
    server = http_server(lambda seen: {"status": 401, "body": {"message": "no"}})
    hooks = {"response": [lambda r: r.raise_for_status()]}
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"), auth=QueryKey("api_key"))
    with (
        coinguard.Client(
            provider=provider, read_key=canary.value, http_client=httpx.Client(event_hooks=hooks)
        ) as client,
        pytest.raises(coinguard.AuthenticationError) as info,
    ):
        client.get("/price")
    assert _chain(info.value) == [info.value]
    assert _leaks(canary, _texts(info.value)) == []


class _Source:
    """A caller's own key source, returning whatever it was given."""

    reloadable = False
    local = False

    def __init__(self, value: str) -> None:
        self.value = value
        self.description = "a vault of the caller's"

    def load(self) -> coinguard.Secret:
        return coinguard.Secret(self.value, source=self.description)

    refresh = load


def test_a_custom_source_key_with_a_trailing_newline_is_stripped(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """A key with a trailing newline from a custom source is stripped, as every source's is."""
    canary = make_canary("READ")
    server = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    with coinguard.Client(provider=provider, read_key=_Source(canary.value + "\n")) as client:
        assert client.get("/price") == {"ok": True}
    assert server.seen[0].header("x-api-key") == canary.value


@pytest.mark.parametrize("bad", ["\n-inner", "\u00e9", "\x00"], ids=["newline", "e-acute", "nul"])
def test_a_malformed_custom_source_key_is_refused_before_any_byte(
    http_server: Callable[[Route], LoopbackServer],
    make_canary: Callable[[str], Canary],
    bad: str,
) -> None:
    """A key h11 or httpx would choke on (with the key in their error) never reaches them:
    a ConfigurationError naming the source, and a trade is not reported as 'outcome unknown'."""
    canary = make_canary("TRADE")
    server = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    value = canary.value[:10] + bad + canary.value[10:]
    with (
        coinguard.Client(
            provider=provider, read_key=READ_KEY, trade_key=_Source(value), allow_trading=True
        ) as client,
        pytest.raises(coinguard.ConfigurationError, match="a vault of the caller's") as info,
    ):
        client.post("/orders", json={})
    assert not isinstance(info.value, coinguard.OrderOutcomeUnknownError)
    assert server.seen == []
    assert _leaks(canary, _texts(info.value)) == []


def test_no_source_file_chains_a_foreign_exception() -> None:
    """The class fix, kept: no ``raise ... from <exception>`` in coinguard's own code (the
    sandbox server excepted), so no library error carrying a request, a body or a secret is
    chained to a coinguard error."""
    found = []
    for path in SRC.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            cause = node.cause if isinstance(node, ast.Raise) else None
            if cause is not None and not (isinstance(cause, ast.Constant) and cause.value is None):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


# -- 4: keys the caller misplaces ---------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/price?api_key={key}",
        "/price#{key}",
        "https://evil.example/{key}/price",
        "http://127.0.0.1:9/other/{key}?x=1",
        "/x/{key}/../orders",
    ],
    ids=["query", "fragment", "foreign-origin", "outside-base", "dot-segment"],
)
def test_a_misplaced_key_is_not_quoted_back(
    make_canary: Callable[[str], Canary], target: str
) -> None:
    """Error texts quote a target without its query string and with the key redacted."""
    canary = make_canary("READ")
    provider = coinguard.Provider(name="p", base_url="http://127.0.0.1:9/v2")
    with (
        coinguard.Client(provider=provider, read_key=canary.value) as client,
        pytest.raises(coinguard.CoinguardError) as info,
    ):
        client.get(target.format(key=canary.value))
    assert _leaks(canary, _texts(info.value)) == []


# -- 5: short and common-word keys --------------------------------------------------------------


@pytest.mark.parametrize("key", ["k9Z", "price", "abcdefghijklmno"])
def test_short_keys_are_refused_naming_the_source(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys under 16 characters cannot be told apart from text: refused, source named."""
    monkeypatch.setenv("COINGUARD_READ_KEY", key)
    with pytest.raises(coinguard.ConfigurationError, match="COINGUARD_READ_KEY") as info:
        coinguard.Client(provider="generic", base_url="https://api.example.com")
    assert key not in str(info.value)
    assert "16" in str(info.value)


def test_a_provider_that_issues_short_keys_says_so(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """``Provider(min_key_length=...)`` admits a provider's shorter keys, and still redacts."""
    server = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(
        name="short", base_url=server.url("/v2"), auth=QueryKey("k"), min_key_length=12
    )
    with coinguard.Client(provider=provider, read_key="abc123XYZ789") as client:
        assert client.get("/price") == {"ok": True}
    assert server.seen[0].query == [("k", "abc123XYZ789")]


# -- 6: proxies from the environment ------------------------------------------------------------


def test_a_plain_http_loopback_request_never_goes_to_an_environment_proxy(
    http_server: Callable[[Route], LoopbackServer],
    make_canary: Callable[[str], Canary],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY/ALL_PROXY set: the sandbox-style plain-http request goes direct; the proxy
    (a recording loopback server) sees nothing."""
    canary = make_canary("READ")
    proxy = http_server(lambda seen: {"body": {"proxied": True}})
    api = http_server(lambda seen: {"body": {"direct": True}})
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, proxy.origin)
    assert httpx.get(api.url("/v2/price")).json() == {"proxied": True}  # plain httpx: proxied
    provider = coinguard.Provider(name="p", base_url=api.url("/v2"), auth=QueryKey("api_key"))
    with coinguard.Client(provider=provider, read_key=canary.value) as client:
        assert client.get("/price") == {"direct": True}
    assert all(_leaks(canary, seen.raw) == [] for seen in proxy.seen)
    assert len(proxy.seen) == 1  # only plain httpx's request


def test_an_https_base_url_still_honours_environment_proxies() -> None:
    """HTTPS through a proxy is tunnelled, so coinguard's own client trusts the environment."""
    core = coinguard.Client(
        provider="generic", base_url="https://api.example.com", read_key=READ_KEY
    )
    with core:
        assert core._core.http_defaults()["trust_env"] is True


def test_a_callers_client_that_proxies_plain_http_is_refused(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """An http_client with a proxy for a plain-http base URL: refused at construction."""
    proxy = http_server(lambda seen: {"body": {}})
    provider = coinguard.Provider(name="p", base_url="http://127.0.0.1:9/v2")
    with pytest.raises(coinguard.InsecureTransportError, match="proxy"):
        coinguard.Client(
            provider=provider, read_key=READ_KEY, http_client=httpx.Client(proxy=proxy.origin)
        )


# -- 7: cookies do not cross scopes -------------------------------------------------------------


@pytest.mark.parametrize("own_client", [True, False], ids=["own", "callers"])
def test_a_cookie_set_during_a_read_never_rides_on_a_trade(
    http_server: Callable[[Route], LoopbackServer], own_client: bool
) -> None:
    """A Set-Cookie on a read answer is not sent with the trade, nor to another port."""

    def route(seen: Seen) -> dict[str, Any]:
        return {"body": {"ok": True}, "headers": {"Set-Cookie": "session=from-read; Path=/"}}

    api = http_server(route)
    other = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(name="p", base_url=api.url("/v2"))
    extra = {} if own_client else {"http_client": httpx.Client()}
    with coinguard.Client(
        provider=provider, read_key=READ_KEY, trade_key=TRADE_KEY, allow_trading=True, **extra
    ) as client:
        client.get("/price")
        client.post("/orders", json={})
        client.get("/price")
    httpx.get(other.url("/x"))
    assert [seen.header("cookie") for seen in api.seen] == [None, None, None]
    assert other.seen[0].header("cookie") is None


# -- a second round: what an adversarial review of the fixes found ------------------------------


def test_a_line_break_in_a_path_segment_is_still_the_order_route(
    exchange: tuple[Exchange, str],
) -> None:
    """``/orders/7%0A/fills`` reaches Werkzeug's order route; ``*`` in a pattern covers it."""
    app, base = exchange
    assert httpx.get(f"{base}/orders/7%0A/fills").status_code == 200
    assert app.placed == ["GET"]
    provider = coinguard.Provider(
        name="werkzeug", base_url=base, trade_routes=["GET /orders/*/fills"]
    )
    with (
        coinguard.Client(provider=provider, read_key=READ_KEY) as client,
        pytest.raises(coinguard.ScopeError),
    ):
        client.get("/orders/7%0A/fills")
    assert app.placed == ["GET"]


def test_a_trailing_wildcard_covers_the_bare_prefix() -> None:
    """``GET /orders/*`` also covers ``/orders/`` and ``/orders`` (servers route them alike)."""
    provider = coinguard.Provider(name="p", base_url=None, trade_routes=["GET /orders/*"])
    for path in ("/orders/", "/orders", "/orders/7", "/ORDERS/"):
        assert provider.scope_of("GET", path) is coinguard.Scope.TRADE


def test_an_idempotent_route_is_exempt_only_as_written(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """``POST /orders/`` is not the idempotent ``POST /orders/*``: an unknown answer is final."""
    placed: list[str] = []
    server = http_server(_executing(502, placed))
    provider = coinguard.Provider(
        name="p", base_url=server.url("/v2"), idempotent_routes=["POST /orders/*"]
    )
    assert not provider.is_idempotent("POST", "/orders/")
    with (
        coinguard.Client(
            provider=provider, read_key=READ_KEY, trade_key=TRADE_KEY, allow_trading=True
        ) as client,
        pytest.raises(coinguard.OrderOutcomeUnknownError),
    ):
        client.post("/orders/", json={})
    assert placed == ["POST"]


def test_an_order_redirected_to_a_dead_host_is_placed_once(
    http_server: Callable[[Route], LoopbackServer], closed_port: int
) -> None:
    """An executed order answered 303 to a host that is down: its answer is the outcome; no
    "nothing was sent" connect error re-places it."""
    placed: list[str] = []

    def route(seen: Seen) -> dict[str, Any]:
        placed.append(seen.method)
        return {"status": 303, "headers": {"Location": f"http://127.0.0.1:{closed_port}/x"}}

    server = http_server(route)
    with (
        coinguard.Client(
            provider=coinguard.Provider(name="p", base_url=server.url("/v2")),
            read_key=READ_KEY,
            trade_key=TRADE_KEY,
            allow_trading=True,
            follow_redirects=True,
            max_retries=4,
        ) as client,
        pytest.raises(coinguard.APIStatusError) as info,
    ):
        client.post("/orders", json={})
    assert info.value.status_code == 303
    assert placed == ["POST"]


def _keyed_server(
    http_server: Callable[[Route], LoopbackServer], answer: Callable[[str], dict[str, Any]]
) -> LoopbackServer:
    """A server answering ``answer(key it was sent)``."""

    def route(seen: Seen) -> dict[str, Any]:
        return answer(seen.header("x-api-key") or dict(seen.query).get("api_key", ""))

    return http_server(route)


def test_a_deeply_nested_error_body_is_cut_not_a_recursion_error(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """500 levels of nesting around an echoed key: an AuthenticationError, no key anywhere."""
    canary = make_canary("READ")

    def answer(key: str) -> dict[str, Any]:
        body = "[" * 500 + json.dumps({"message": f"bad key {key}"}) + "]" * 500
        return {"status": 401, "body": body.encode(), "headers": {}}

    server = _keyed_server(http_server, answer)
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    with (
        coinguard.Client(provider=provider, read_key=canary.value) as client,
        pytest.raises(coinguard.AuthenticationError) as info,
    ):
        client.get("/price")
    assert _leaks(canary, _texts(info.value), repr(info.value.body)) == []


def test_an_all_digit_key_echoed_as_a_number_is_redacted(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """A numeric key a server echoes as a JSON number is not left in ``exc.body``."""
    key = "4762460676699543979"
    server = _keyed_server(
        http_server, lambda sent: {"status": 403, "body": f'{{"key": {sent}}}'.encode()}
    )
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    with (
        coinguard.Client(provider=provider, read_key=key) as client,
        pytest.raises(coinguard.PermissionDeniedError) as info,
    ):
        client.get("/price")
    assert key not in repr(info.value.body)


def test_the_redirect_limit_error_does_not_quote_a_keyed_location(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """A server that keeps redirecting to ``/v2/session/<key>``: the error names the call."""
    canary = make_canary("READ")
    server = _keyed_server(
        http_server, lambda sent: {"status": 302, "headers": {"Location": f"/v2/session/{sent}"}}
    )
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    with (
        coinguard.Client(
            provider=provider, read_key=canary.value, follow_redirects=True, max_redirects=2
        ) as client,
        pytest.raises(coinguard.APIConnectionError) as info,
    ):
        client.get("/price")
    assert _leaks(canary, _texts(info.value), info.value.url) == []


def test_a_key_inside_a_foreign_redirect_url_is_not_carried_there(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """``Location: https://other/login?next=/v2/price?api_key=<key>`` is refused, not sent."""
    canary = make_canary("READ")
    other = http_server(lambda seen: {"body": {"ok": True}})

    def answer(key: str) -> dict[str, Any]:
        nxt = httpx.QueryParams({"next": f"/v2/price?api_key={key}"})
        return {"status": 302, "headers": {"Location": f"{other.origin}/login?{nxt}"}}

    server = _keyed_server(http_server, answer)
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"), auth=QueryKey("api_key"))
    with (
        coinguard.Client(provider=provider, read_key=canary.value, follow_redirects=True) as c,
        pytest.raises(coinguard.InsecureTransportError),
    ):
        c.get("/price")
    assert other.seen == []


@pytest.mark.parametrize("bad", [b"bytes-key-0123456789", ["list-key-0123456789"]])
def test_a_key_of_the_wrong_type_is_not_kept_in_any_frame(bad: object) -> None:
    """``read_key=b"..."``: an ArgumentTypeError naming the type; no frame holds the value."""
    import traceback

    with pytest.raises(coinguard.ArgumentTypeError, match=r"not (bytes|list)") as info:
        coinguard.Client(provider="generic", base_url="https://api.example.com", read_key=bad)
    library = [
        f
        for f, _ in traceback.walk_tb(info.value.__traceback__)
        if f.f_code.co_filename != __file__
    ]
    shown = [repr(v) for frame in library for v in frame.f_locals.values()]
    assert library
    assert [text for text in shown if "0123456789" in text] == []


def test_localhost_with_the_root_dot_is_not_loopback() -> None:
    """``localhost.`` is not in the hosts file: it is resolved through DNS, so plain http to
    it is refused like any remote host."""
    with pytest.raises(coinguard.InsecureTransportError):
        coinguard.Client(
            provider="generic", base_url="http://localhost.:8765/v2", read_key=READ_KEY
        )


def test_a_key_in_the_path_is_not_quoted_by_a_status_error(
    http_server: Callable[[Route], LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """``GET /keys/<key>`` answered 404: message, ``url`` and pickle carry no key."""
    canary = make_canary("READ")
    server = http_server(lambda seen: {"status": 404, "body": {"message": "no"}})
    provider = coinguard.Provider(name="p", base_url=server.url("/v2"))
    with (
        coinguard.Client(provider=provider, read_key=canary.value) as client,
        pytest.raises(coinguard.NotFoundError) as info,
    ):
        client.get(f"/keys/{canary.value}")
    assert _leaks(canary, _texts(info.value), info.value.url) == []


def test_odd_server_input_never_escapes_raw(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """A superscript digit in a rate-limit header, a key-info answer of the wrong shape: a
    coinguard outcome, never a raw ValueError or TypeError."""
    server = http_server(
        lambda seen: {
            "body": {"success": True, "data": {"scopes": 5}},
            "headers": {"x-ratelimit-remaining": "\u00b2", "x-ratelimit-limit": "10"},
        }
    )
    provider = coinguard.Provider(
        name="p",
        base_url=server.url("/v2"),
        quota=coinguard.QuotaPolicy([coinguard.Window.per_minute(10)]),
        key_check=coinguard.KeyCheck("GET", "/key", coinguard.sandbox_key_info),
    )
    with coinguard.Client(provider=provider, read_key=READ_KEY) as client:
        assert client.get("/price")["success"] is True
        with pytest.raises(coinguard.ResponseDecodeError, match="unexpected shape"):
            client.verify_key()


def test_a_settings_validation_error_does_not_quote_the_key() -> None:
    """``Settings(read_key=[...])`` fails pydantic validation without echoing the input."""
    import pydantic

    with pytest.raises(pydantic.ValidationError) as info:
        coinguard.Settings(read_key=["CANARY-settings-0123456789"])  # type: ignore[arg-type]
    assert "0123456789" not in str(info.value)


def test_an_order_answered_with_an_unreadable_body_is_outcome_unknown(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """200 with an HTML page to an order: it was accepted, maybe executed; not a decode error."""
    server = http_server(lambda seen: {"body": "<html>maintenance</html>"})
    with (
        coinguard.Client(
            provider=coinguard.Provider(name="p", base_url=server.url("/v2")),
            read_key=READ_KEY,
            trade_key=TRADE_KEY,
            allow_trading=True,
        ) as client,
        pytest.raises(coinguard.OrderOutcomeUnknownError) as info,
    ):
        client.post("/orders", json={})
    assert info.value.status_code == 200
    assert len(server.seen) == 1


def test_a_post_key_check_is_never_taken_for_an_order(
    http_server: Callable[[Route], LoopbackServer],
) -> None:
    """A provider whose key check is a POST: a 500 on the trade key's check is a ServerError
    (retried like a read), never "the order may have been executed"."""
    server = http_server(lambda seen: {"status": 500, "body": {"message": "down"}})
    provider = coinguard.Provider(
        name="p",
        base_url=server.url("/v2"),
        key_check=coinguard.KeyCheck("POST", "/key", coinguard.sandbox_key_info),
    )
    with (
        coinguard.Client(
            provider=provider,
            read_key=READ_KEY,
            trade_key=TRADE_KEY,
            allow_trading=True,
            max_retries=0,
        ) as client,
        pytest.raises(coinguard.ServerError),
    ):
        client.verify_key()


class _Wrapper(httpx.BaseTransport):
    """A caller's transport wrapper (retry, metrics, caching) around a proxying transport."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


class _AsyncWrapper(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_proxy_hidden_behind_a_transport_wrapper_gets_no_byte(
    http_server: Callable[[Route], LoopbackServer],
    make_canary: Callable[[str], Canary],
    mode: str,
) -> None:
    """Whatever wraps the caller's transport, a plain-http request that would connect to a
    proxy is refused when the connection is made, before any byte of it is written."""
    canary = make_canary("READ")
    proxy = http_server(lambda seen: {"body": {"via": "proxy"}})
    api = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(name="p", base_url=api.url("/v2"))
    if mode == "sync":
        http: Any = httpx.Client(transport=_Wrapper(httpx.HTTPTransport(proxy=proxy.origin)))
    else:
        inner = httpx.AsyncHTTPTransport(proxy=proxy.origin)
        http = httpx.AsyncClient(transport=_AsyncWrapper(inner))
    kwargs = {"provider": provider, "read_key": canary.value, "http_client": http}
    with pytest.raises(coinguard.InsecureTransportError, match="proxy"):
        _call(mode, kwargs, "GET", "/price")
    assert proxy.seen == []
    assert api.seen == []
    direct = {"provider": provider, "read_key": canary.value, "http_client": httpx.Client()}
    assert _call("sync", direct, "GET", "/price") == {"ok": True}  # a direct client still works
