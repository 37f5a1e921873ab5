"""Kraken orders: coinguard gives each AddOrder a cl_ord_id in one of Kraken's formats, and an
order whose outcome was lost is looked up by it in OpenOrders, then ClosedOrders, before
anything else; the order found is the call's answer, in AddOrder's shape."""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import coinguard
from coinguard.providers import kraken
from test_kraken import (
    READ_KEY,
    READ_SECRET,
    SECRETS,
    TRADE_KEY,
    TRADE_SECRET,
    FakeClock,
    Kraken,
    _client,
)
from test_kraken_trading import Spy
from test_leaks import Needle, Telemetry, _client_texts, _exception_texts, _leaks, telemetry

if TYPE_CHECKING:
    from conftest import CapturedLogs

__all__ = ["telemetry"]  # the fixture, shared with the leak suite

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "1", "price": "10"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
UNAVAILABLE = {"error": ["EService:Unavailable"]}


class Exchange(Kraken):
    """The mock Kraken, with answers built from the request (to echo its cl_ord_id)."""

    def __init__(self) -> None:
        super().__init__()
        self.built: dict[str, Callable[[httpx.Request], httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = super().__call__(request)
        build = self.built.get(request.url.path)
        return build(request) if build is not None else answer


def _fields(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


def _trader(exchange: Kraken, clock: FakeClock) -> coinguard.Client:
    return _client(
        exchange,
        clock,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        quota_store=coinguard.MemoryStore(),
    )


def _listed(state: str, cl_ord_id: str, txid: str = "OABCDE-FGHIJ-KLMNOP") -> dict[str, Any]:
    descr = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "order": "buy 1 XBTUSD"}
    order = {"status": state, "cl_ord_id": cl_ord_id, "descr": descr, "vol": "1"}
    key = "open" if state == "open" else "closed"
    return {"error": [], "result": {key: {txid: order}}}


def _paths(exchange: Kraken) -> list[str]:
    return [r.url.path.removeprefix("/0/private/") for r in exchange.seen]


def test_add_order_carries_a_fresh_cl_ord_id_as_a_uuid() -> None:
    """Each AddOrder gets its own cl_ord_id, a 36-character UUID (Kraken's long form)."""
    clock, exchange = FakeClock(), Kraken()
    with _trader(exchange, clock) as client:
        client.post("/0/private/AddOrder", params=ORDER)
        client.post("/0/private/AddOrder", params=ORDER)
    ids = [_fields(r)["cl_ord_id"] for r in exchange.seen]
    assert all(UUID.match(i) for i in ids), ids
    assert ids[0] != ids[1]


@pytest.mark.parametrize("given", ["my-order_1", "0" * 32, "6d1b345e-2821-40e2-ad83-4ecb18a06876"])
def test_a_cl_ord_id_the_caller_gives_is_kept(given: str) -> None:
    """Free text up to 18 characters, a 32-hex UUID and a 36-character UUID are Kraken's."""
    clock, exchange = FakeClock(), Kraken()
    with _trader(exchange, clock) as client:
        client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": given})
    assert _fields(exchange.seen[0])["cl_ord_id"] == given


@pytest.mark.parametrize("given", ["x" * 19, "has space", "", "0" * 33])
def test_a_cl_ord_id_outside_krakens_formats_is_refused_before_sending(given: str) -> None:
    """Longer free text, a space, nothing, or hex of the wrong length: ConfigurationError
    naming cl_ord_id and the formats, before any byte is sent."""
    clock, exchange = FakeClock(), Kraken()
    with (
        _trader(exchange, clock) as client,
        pytest.raises(coinguard.ConfigurationError, match=r"cl_ord_id.*UUID"),
    ):
        client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": given})
    assert exchange.seen == []


def test_userref_and_cl_ord_id_together_are_refused() -> None:
    """Kraken takes one of userref and cl_ord_id: an order with userref is refused with the
    reason, since coinguard needs cl_ord_id to find a lost order."""
    clock, exchange = FakeClock(), Kraken()
    with (
        _trader(exchange, clock) as client,
        pytest.raises(coinguard.ConfigurationError, match="userref"),
    ):
        client.post("/0/private/AddOrder", params={**ORDER, "userref": "7"})
    assert exchange.seen == []


def test_lost_order_is_found_in_closed_orders_after_open_orders() -> None:
    """EService:Unavailable on AddOrder: OpenOrders (empty) then ClosedOrders (the order),
    both asked by the order's cl_ord_id with the read key; the call answers the order found
    as AddOrder would (txid and descr); AddOrder is not sent again."""
    clock, exchange = FakeClock(), Exchange()
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exchange.answers["/0/private/OpenOrders"] = [
        httpx.Response(200, json={"error": [], "result": {"open": {}}})
    ]
    exchange.built["/0/private/ClosedOrders"] = lambda request: httpx.Response(
        200, json=_listed("closed", _fields(request)["cl_ord_id"])
    )
    with _trader(exchange, clock) as client:
        result = client.post("/0/private/AddOrder", params=ORDER)
    assert _paths(exchange) == ["AddOrder", "OpenOrders", "ClosedOrders"]
    sent_id = _fields(exchange.seen[0])["cl_ord_id"]
    for lookup in exchange.seen[1:]:
        assert _fields(lookup)["cl_ord_id"] == sent_id
        assert lookup.headers["API-Key"] != TRADE_KEY  # a read: the read key
    assert result["error"] == []
    assert result["result"]["txid"] == ["OABCDE-FGHIJ-KLMNOP"]
    assert result["result"]["descr"]["order"] == "buy 1 XBTUSD"


def test_order_found_open_is_not_looked_up_further() -> None:
    """Found by OpenOrders: ClosedOrders is not asked."""
    clock, exchange = FakeClock(), Kraken()
    given = "lost-order-1"
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exchange.answers["/0/private/OpenOrders"] = [
        httpx.Response(200, json=_listed("open", given, "OOPEN1-AAAAA-BBBBBB"))
    ]
    with _trader(exchange, clock) as client:
        result = client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": given})
    assert _paths(exchange) == ["AddOrder", "OpenOrders"]
    assert result["result"]["txid"] == ["OOPEN1-AAAAA-BBBBBB"]


def test_order_found_nowhere_stays_unknown_and_is_not_sent_again() -> None:
    """Every poll of both lookups finds nothing: OrderOutcomeUnknownError with the cl_ord_id
    and both lookups in what was tried; one AddOrder only."""
    clock, exchange = FakeClock(), Kraken()
    empty_open = {"error": [], "result": {"open": {}}}
    empty_closed = {"error": [], "result": {"closed": {}, "count": 0}}
    spec = kraken.PROFILE.client_order_id
    assert spec is not None
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exchange.answers["/0/private/OpenOrders"] = [
        httpx.Response(200, json=empty_open) for _ in range(spec.polls)
    ]
    exchange.answers["/0/private/ClosedOrders"] = [
        httpx.Response(200, json=empty_closed) for _ in range(spec.polls)
    ]
    with (
        _trader(exchange, clock) as client,
        pytest.raises(coinguard.OrderOutcomeUnknownError) as info,
    ):
        client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "never-seen-1"})
    assert _paths(exchange).count("AddOrder") == 1
    assert _paths(exchange)[1:] == ["OpenOrders", "ClosedOrders"] * spec.polls
    assert info.value.client_order_id == "never-seen-1"
    assert "not sent again" in str(info.value)


def test_a_lookup_that_fails_leaves_the_order_unknown() -> None:
    """OpenOrders refused (permission): unknown, ClosedOrders not asked, nothing re-sent."""
    clock, exchange = FakeClock(), Kraken()
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exchange.answers["/0/private/OpenOrders"] = [
        httpx.Response(200, json={"error": ["EGeneral:Permission denied"]})
    ]
    with _trader(exchange, clock) as client, pytest.raises(coinguard.OrderOutcomeUnknownError):
        client.post("/0/private/AddOrder", params=ORDER)
    assert _paths(exchange) == ["AddOrder", "OpenOrders"]


def test_one_lookup_route_or_several_can_be_declared() -> None:
    """ClientOrderId takes one lookup route or a sequence; a bad one, or an id pattern that
    is no regular expression, is refused."""
    one = coinguard.ClientOrderId(routes=["POST /o"], lookup="GET /o/lookup")
    assert one.lookup_routes == (("GET", "/o/lookup"),)
    both = coinguard.ClientOrderId(routes=["POST /o"], lookup=["GET /open", "GET /closed"])
    assert both.lookup_routes == (("GET", "/open"), ("GET", "/closed"))
    with pytest.raises(coinguard.ConfigurationError):
        coinguard.ClientOrderId(routes=["POST /o"], lookup=[])
    with pytest.raises(coinguard.ConfigurationError):
        coinguard.ClientOrderId(routes=["POST /o"], lookup=["nope"])
    with pytest.raises(coinguard.ConfigurationError, match="regular expression") as info:
        coinguard.ClientOrderId(routes=["POST /o"], lookup="GET /o", pattern="(")
    assert info.value.__cause__ is None


def test_a_key_given_as_cl_ord_id_leaks_into_no_text(
    monkeypatch: pytest.MonkeyPatch, log_capture: CapturedLogs, telemetry: Telemetry
) -> None:
    """The cl_ord_id is shown in audit lines, logs and the unknown-outcome error: a trade key
    of 32 hex digits (a valid cl_ord_id) pasted in as the order's id shows in none of them,
    nor in spans or metrics, through AddOrder's loss and both lookups."""
    key = secrets.token_hex(16)
    monkeypatch.setitem(SECRETS, key, TRADE_SECRET)
    clock, exchange = FakeClock(), Kraken()
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exc: Exception | None = None
    with _client(
        exchange,
        clock,
        trade_key=key,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        quota_store=coinguard.MemoryStore(),
        observers=telemetry.observers(),
    ) as client:
        try:
            client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": key})
        except coinguard.OrderOutcomeUnknownError as err:
            exc = err
    assert exc is not None
    assert _fields(exchange.seen[0])["cl_ord_id"] == key  # it did go, to Kraken only
    # Not the frames' locals: the key is the caller's own order data there, in the params of
    # every frame that carries the order, the caller's own frame first.
    texts = [
        ("logs", log_capture.text),
        *_client_texts(client),
        *((where, t) for where, t in _exception_texts(exc) if not where.endswith("locals")),
        *telemetry.texts(),
    ]
    assert any("cl_ord_id" in t or "client_order_id" in t for _, t in texts)
    found = _leaks([Needle(key)], texts)
    assert "; ".join(f.split(":")[0] for f in found) == ""


@pytest.mark.anyio
async def test_async_client_reconciles_through_both_lookups_and_prices_the_cancel() -> None:
    """AsyncClient: AddOrder's answer lost (EService:Unavailable), found by ClosedOrders
    after OpenOrders; the order found is noted placed, so its cancel is priced by age."""
    clock, exchange, store = FakeClock(), Exchange(), Spy()
    exchange.answers["/0/private/AddOrder"] = [httpx.Response(200, json=UNAVAILABLE)]
    exchange.answers["/0/private/OpenOrders"] = [
        httpx.Response(200, json={"error": [], "result": {"open": {}}})
    ]
    exchange.built["/0/private/ClosedOrders"] = lambda request: httpx.Response(
        200, json=_listed("open", _fields(request)["cl_ord_id"], "OASYNC-AAAAA-BBBBBB")
    )

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    async with coinguard.AsyncClient(
        provider="kraken",
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        quota_store=store,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(exchange)),
        clock=clock,
        sleep=sleep,
        jitter=lambda: 0.0,
    ) as client:
        placed = await client.post("/0/private/AddOrder", params=ORDER)
        clock.now += 20  # 20 s old: the cancel adds 4
        await client.post("/0/private/CancelOrder", params={"txid": "OASYNC-AAAAA-BBBBBB"})
    assert _paths(exchange) == ["AddOrder", "OpenOrders", "ClosedOrders", "CancelOrder"]
    assert placed["result"]["txid"] == ["OASYNC-AAAAA-BBBBBB"]
    assert store.pairs() == [("XBTUSD", 1), ("XBTUSD", 4)]
