"""Typed endpoints: declared per provider, called through the one client, answered as models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

import coinguard
from coinguard import ArgumentTypeError, ConfigurationError, ResponseDecodeError
from coinguard.sandbox import Sandbox

PROVIDERS = ("tokenmetrics", "sandbox", "coingecko", "coingecko-pro", "coinmarketcap")


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def cg() -> Iterator[Sandbox]:
    with Sandbox(profile="coingecko") as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def cmc() -> Iterator[Sandbox]:
    with Sandbox(profile="coinmarketcap") as sandbox:
        yield sandbox


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_data_provider_declares_read_endpoints_its_routes_agree_with(name: str) -> None:
    """Each declared endpoint is a read by the provider's own route table, with a model."""
    provider = coinguard.get_provider(name)
    assert len(provider.endpoints) >= 2
    for ep in provider.endpoints:
        path = ep.route.replace("{id}", "bitcoin")
        assert provider.scope_of(ep.method, path) is ep.scope is coinguard.Scope.READ
        assert issubclass(ep.model, coinguard.Model)
        assert ep.cost >= 1


def test_client_endpoints_lists_name_scope_cost_and_parameters(sb: Sandbox) -> None:
    """client.endpoints is a mapping; its text names each endpoint with cost and parameters."""
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read) as c:
        endpoints = c.endpoints
    assert {"tokens", "price", "daily_ohlcv", "hourly_ohlcv", "trader_grades"} <= set(endpoints)
    assert endpoints["daily_ohlcv"].cost == 2  # the sandbox's declared OHLCV cost
    text = str(endpoints)
    assert "daily_ohlcv" in text
    assert "2 credits" in text
    assert "startDate?" in text


def test_a_call_returns_validated_models_with_utc_times_floats_and_extra_fields(
    sb: Sandbox,
) -> None:
    """Daily candles come back as Candle models: aware UTC time, float prices, extras kept."""
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read) as c:
        rows = c.call("daily_ohlcv", symbol="BTC", startDate="2026-11-01", endDate="2026-11-03")
    assert [r.time for r in rows] == [
        datetime(2026, 11, day, tzinfo=timezone.utc) for day in (1, 2, 3)
    ]
    first = rows[0]
    assert first.time.utcoffset() is not None
    assert all(isinstance(v, float) for v in (first.open, first.high, first.low, first.close))
    assert first.model_extra == {"token_id": 3375, "name": "Bitcoin"}


def test_coingecko_shapes_mapping_and_arrays_become_rows(cg: Sandbox) -> None:
    """/simple/price (a mapping by id) and /ohlc (positional arrays) parse into models."""
    with coinguard.Client(provider="coingecko", base_url=cg.base_url, read_key=cg.keys.read) as c:
        prices = c.call("simple_price", ids="bitcoin,solana")
        candles = c.call("ohlc", id="bitcoin", days=7)
    assert [p.id for p in prices] == ["bitcoin", "solana"]
    assert prices[0].prices["usd"] > 0
    assert len(candles) >= 7
    assert all(c.time.tzinfo is timezone.utc and c.volume is None for c in candles)


def test_coinmarketcap_quotes_by_symbol(cmc: Sandbox) -> None:
    """quotes_latest: a mapping by symbol, each coin with a typed quote per currency."""
    with coinguard.Client(
        provider="coinmarketcap", base_url=cmc.base_url, read_key=cmc.keys.read
    ) as c:
        (btc, eth) = c.call("quotes_latest", symbol="BTC,ETH")
    assert (btc.symbol, eth.symbol) == ("BTC", "ETH")
    assert btc.quote["USD"].price > eth.quote["USD"].price > 0


def test_raw_request_gives_status_and_headers_beside_the_body(sb: Sandbox) -> None:
    """request(..., raw=True) answers a Response: status, headers (rate-limit ones too), body."""
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read) as c:
        response = c.request("GET", "/price", params={"symbol": "BTC"}, raw=True)
    assert isinstance(response, coinguard.Response)
    assert response.status_code == 200
    assert "ratelimit-policy" in response.headers
    assert response.body["data"][0]["symbol"] == "BTC"
    assert sb.keys.read not in repr(response)


@pytest.mark.anyio
async def test_async_client_calls_endpoints_and_raw_alike(sb: Sandbox) -> None:
    """AsyncClient.call and raw=True behave as the sync client's."""
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read
    ) as c:
        rows = await c.call("price", symbol="ETH")
        response = await c.request("GET", "/tokens", params={"limit": 2}, raw=True)
    assert rows[0].symbol == "ETH"
    assert rows[0].price > 0
    assert response.status_code == 200
    assert len(response.body["data"]) == 2


def test_unknown_endpoint_and_parameter_are_clear_errors(sb: Sandbox) -> None:
    """A wrong endpoint or parameter name says what exists, before any request."""
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read) as c:
        with pytest.raises(ConfigurationError, match=r"no endpoint 'candles'.*daily_ohlcv"):
            c.call("candles")
        with pytest.raises(ConfigurationError, match=r"no parameter 'start'.*startDate"):
            c.call("daily_ohlcv", start="2026-01-01")
    with pytest.raises(ConfigurationError, match="needs the parameter 'id'"):
        coinguard.get_provider("coingecko").endpoint("ohlc").request({})
    ohlc = coinguard.get_provider("coingecko").endpoint("ohlc")
    with pytest.raises(ConfigurationError, match="not a path segment"):
        ohlc.request({"id": "../key"})
    path, query = ohlc.request({"id": "bitcoin?days=9#x"})
    assert path == "/coins/bitcoin%3Fdays%3D9%23x/ohlc"
    assert query["days"] == 1
    assert sb.ledger.entries() == [] or all(e.path != "/v2/candles" for e in sb.ledger.entries())


def test_a_body_that_does_not_fit_the_model_is_a_decode_error_without_values() -> None:
    """A row missing a field raises ResponseDecodeError naming the field, not the value."""
    ep = coinguard.get_provider("tokenmetrics").endpoint("price")
    with pytest.raises(ResponseDecodeError, match=r"price: Field required") as info:
        ep.parse({"data": [{"symbol": "SECRET-VALUE-123"}]})
    assert "SECRET-VALUE-123" not in str(info.value)


@pytest.mark.parametrize(
    ("provider", "name", "body"),
    [
        ("coingecko", "simple_price", [1, 2]),
        ("coingecko", "simple_price", "text"),
        ("coinmarketcap", "quotes_latest", {"data": {"BTC": 5}}),
        ("coingecko", "ohlc", {"a": 1}),
        ("coingecko", "ohlc", [5]),
        ("tokenmetrics", "price", {"data": "text"}),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_decode_error_not_a_raw_one(
    provider: str, name: str, body: object
) -> None:
    endpoint = coinguard.get_provider(provider).endpoint(name)
    with pytest.raises(ResponseDecodeError, match=r"expected .* got "):
        endpoint.parse(body)


@pytest.mark.parametrize(
    ("provider", "name", "params", "param"),
    [
        ("coingecko", "ohlc", {"id": ["bitcoin"]}, "id"),
        ("coingecko", "ohlc", {"id": "bitcoin", "days": 7.5}, "days"),
        ("coingecko", "ohlc", {"id": "bitcoin", "days": True}, "days"),
        ("tokenmetrics", "daily_ohlcv", {"symbol": ("BTC", "ETH")}, "symbol"),
        ("tokenmetrics", "daily_ohlcv", {"symbol": {"BTC": 1}}, "symbol"),
        ("coinmarketcap", "listings_latest", {"limit": [10]}, "limit"),
    ],
)
def test_a_parameter_of_the_wrong_kind_is_refused_by_name(
    provider: str, name: str, params: dict[str, object], param: str
) -> None:
    endpoint = coinguard.get_provider(provider).endpoint(name)
    with pytest.raises(ConfigurationError, match=f"the parameter {param!r} must be"):
        endpoint.request(params)


def test_parameters_of_their_kind_pass_and_a_date_is_sent_as_a_day() -> None:
    from datetime import date

    ohlc = coinguard.get_provider("coingecko").endpoint("ohlc")
    assert ohlc.request({"id": "bitcoin", "days": "max"})[1]["days"] == "max"
    cmc = coinguard.get_provider("coinmarketcap").endpoint("ohlcv_historical")
    assert cmc.request({"id": 1})[0] == "/v2/cryptocurrency/ohlcv/historical"
    daily = coinguard.get_provider("tokenmetrics").endpoint("daily_ohlcv")
    query = daily.request({"symbol": "BTC", "startDate": date(2026, 11, 1)})[1]
    assert query["startDate"] == "2026-11-01"


def test_a_parameter_of_the_wrong_kind_sends_nothing() -> None:
    """Before the check, id=["bitcoin"] went out as /coins/%5B%27bitcoin%27%5D/ohlc."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=[])

    http = httpx.Client(transport=httpx.MockTransport(record))
    with coinguard.Client(
        provider="coingecko", read_key="CG-test-key-0123456789", http_client=http
    ) as c:
        with pytest.raises(ArgumentTypeError, match=r"'id' must be a string.*join several"):
            c.call("ohlc", id=["bitcoin"])
        with pytest.raises(ArgumentTypeError, match="'ids' must be a string"):
            c.paginate("markets", ids=["bitcoin"], progress=False)
        c.call("ohlc", id="bitcoin")
    assert [r.url.path for r in sent] == ["/api/v3/coins/bitcoin/ohlc"]
