"""Orders: validation, creation, lookup, cancel and idempotency keys."""

from __future__ import annotations

import pytest

from coinguard.sandbox import ManualClock, Sandbox, SandboxConfig

MARKET = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.5}
LIMIT = {"symbol": "ETH", "side": "sell", "type": "limit", "quantity": 2, "price": 5000}


@pytest.fixture
def sb(coinguard_sandbox_factory, clock: ManualClock) -> Sandbox:
    """A sandbox on a manual clock."""
    return coinguard_sandbox_factory(SandboxConfig(clock=clock))


@pytest.fixture
def trade(sb: Sandbox, http):
    """An httpx client sending the trade key."""
    return http(sb, sb.keys.trade)


def test_market_order_is_created_and_filled(sb: Sandbox, trade) -> None:
    """POST /orders answers 201 with the order; a market order fills at once."""
    r = trade.post("/orders", json=MARKET)
    assert r.status_code == 201
    order = r.json()["data"]
    assert order["status"] == "filled"
    assert order["filled_price"] > 0
    assert order["created_at"] == "2023-11-14T22:13:20.000Z"
    assert list(sb.orders) == [order["id"]]


def test_limit_order_can_be_fetched_listed_and_cancelled(trade) -> None:
    """A limit order stays open, is found by id and in the list, and can be cancelled."""
    order_id = trade.post("/orders", json=LIMIT).json()["data"]["id"]
    assert trade.get(f"/orders/{order_id}").json()["data"]["status"] == "open"
    assert [o["id"] for o in trade.get("/orders").json()["data"]] == [order_id]
    cancelled = trade.delete(f"/orders/{order_id}")
    assert cancelled.json()["data"]["status"] == "cancelled"


def test_filled_order_cannot_be_cancelled_and_unknown_is_404(trade) -> None:
    """Cancelling a filled order is 409; an unknown id is 404."""
    order_id = trade.post("/orders", json=MARKET).json()["data"]["id"]
    assert trade.delete(f"/orders/{order_id}").status_code == 409
    assert trade.get("/orders/ord_999999").status_code == 404


def test_orders_are_private_to_their_account(sb: Sandbox, trade, http) -> None:
    """Another account cannot see an order: 404, not 403."""
    order_id = trade.post("/orders", json=MARKET).json()["data"]["id"]
    assert http(sb, sb.keys.overprivileged).get(f"/orders/{order_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**MARKET, "symbol": "NOPE"}, "symbol"),
        ({**MARKET, "side": "hold"}, "side"),
        ({**MARKET, "type": "stop"}, "type"),
        ({**MARKET, "quantity": 0}, "quantity"),
        ({**MARKET, "quantity": "1"}, "quantity"),
        ({**MARKET, "quantity": True}, "quantity"),
        ({k: v for k, v in MARKET.items() if k != "quantity"}, "quantity"),
        ({**LIMIT, "price": -1}, "price"),
        ({k: v for k, v in LIMIT.items() if k != "price"}, "price"),
        ({**MARKET, "leverage": 100}, "leverage"),
    ],
)
def test_invalid_orders_are_400_naming_the_field(sb: Sandbox, trade, body, named) -> None:
    """Each invalid field gets a 400 envelope naming it, and no order is created."""
    r = trade.post("/orders", json=body)
    assert r.status_code == 400
    assert f"'{named}'" in r.json()["message"]
    assert sb.orders == {}


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_invalid_json_is_400(trade, content: bytes) -> None:
    """A body that is not a JSON object is a 400 envelope."""
    r = trade.post("/orders", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["message"]


def test_same_idempotency_key_and_body_returns_the_same_order(sb: Sandbox, trade) -> None:
    """A replay with the same Idempotency-Key and body gets 200 and the first order."""
    headers = {"Idempotency-Key": "k-1"}
    first = trade.post("/orders", json=MARKET, headers=headers)
    again = trade.post("/orders", json=dict(reversed(list(MARKET.items()))), headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert len(sb.orders) == 1


def test_same_idempotency_key_with_another_body_is_422(sb: Sandbox, trade) -> None:
    """Reusing an Idempotency-Key with a different body is refused with 422."""
    headers = {"Idempotency-Key": "k-2"}
    trade.post("/orders", json=MARKET, headers=headers)
    r = trade.post("/orders", json={**MARKET, "quantity": 9}, headers=headers)
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["message"]
    assert len(sb.orders) == 1


def test_without_idempotency_key_each_post_is_a_new_order(sb: Sandbox, trade) -> None:
    """Two POSTs without an Idempotency-Key make two orders."""
    trade.post("/orders", json=MARKET)
    trade.post("/orders", json=MARKET)
    assert len(sb.orders) == 2
