"""Kraken orders reconciled over real sockets: under injected execute-then-timeout and
execute-then-drop faults, with new orders invisible to lookups for a moment, every order
requested exists exactly once, and every call answers its real order."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import coinguard
from coinguard.providers import kraken
from coinguard.sandbox import Faults, Sandbox, SandboxConfig

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "1", "price": "10"}
#: A fast REST counter, the emulation set to the same: 200 orders make ~400 lookups.
FAST_MAX, FAST_DECAY = 400, 200.0
#: A roomy trading counter too: at the Starter tier's 60 and 1/s, 200 orders take 140 s.
ROOMY_MAX, ROOMY_DECAY = 1000, 500.0


def _provider(sb: Sandbox, **spec: Any) -> coinguard.Provider:
    """The Kraken profile aimed at the emulation, its counter raised as the emulation's is,
    and lookups polled faster than Kraken needs (the emulation's invisibility is short)."""
    base = kraken.PROFILE
    assert base.client_order_id is not None
    counter = coinguard.DecayingCounter(FAST_MAX, FAST_DECAY, costs=kraken.COSTS)
    trading = base.trade_counter
    assert trading is not None
    trading = dataclasses.replace(
        trading, counter=coinguard.DecayingCounter(ROOMY_MAX, ROOMY_DECAY)
    )
    return dataclasses.replace(
        base,
        trade_counter=trading,
        base_url=sb.origin,
        counter=counter,
        quota=coinguard.QuotaPolicy([coinguard.Window.per_second(FAST_MAX)]),
        client_order_id=dataclasses.replace(base.client_order_id, poll_interval=0.05, **spec),
    )


def _config(faults: Faults) -> SandboxConfig:
    return SandboxConfig(
        profile="kraken",
        faults=faults,
        weight_limit=FAST_MAX,
        counter_decay=FAST_DECAY,
        trading_limit=ROOMY_MAX,
        trading_decay=ROOMY_DECAY,
    )


def _trader(sb: Sandbox, **kwargs: Any) -> coinguard.Client:
    kwargs.setdefault("provider", _provider(sb))
    return coinguard.Client(
        **kwargs,
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=sb.keys.trade,
        trade_secret=sb.keys.trade_secret,
        allow_trading=True,
        quota_store=coinguard.MemoryStore(),
    )


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
    """20 % of AddOrders execute and then lose their answer, and new orders stay out of the
    lists a moment: 200 requested, 200 exist, no cl_ord_id twice, and each call answered its
    own order's txid."""
    with Sandbox(_config(faults)) as sb, _trader(sb, timeout=0.5) as client:
        returned = [client.post("/0/private/AddOrder", params=ORDER) for _ in range(200)]
        sb.set_faults(Faults())
        existing = client.post("/0/private/OpenOrders")["result"]["open"]
        entries = sb.ledger.entries()
    lost = [e for e in entries if e.outcome == f"{outcome}-after-order"]
    assert len(lost) >= 20  # the faults really fired
    assert any(e.outcome == "not-found" for e in entries)  # lookups polled past an invisible one
    assert not [e for e in entries if e.outcome in ("bad-nonce", "rate-limited", "duplicate")]
    assert len(existing) == 200
    assert len({o["cl_ord_id"] for o in existing.values()}) == 200
    txids = [r["result"]["txid"][0] for r in returned]
    assert sorted(txids) == sorted(existing)
    posts = [e for e in entries if e.route == "POST /0/private/AddOrder"]
    assert len(posts) == 200  # none sent twice


def test_a_closed_order_is_found_by_closed_orders() -> None:
    """A market order closes at once: its answer dropped, OpenOrders lists nothing and
    ClosedOrders finds it; one order, the call answers its txid."""
    market = {**ORDER, "ordertype": "market"}
    with Sandbox(_config(Faults(drop_after_order_rate=1.0))) as sb, _trader(sb) as client:
        placed = client.post("/0/private/AddOrder", params=market)
        sb.set_faults(Faults())
        closed = client.post("/0/private/ClosedOrders")["result"]["closed"]
        routes = [e.route for e in sb.ledger.entries()]
    assert list(closed) == placed["result"]["txid"]
    assert routes[:3] == [
        "POST /0/private/AddOrder",
        "POST /0/private/OpenOrders",
        "POST /0/private/ClosedOrders",
    ]


def test_emulation_refuses_a_cl_ord_id_open_twice_and_one_outside_the_formats() -> None:
    """The emulation as Kraken: a cl_ord_id already open is a duplicate, usable again once
    its order is cancelled; a free text longer than 18 is invalid (sent by a client whose
    profile lets anything through, to reach the server)."""
    with Sandbox(profile="kraken") as sb:
        # each client refuses its own reuse; separate clients show the exchange's check
        with _trader(sb) as client:
            first = client.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "dup-1"})
        with _trader(sb) as other, pytest.raises(coinguard.APIStatusError, match="Duplicate"):
            other.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "dup-1"})
        with _trader(sb) as third:
            third.post("/0/private/CancelOrder", params={"txid": first["result"]["txid"][0]})
            again = third.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "dup-1"})
            listed = third.post("/0/private/OpenOrders", params={"cl_ord_id": "dup-1"})
        loose = _provider(sb, pattern=".*")
        with _trader(sb, provider=loose) as careless, pytest.raises(coinguard.APIStatusError):
            careless.post("/0/private/AddOrder", params={**ORDER, "cl_ord_id": "x" * 19})
    assert list(listed["result"]["open"]) == again["result"]["txid"]


#: A trading counter small and fast enough that a burst fills it within the test.
TRADE_MAX, TRADE_DECAY = 40, 20.0


def _burst(sb: Sandbox, provider: coinguard.Provider, n: int) -> int:
    """``n`` orders on two pairs, each cancelled at once; how many calls were refused."""
    refused = 0
    with _trader(sb, provider=provider, max_retries=0) as client:
        for i in range(n):
            order = {**ORDER, "pair": ("XBTUSD", "ETHUSD")[i % 2]}
            try:
                placed = client.post("/0/private/AddOrder", params=order)
                txid = placed["result"]["txid"][0]
                client.post("/0/private/CancelOrder", params={"txid": txid})
            except coinguard.RateLimitError:
                refused += 1
    return refused


@pytest.mark.timeout(120)
def test_a_burst_of_orders_and_quick_cancels_draws_no_rate_limit_error() -> None:
    """60 orders on two pairs, each cancelled at once (+1, then +8 under 5 s), against an
    emulation whose per-pair trading counter refuses past its threshold: the client paces
    itself per pair and draws no EOrder:Rate limit exceeded; without the counter in its
    profile the same burst does draw them (the emulation really enforces it)."""
    config = dataclasses.replace(
        _config(Faults()), trading_limit=TRADE_MAX, trading_decay=TRADE_DECAY
    )
    spec = kraken.PROFILE.trade_counter
    assert spec is not None
    fast = dataclasses.replace(spec, counter=coinguard.DecayingCounter(TRADE_MAX, TRADE_DECAY))
    with Sandbox(config) as sb:
        unpaced = _burst(sb, dataclasses.replace(_provider(sb), trade_counter=None), 30)
    with Sandbox(config) as sb:
        paced = _burst(sb, dataclasses.replace(_provider(sb), trade_counter=fast), 60)
        entries = sb.ledger.entries()
    assert unpaced > 0
    assert paced == 0
    assert [e.outcome for e in entries if e.outcome != "ok"] == []
    assert len([e for e in entries if e.route == "POST /0/private/CancelOrder"]) == 60
