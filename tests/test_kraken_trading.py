"""Kraken's trading counter per pair, on a fake clock: AddOrder adds 1 to its pair's counter,
CancelOrder a penalty by the order's age, each pair has its own counter in the quota store,
and EOrder:Rate limit exceeded counts that pair's counter full."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import coinguard
from coinguard.providers import kraken
from test_kraken import TRADE_KEY, TRADE_SECRET, FakeClock, Kraken, _client

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "1", "price": "10"}


class Spy(coinguard.MemoryStore):
    """A memory store that notes every counter admission: (counter id, cost)."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[tuple[str, int]] = []
        self.filled: list[str] = []

    def counter_take(self, key_id: str, *args: Any, **kwargs: Any) -> tuple[float, float]:
        self.taken.append((key_id, args[1]))
        return super().counter_take(key_id, *args, **kwargs)

    def counter_fill(self, key_id: str, *args: Any, **kwargs: Any) -> None:
        self.filled.append(key_id)
        super().counter_fill(key_id, *args, **kwargs)

    def pairs(self) -> list[tuple[str, int]]:
        return [(k.rsplit(":", 1)[1], c) for k, c in self.taken if ":pair:" in k]


class Exchange(Kraken):
    """The mock Kraken giving each AddOrder its own txid."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = super().__call__(request)
        if request.url.path.endswith("/AddOrder") and answer.json().get("result") is not None:
            self.count += 1
            result = {"txid": [f"O{self.count:05d}-AAAAA-BBBBBB"], "descr": {"order": "x"}}
            return httpx.Response(200, json={"error": [], "result": result})
        return answer


def _trader(exchange: Kraken, clock: FakeClock, store: Spy) -> coinguard.Client:
    return _client(
        exchange,
        clock,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        quota_store=store,
    )


def test_the_profile_declares_krakens_trading_counter() -> None:
    """Starter: 60 at -1/s per pair; AddOrder +1; CancelOrder +8/+6/+5/+4/+2/+1 by age."""
    spec = kraken.PROFILE.trade_counter
    assert spec is not None
    assert (spec.counter.limit, spec.counter.rate) == (60, 1.0)
    ages = [0.0, 4.9, 5.0, 9.9, 10.0, 14.9, 15.0, 44.9, 45.0, 89.9, 90.0, 299.9, 300.0]
    assert [spec.penalty(a) for a in ages] == [8, 8, 6, 6, 5, 5, 4, 4, 2, 2, 1, 1, 0]
    assert spec.kind("POST", "/0/private/AddOrder") == "add"
    assert spec.kind("POST", "/0/private/CancelOrder") == "cancel"
    assert spec.kind("POST", "/0/private/Balance") is None
    pro = kraken.profile(tier="pro").trade_counter
    assert pro is not None
    assert (pro.counter.limit, pro.counter.rate) == (180, 3.75)


def test_orders_and_cancels_are_counted_per_pair_by_age() -> None:
    """An order adds 1 to its pair; a cancel 1 s after adds 8, one 20 s after adds 4, one
    400 s after adds nothing; another pair has its own counter."""
    clock, exchange, store = FakeClock(), Exchange(), Spy()
    with _trader(exchange, clock, store) as client:
        txids = []
        for pair in ("XBTUSD", "XBTUSD", "XBTUSD", "ETHUSD"):
            placed = client.post("/0/private/AddOrder", params={**ORDER, "pair": pair})
            txids.append(placed["result"]["txid"][0])
        clock.now += 1
        client.post("/0/private/CancelOrder", params={"txid": txids[0]})
        clock.now += 19
        client.post("/0/private/CancelOrder", params={"txid": txids[1]})
        clock.now += 400
        client.post("/0/private/CancelOrder", params={"txid": txids[2]})
    assert store.pairs() == [
        ("XBTUSD", 1),
        ("XBTUSD", 1),
        ("XBTUSD", 1),
        ("ETHUSD", 1),
        ("XBTUSD", 8),
        ("XBTUSD", 4),
    ]


def test_a_cancel_by_cl_ord_id_is_priced_too_and_an_unknown_order_at_most() -> None:
    """A cancel naming the order's cl_ord_id is priced by its age; a cancel of an order this
    client never placed costs the largest penalty on the pair it names, and nothing when it
    names none."""
    clock, exchange, store = FakeClock(), Exchange(), Spy()
    with _trader(exchange, clock, store) as client:
        client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "tagged-1"})
        clock.now += 12
        client.post("/0/private/CancelOrder", params={"cl_ord_id": "tagged-1"})
        client.post("/0/private/CancelOrder", params={"txid": "OTHER-1", "pair": "ETHUSD"})
        client.post("/0/private/CancelOrder", params={"txid": "OTHER-2"})
    assert store.pairs() == [("XBTUSD", 1), ("XBTUSD", 5), ("ETHUSD", 8)]


def test_a_full_pair_waits_and_another_pair_does_not() -> None:
    """59 orders fill XBTUSD's counter (60 kept 1 s x 1/s below): the 60th waits a second on
    the fake clock; an ETHUSD order right after waits for nothing."""
    clock, exchange, store = FakeClock(), Exchange(), Spy()
    start = clock.now
    with _trader(exchange, clock, store) as client:
        for _ in range(59):
            client.post("/0/private/AddOrder", params=ORDER)
        assert clock.now == start
        client.post("/0/private/AddOrder", params=ORDER)
        waited = clock.now - start
        client.post("/0/private/AddOrder", params={**ORDER, "pair": "ETHUSD"})
        assert clock.now - start == waited
    assert waited == pytest.approx(1.0)


def test_order_rate_limit_exceeded_fills_that_pairs_counter() -> None:
    """EOrder:Rate limit exceeded on an XBTUSD order: XBTUSD's counter is counted full for
    every client (not the REST counter); the error reaches the caller as a rate limit."""
    clock, exchange, store = FakeClock(), Exchange(), Spy()
    exchange.answers["/0/private/AddOrder"] = [
        httpx.Response(200, json={"error": ["EOrder:Rate limit exceeded"]})
    ]
    with (
        _client(
            exchange,
            clock,
            trade_key=TRADE_KEY,
            trade_secret=TRADE_SECRET,
            allow_trading=True,
            quota_store=store,
            max_retries=0,
        ) as client,
        pytest.raises(coinguard.RateLimitError),
    ):
        client.post("/0/private/AddOrder", params=ORDER)
    assert [k.rsplit(":", 1)[1] for k in store.filled] == ["XBTUSD"]
    assert ":pair:" in store.filled[0]
