"""Injected faults: 5xx, latency, reset, captive portal, drop after order; reproducibility."""

from __future__ import annotations

import time

import httpx
import pytest

from coinguard.sandbox import Faults, ManualClock, Sandbox, SandboxConfig, Window

ORDER = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1}


@pytest.fixture
def sb(coinguard_sandbox_factory, clock: ManualClock) -> Sandbox:
    """A sandbox on a manual clock."""
    return coinguard_sandbox_factory(SandboxConfig(clock=clock))


def test_error_rate_answers_5xx_envelopes(sb: Sandbox, http) -> None:
    """With error_rate=1 every admitted request gets a 500/502/503 JSON envelope."""
    sb.set_faults(Faults(error_rate=1.0))
    client = http(sb, sb.keys.read)
    answers = [client.get("/tokens") for _ in range(10)]
    assert {r.status_code for r in answers} <= {500, 502, 503}
    assert all(r.json()["success"] is False for r in answers)
    assert sb.ledger.count(outcome="fault-5xx") == 10


def test_faults_spare_unauthenticated_and_limited_requests(
    coinguard_sandbox_factory, http, clock
) -> None:
    """Auth, scope and quota come before faults: 401, 403 and 429 are never faulted."""
    config = SandboxConfig(clock=clock, windows=(Window(1, 60.0),), faults=Faults(error_rate=1))
    sb = coinguard_sandbox_factory(config)
    assert http(sb).get("/tokens").status_code == 401
    assert http(sb, sb.keys.trade).get("/tokens").status_code == 403
    client = http(sb, sb.keys.read)
    assert client.get("/tokens").status_code >= 500
    assert client.get("/tokens").status_code == 429


def test_latency_delays_the_answer(sb: Sandbox, http) -> None:
    """latency adds that many seconds before the answer."""
    sb.set_faults(Faults(latency=0.05))
    began = time.perf_counter()
    assert http(sb, sb.keys.read).get("/tokens").status_code == 200
    assert time.perf_counter() - began >= 0.05


def test_arrival_jitter_stamps_requests_late(coinguard_sandbox_factory, http) -> None:
    """arrival_jitter waits before stamping: the ledger's time is that much after the send."""
    sb = coinguard_sandbox_factory(SandboxConfig(faults=Faults(arrival_jitter=(0.05, 0.06))))
    sent = time.time()
    assert http(sb, sb.keys.read).get("/tokens").status_code == 200
    (entry,) = sb.ledger.entries()
    assert entry.time - sent >= 0.05


def test_arrival_jitter_must_be_an_ordered_span() -> None:
    """A span whose low end is above its high end, or negative, is refused."""
    with pytest.raises(ValueError, match="arrival_jitter"):
        Faults(arrival_jitter=(0.1, 0.05))
    with pytest.raises(ValueError, match="arrival_jitter"):
        Faults(arrival_jitter=(-0.1, 0.05))


def test_reset_surfaces_as_a_transport_error_not_a_hang(sb: Sandbox, http) -> None:
    """reset_rate=1 aborts the connection after reading the request; it still counts."""
    sb.set_faults(Faults(reset_rate=1.0))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http(sb, sb.keys.read).get("/tokens")
    (entry,) = sb.ledger.entries()
    assert entry.outcome == "reset"
    assert entry.status is None
    assert entry.admitted


def test_html_rate_serves_a_captive_portal(sb: Sandbox, http) -> None:
    """html_rate=1 answers 200 text/html, which a client must not parse as data."""
    sb.set_faults(Faults(html_rate=1.0))
    r = http(sb, sb.keys.read).get("/tokens")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text


def test_drop_after_order_creates_exactly_one_order(sb: Sandbox, http) -> None:
    """The order exists but the answer never comes; a replay with the key finds it."""
    sb.set_faults(Faults(drop_after_order_rate=1.0))
    client = http(sb, sb.keys.trade)
    headers = {"Idempotency-Key": "once"}
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/orders", json=ORDER, headers=headers)
    assert len(sb.orders) == 1
    sb.set_faults(Faults())
    replay = client.post("/orders", json=ORDER, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["data"]["id"] == next(iter(sb.orders))
    assert len(sb.orders) == 1
    assert sb.ledger.count(outcome="dropped-after-order") == 1


def test_drop_after_order_spares_reads(sb: Sandbox, http) -> None:
    """drop_after_order_rate only affects order creation."""
    sb.set_faults(Faults(drop_after_order_rate=1.0))
    assert http(sb, sb.keys.read).get("/tokens").status_code == 200


def test_faults_are_reproducible_with_a_seed(coinguard_sandbox_factory, http, clock) -> None:
    """Two sandboxes with the same fault seed fault the same requests."""

    def statuses() -> list[int]:
        faults = Faults(error_rate=0.5, seed=3)
        sb = coinguard_sandbox_factory(SandboxConfig(clock=clock, faults=faults))
        client = http(sb, sb.keys.read)
        return [client.get("/tokens").status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert 200 in first
    assert any(s >= 500 for s in first)


def test_fault_rates_are_validated() -> None:
    """A rate outside [0, 1] or a negative latency is refused."""
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)
