"""Origin pinning: the key goes only to the provider's origin, across redirects and absolute URLs.

Redirect tests run over real sockets: server A is the provider, server B another origin on
another loopback port. B records the request line and headers it received.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx

import coinguard
from coinguard import BearerKey, HeaderKey, QueryKey

if TYPE_CHECKING:
    from conftest import Canary, LoopbackServer, Route, Seen

STYLES = {
    "header": HeaderKey("x-api-key"),
    "query": QueryKey("api_key"),
    "bearer": BearerKey(),
}
MOCK_BASE = "https://api.leaky.test/v2"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for scope in ("READ", "TRADE"):
        for suffix in ("", "_FILE", "_REF"):
            monkeypatch.delenv(f"COINGUARD_{scope}_KEY{suffix}", raising=False)


def _provider_route(landing: str, status: int) -> Route:
    """Server A: ``/moved`` goes to B (query string kept), ``/hop*`` stays on A, ``/loop`` loops."""

    def route(seen: Seen) -> dict[str, Any]:
        path = seen.path.removeprefix("/v2")
        query = urlsplit(seen.target).query
        here = f"http://{seen.header('Host')}"
        locations = {
            "/moved": f"{landing}/landing?{query}",
            "/orders": f"{landing}/orders",
            "/hop": f"/v2/ok?{query}",
            "/hop-absolute": f"{here}/v2/ok",
            "/loop": "/v2/loop",
        }
        if path in locations:
            return {"status": status, "headers": {"Location": locations[path]}}
        return {"body": {"where": "A"}}

    return route


def _landing(seen: Seen) -> dict[str, Any]:
    return {"body": {"where": "B"}}


@pytest.fixture
def servers(
    http_server: Callable[[Route], LoopbackServer], request: pytest.FixtureRequest
) -> tuple[LoopbackServer, LoopbackServer]:
    """(A, B): A redirects with the status given by indirect parametrisation (default 302)."""
    status = getattr(request, "param", 302)
    landing = http_server(_landing)
    return http_server(_provider_route(landing.origin, status)), landing


def _client(api: LoopbackServer, style: object, canary: Canary, **kw: Any) -> coinguard.Client:
    provider = coinguard.Provider(name="leaky", base_url=api.url("/v2"), auth=style)  # type: ignore[arg-type]
    return coinguard.Client(provider=provider, read_key=canary.value, max_retries=0, **kw)


def _assert_clean(seen: list[Seen], *canaries: Canary) -> None:
    leaks = [n for s in seen for c in canaries for n in c.found_in(s.raw)]
    assert leaks == [], "the key reached another origin"


STATUSES = pytest.mark.parametrize("servers", [302, 307], indirect=True, ids=["302", "307"])
EACH_STYLE = pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())


@STATUSES
@EACH_STYLE
def test_redirect_is_not_followed_by_default(
    style: object,
    servers: tuple[LoopbackServer, LoopbackServer],
    make_canary: Callable[[str], Canary],
) -> None:
    """By default a 3xx is an APIStatusError, and nothing at all is sent to the Location."""
    api, landing = servers
    canary = make_canary("READ")
    with _client(api, style, canary) as client, pytest.raises(coinguard.APIStatusError) as info:
        client.get("/moved")
    assert type(info.value) is coinguard.APIStatusError
    assert info.value.status_code in (302, 307)
    assert [s.presented(style) for s in api.seen] == [[canary.value]]
    assert landing.seen == []


@STATUSES
@EACH_STYLE
def test_cross_origin_redirect_drops_the_key(
    style: object,
    servers: tuple[LoopbackServer, LoopbackServer],
    make_canary: Callable[[str], Canary],
) -> None:
    """Following a redirect to another origin, B gets the request but never the key."""
    api, landing = servers
    canary = make_canary("READ")
    with _client(api, style, canary, follow_redirects=True) as client:
        assert client.get("/moved", params={"symbol": "BTC"}) == {"where": "B"}
    assert [s.presented(style) for s in api.seen] == [[canary.value]]
    assert len(landing.seen) == 1
    assert landing.seen[0].path == "/landing"
    _assert_clean(landing.seen, canary)


@pytest.mark.parametrize("servers", [307, 308], indirect=True, ids=["307", "308"])
@EACH_STYLE
def test_an_orders_redirect_is_never_followed(
    style: object,
    servers: tuple[LoopbackServer, LoopbackServer],
    make_canary: Callable[[str], Canary],
) -> None:
    """A 307/308 answer to an order is its outcome: the body is not re-sent to B (nor the
    order re-placed by a retry after a failed hop), and no key goes anywhere but A."""
    api, landing = servers
    read, trade = make_canary("READ"), make_canary("TRADE")
    with (
        _client(
            api, style, read, trade_key=trade.value, allow_trading=True, follow_redirects=True
        ) as client,
        pytest.raises(coinguard.APIStatusError) as info,
    ):
        client.post("/orders", json={"symbol": "BTC", "qty": 1})
    assert info.value.status_code in (307, 308)
    assert [s.presented(style) for s in api.seen] == [[trade.value]]
    assert landing.seen == []


@STATUSES
@EACH_STYLE
@pytest.mark.parametrize("path", ["/hop", "/hop-absolute"])
def test_same_origin_redirect_keeps_the_key(
    path: str,
    style: object,
    servers: tuple[LoopbackServer, LoopbackServer],
    make_canary: Callable[[str], Canary],
) -> None:
    """A redirect that stays on the provider's origin carries the key, exactly once."""
    api, landing = servers
    canary = make_canary("READ")
    with _client(api, style, canary, follow_redirects=True) as client:
        assert client.get(path) == {"where": "A"}
    assert [s.path for s in api.seen] == [f"/v2{path}", "/v2/ok"]
    assert [s.presented(style) for s in api.seen] == [[canary.value], [canary.value]]
    assert landing.seen == []


@pytest.mark.anyio
@EACH_STYLE
async def test_async_cross_origin_redirect_drops_the_key(
    style: object,
    servers: tuple[LoopbackServer, LoopbackServer],
    make_canary: Callable[[str], Canary],
) -> None:
    """AsyncClient follows a redirect to another origin without the key too."""
    api, landing = servers
    canary = make_canary("READ")
    provider = coinguard.Provider(name="leaky", base_url=api.url("/v2"), auth=style)  # type: ignore[arg-type]
    async with coinguard.AsyncClient(
        provider=provider, read_key=canary.value, max_retries=0, follow_redirects=True
    ) as client:
        assert await client.get("/moved") == {"where": "B"}
    assert [s.presented(style) for s in api.seen] == [[canary.value]]
    assert len(landing.seen) == 1
    _assert_clean(landing.seen, canary)


def test_plain_httpx_carries_a_custom_key_header_to_another_origin(
    servers: tuple[LoopbackServer, LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """Contrast: httpx only strips Authorization on a cross-origin hop, so x-api-key reaches B."""
    api, landing = servers
    canary = make_canary("READ")
    with httpx.Client(follow_redirects=True, headers={"x-api-key": canary.value}) as plain:
        plain.get(api.url("/v2/moved"))
    assert landing.seen[0].header("x-api-key") == canary.value


def test_redirect_loop_stops_at_max_redirects(
    servers: tuple[LoopbackServer, LoopbackServer], make_canary: Callable[[str], Canary]
) -> None:
    """A redirect loop ends with APIConnectionError after max_redirects hops, naming no key."""
    api, _ = servers
    canary = make_canary("READ")
    style = QueryKey("api_key")
    with (
        _client(api, style, canary, follow_redirects=True, max_redirects=2) as client,
        pytest.raises(coinguard.APIConnectionError) as info,
    ):
        client.get("/loop")
    assert len(api.seen) == 3
    assert canary.found_in(f"{info.value} {info.value.url}") == []


# -- unit level: MockTransport and respx -------------------------------------------------


def _mock_provider(style: object = None) -> coinguard.Provider:
    auth = style if style is not None else HeaderKey("x-api-key")
    return coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=auth)  # type: ignore[arg-type]


@EACH_STYLE
@pytest.mark.parametrize(
    "target",
    [
        "http://api.leaky.test/v2/ok",  # same host, downgraded scheme
        "https://api.leaky.test:8443/v2/ok",  # same host, other port
        "https://evil.test/v2/ok",
    ],
)
def test_redirect_off_origin_drops_the_key_mock_transport(
    target: str, style: object, make_canary: Callable[[str], Canary]
) -> None:
    """Scheme, host and port all count: a hop that changes any of them goes without the key."""
    canary = make_canary("READ")
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/v2/moved":
            return httpx.Response(
                307, headers={"Location": f"{target}?{request.url.query.decode()}"}
            )
        return httpx.Response(200, json={"landed": True})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with coinguard.Client(
        provider=_mock_provider(style),
        read_key=canary.value,
        http_client=http,
        follow_redirects=True,
    ) as client:
        assert client.get("/moved") == {"landed": True}
    http.close()
    assert [str(r.url.copy_with(query=None)) for r in sent] == [f"{MOCK_BASE}/moved", target]
    hop = sent[1]
    assert canary.found_in(f"{hop.url} {list(hop.headers.items())}") == []


def _counting_client(**kw: Any) -> tuple[coinguard.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return coinguard.Client(provider=_mock_provider(), http_client=http, **kw), sent


FOREIGN = [
    "https://evil.test/v2/price",
    "//evil.test/v2/price",
    "http://api.leaky.test/v2/price",
    "https://api.leaky.test:8443/v2/price",
    "https://api.leaky.test@evil.test/v2/price",
    "https://api.leaky.test.evil.test/v2/price",
]


@pytest.mark.parametrize("url", FOREIGN)
def test_absolute_url_to_another_origin_is_refused_before_sending(
    url: str, make_canary: Callable[[str], Canary]
) -> None:
    """get() with an absolute URL off the provider's origin raises and sends nothing at all."""
    read, trade = make_canary("READ"), make_canary("TRADE")
    client, sent = _counting_client(read_key=read.value, trade_key=trade.value, allow_trading=True)
    with client:
        with pytest.raises(coinguard.InsecureTransportError) as info:
            client.get(url)
        with pytest.raises(coinguard.InsecureTransportError):
            client.post(url.replace("/price", "/orders"), json={})
    assert sent == []
    assert read.found_in(str(info.value)) == trade.found_in(str(info.value)) == []


def test_absolute_url_on_the_provider_origin_is_sent(make_canary: Callable[[str], Canary]) -> None:
    """The same check lets an absolute URL on the provider's own origin through, with the key."""
    canary = make_canary("READ")
    client, sent = _counting_client(read_key=canary.value)
    with client:
        client.get(f"{MOCK_BASE}/price")
    assert [(str(r.url), r.headers["x-api-key"]) for r in sent] == [
        (f"{MOCK_BASE}/price", canary.value)
    ]


def test_absolute_url_to_another_origin_is_refused_respx(
    make_canary: Callable[[str], Canary],
) -> None:
    """Under respx, a foreign absolute URL reaches no route, mocked or not."""
    canary = make_canary("READ")
    with respx.mock(assert_all_called=False) as router:
        evil = router.get("https://evil.test/v2/price").respond(json={})
        with (
            coinguard.Client(provider=_mock_provider(), read_key=canary.value) as client,
            pytest.raises(coinguard.InsecureTransportError),
        ):
            client.get("https://evil.test/v2/price")
    assert evil.call_count == 0
    assert router.calls.call_count == 0


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.example.com/v2",
        "http://10.0.0.1/v2",
        "http://127.0.0.1.nip.io/v2",
        "http://localhost.example.com/v2",
        "http://[2001:db8::1]/v2",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused(
    base_url: str, make_canary: Callable[[str], Canary]
) -> None:
    """http:// to anything but loopback fails at construction, before a key could be sent."""
    canary = make_canary("READ")
    provider = coinguard.Provider(name="leaky", base_url=base_url)
    with pytest.raises(coinguard.InsecureTransportError) as info:
        coinguard.Client(provider=provider, read_key=canary.value)
    assert canary.found_in(str(info.value)) == []


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8765/v2",
        "http://127.4.5.6/v2",
        "http://[::1]:8765/v2",
        "http://localhost:8765/v2",
        "http://LOCALHOST/v2",
    ],
)
def test_plain_http_to_loopback_is_allowed(
    base_url: str, make_canary: Callable[[str], Canary]
) -> None:
    """Loopback (127.0.0.0/8, ::1, localhost) may use plain http, e.g. for the sandbox."""
    provider = coinguard.Provider(name="leaky", base_url=base_url)
    with coinguard.Client(provider=provider, read_key=make_canary("READ").value) as client:
        assert client.provider is provider
