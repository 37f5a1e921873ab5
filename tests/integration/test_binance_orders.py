"""Orders reconciled over real sockets: under injected execute-then-drop faults and orders
that are invisible for a moment, every order requested exists exactly once, and every call
returns the real order."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import coinguard
from coinguard import ClientOrderId, QuotaPolicy, Window
from coinguard.providers import binance
from coinguard.sandbox import Faults, Sandbox, SandboxConfig

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "10"}


def _provider(sb: Sandbox, **spec: Any) -> coinguard.Provider:
    """The Binance profile aimed at the emulation; its ORDERS limit raised as the emulation's
    is, and lookups polled faster than Binance needs (the emulation's invisibility is short)."""
    base = binance.PROFILE
    assert base.client_order_id is not None
    return dataclasses.replace(
        base,
        base_url=sb.origin,
        order_quota=QuotaPolicy([Window(10_000, 10.0)]),
        client_order_id=dataclasses.replace(base.client_order_id, poll_interval=0.05, **spec),
    )


def _trader(sb: Sandbox, provider: coinguard.Provider, **kwargs: Any) -> coinguard.Client:
    return coinguard.Client(
        **kwargs,
        provider=provider,
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=sb.keys.trade,
        trade_secret=sb.keys.trade_secret,
        allow_trading=True,
    )


def _all_orders(client: coinguard.Client) -> list[dict[str, Any]]:
    orders = client.get("/api/v3/allOrders", params={"symbol": "BTCUSDT"})
    assert isinstance(orders, list)
    return orders


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("faults", "outcome"),
    [
        # invisible a little longer than the client's 0.5 s read timeout
        (Faults(timeout_after_order_rate=0.2, invisible_seconds=0.55, seed=13), "stalled"),
        (Faults(drop_after_order_rate=0.2, invisible_seconds=0.06, seed=13), "dropped"),
    ],
    ids=["execute-then-timeout", "execute-then-drop"],
)
def test_200_orders_under_20_percent_faults_give_exactly_200(faults: Faults, outcome: str) -> None:
    """20 % of orders execute and then lose their answer (a read timeout, or a dropped
    connection), and new orders stay invisible to lookups a moment: 200 requested, 200 exist,
    no client id twice, and each call returned its own real order."""
    config = SandboxConfig(profile="binance", faults=faults, orders_per_10s=10_000)
    with Sandbox(config) as sb, _trader(sb, _provider(sb), timeout=0.5) as client:
        returned = [client.post("/api/v3/order", params=ORDER) for _ in range(200)]
        sb.set_faults(Faults())
        existing = _all_orders(client)
        entries = sb.ledger.entries()
    lost = [e for e in entries if e.outcome == f"{outcome}-after-order"]
    assert len(lost) >= 20  # the faults really fired
    invisible = [e for e in entries if e.method == "GET" and e.outcome == "not-found"]
    assert invisible  # and some lookups had to poll past an invisible order
    assert len(existing) == 200
    assert len({o["clientOrderId"] for o in existing}) == 200
    by_id = {o["orderId"]: o for o in existing}
    assert len({o["orderId"] for o in returned}) == 200
    for order in returned:
        assert by_id[order["orderId"]]["clientOrderId"] == order["clientOrderId"]


def test_order_lost_before_it_executed_is_sent_again_with_the_same_id() -> None:
    """For an exchange that refuses a used id for good (``max_sends`` above 1; the emulation
    does for these open LIMIT orders): 503 faults that did not execute, lookups find nothing,
    the order is re-sent with its id, and exactly one order exists per call."""
    faults = Faults(error_rate=0.3, seed=3)
    config = SandboxConfig(profile="binance", faults=faults, orders_per_10s=10_000)
    with Sandbox(config) as sb, _trader(sb, _provider(sb, polls=2, max_sends=8)) as client:
        returned = [client.post("/api/v3/order", params=ORDER) for _ in range(30)]
        existing = _all_orders(client)
    assert len(existing) == 30
    assert {o["clientOrderId"] for o in existing} == {o["clientOrderId"] for o in returned}


def test_by_default_an_order_not_found_is_not_sent_again() -> None:
    """The Binance profile as shipped: a 503 that did not execute, lookups find nothing, and
    the call ends OrderOutcomeUnknownError saying it was not sent again; one POST only."""
    faults = Faults(error_rate=1.0)
    config = SandboxConfig(profile="binance", faults=faults, orders_per_10s=10_000)
    with Sandbox(config) as sb, _trader(sb, _provider(sb)) as client:
        sb.set_faults(Faults())
        client.get("/api/v3/account")
        sb.set_faults(faults)
        with pytest.raises(coinguard.OrderOutcomeUnknownError, match="not sent again"):
            client.post("/api/v3/order", params=ORDER)
        posts = [e for e in sb.ledger.entries() if e.method == "POST"]
    assert len(posts) == 1


def test_caller_client_id_is_kept_and_a_bad_one_refused() -> None:
    """A newClientOrderId the caller gives is the order's; one outside the pattern is refused
    before anything is sent."""
    with Sandbox(profile="binance") as sb, _trader(sb, _provider(sb)) as client:
        order = client.post("/api/v3/order", params={**ORDER, "newClientOrderId": "my-id_1"})
        assert order["clientOrderId"] == "my-id_1"
        seen = len(sb.ledger.entries())
        with pytest.raises(coinguard.ConfigurationError, match="newClientOrderId"):
            client.post("/api/v3/order", params={**ORDER, "newClientOrderId": "bad id!"})
        assert len(sb.ledger.entries()) == seen


def test_unknown_when_the_lookup_itself_fails() -> None:
    """The order's answer lost and every lookup refused (the read key revoked): raises
    OrderOutcomeUnknownError naming the client id and what was tried; nothing re-sent."""
    faults = Faults(drop_after_order_rate=1.0)
    config = SandboxConfig(profile="binance", faults=faults)
    with Sandbox(config) as sb, _trader(sb, _provider(sb)) as client:
        client.get("/api/v3/account")  # the clock is synced, the read key loaded
        sb.revoke(sb.keys.read)
        with pytest.raises(coinguard.OrderOutcomeUnknownError) as info:
            client.post("/api/v3/order", params=ORDER)
        posts = [e for e in sb.ledger.entries() if e.method == "POST"]
    error = info.value
    assert error.client_order_id is not None
    assert error.client_order_id in str(error)
    assert any("lookup 1" in step for step in error.tried)
    assert len(posts) == 1


def test_client_order_id_spec_is_declarable_for_any_provider() -> None:
    """ClientOrderId validates its routes and counts; a provider without one gets no id."""
    with pytest.raises(coinguard.ConfigurationError):
        ClientOrderId(routes="POST /orders", lookup="GET /orders")
    with pytest.raises(coinguard.ConfigurationError):
        ClientOrderId(routes=["POST /orders"], lookup="GET /orders", polls=0)
    spec = ClientOrderId(routes=["POST /orders"], lookup="GET /orders/lookup")
    assert spec.applies("POST", "/orders")
    assert spec.lookup_route == ("GET", "/orders/lookup")
