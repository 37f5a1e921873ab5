"""Binance's SAPI limiters against the emulation over loopback sockets: each endpoint its own
IP- or UID-limited minute, reported in X-SAPI-USED-*-WEIGHT-1M, 429 (never 418) over it; a
client bursting past the limit waits instead, and one endpoint's use spends nothing of
another's or of REQUEST_WEIGHT."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import httpx
import pytest

import coinguard
from coinguard.providers import binance
from coinguard.sandbox import Sandbox, SandboxConfig

LIMIT = 20  # per SAPI endpoint per minute, in the emulation and in the client's profile


class SharedClock:
    """One clock for the emulation and the client; the client's sleep moves it forward."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def _provider(sb: Sandbox) -> coinguard.Provider:
    sapi = binance.sapi_quotas(ip_limit=LIMIT, uid_limit=LIMIT)
    return dataclasses.replace(
        binance.PROFILE, base_url=sb.origin, route_quotas=(*sapi, binance.RAW_REQUESTS)
    )


def _client(sb: Sandbox, **kwargs: Any) -> coinguard.Client:
    return coinguard.Client(
        provider=_provider(sb),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=sb.keys.trade,
        trade_secret=sb.keys.trade_secret,
        allow_trading=True,
        **kwargs,
    )


def test_raw_requests_over_a_sapi_limit_get_429_never_418() -> None:
    """The emulation: an endpoint's own minute, its header counting up, then 429 with a
    Retry-After to the minute's end, however many more are sent; other endpoints still 200."""
    with Sandbox(SandboxConfig(profile="binance", sapi_limit=3)) as sb, httpx.Client() as raw:
        url = sb.origin + "/sapi/v1/system/status"
        answers = [raw.get(url) for _ in range(8)]
        other = raw.get(sb.origin + "/api/v3/ping")
    assert [a.status_code for a in answers] == [200, 200, 200] + [429] * 5
    assert [a.headers["x-sapi-used-ip-weight-1m"] for a in answers[:3]] == ["1", "2", "3"]
    assert all(int(a.headers["retry-after"]) <= 60 for a in answers[3:])
    assert answers[-1].json()["code"] == -1003
    assert "x-sapi-used-ip-weight-1m" not in other.headers
    assert other.headers["x-mbx-used-weight-1m"] == "1"
    assert other.status_code == 200


def test_a_burst_past_a_sapi_limit_waits_and_gets_no_429() -> None:
    """Three minutes' worth of one endpoint's weight, asked at once: every call succeeds, the
    emulation answers no 429, and the client waited for the next minutes (on the shared clock)."""
    clock = SharedClock()
    config = SandboxConfig(profile="binance", sapi_limit=LIMIT, clock=clock)
    with Sandbox(config) as sb, _client(sb, clock=clock, sleep=clock.sleep, max_wait=600) as c:
        start = clock()
        for _ in range(3 * LIMIT):
            assert c.get("/sapi/v1/account/apiRestrictions")["enableReading"] is True
        waited = clock() - start
        outcomes = [e.outcome for e in sb.ledger.entries()]
    assert outcomes.count("rate-limited") == 0
    assert outcomes.count("ok") == 3 * LIMIT + 1  # and the clock sync
    assert waited >= 2 * 60 - 1


def test_one_sapi_endpoint_spends_nothing_of_another_or_of_request_weight() -> None:
    """With apiRestrictions' minute spent, the next one is refused before any byte is sent;
    capital/config/getall (weight 10), the UID-limited margin order (weight 6) and the /api
    routes still go, and the emulation's headers agree with the client's limiters."""
    config = SandboxConfig(profile="binance", sapi_limit=LIMIT)
    with Sandbox(config) as sb, _client(sb, on_quota="raise") as c:
        for _ in range(LIMIT):
            c.get("/sapi/v1/account/apiRestrictions")
        seen = len(sb.ledger.entries())
        with pytest.raises(coinguard.QuotaExceededError, match=f"SAPI IP {LIMIT}/min"):
            c.get("/sapi/v1/account/apiRestrictions")
        assert len(sb.ledger.entries()) == seen
        coins = c.get("/sapi/v1/capital/config/getall", raw=True)
        order = c.post(
            "/sapi/v1/margin/order",
            params={"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
            raw=True,
        )
        weight = c.quota
        ping = c.get("/api/v3/ping", raw=True)
        restrictions = c.route_quotas("GET", "/sapi/v1/account/apiRestrictions")
        margin = c.route_quotas("POST", "/sapi/v1/margin/order")
    assert coins.headers["x-sapi-used-ip-weight-1m"] == "10"
    assert order.headers["x-sapi-used-uid-weight-1m"] == "6"
    assert weight is not None
    assert [w.used for w in weight.windows] == [1]  # the clock sync's /api/v3/time only
    assert ping.headers["x-mbx-used-weight-1m"] == "2"
    assert [s.windows[0].used for s in restrictions] == [LIMIT]
    assert [s.windows[0].used for s in margin] == [6]
    assert [e.outcome for e in sb.ledger.entries()].count("rate-limited") == 0
