"""The Binance profile against the Binance emulation over loopback sockets: signed reads and
trades (HMAC and Ed25519), clock skew recovered, weight headers, 429 then 418, key checks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import coinguard
from coinguard.providers import binance
from coinguard.sandbox import Sandbox, SandboxConfig

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "10"}


@pytest.fixture
def bn() -> Iterator[Sandbox]:
    with Sandbox(profile="binance") as sandbox:
        yield sandbox


def _provider(sb: Sandbox) -> coinguard.Provider:
    import dataclasses

    return dataclasses.replace(binance.PROFILE, base_url=sb.origin)


def _trader(sb: Sandbox, key: str = "trade", **kwargs: Any) -> coinguard.Client:
    keys = vars(sb.keys)
    return coinguard.Client(
        provider=_provider(sb),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=keys[key],
        trade_secret=keys[f"{key}_secret"],
        allow_trading=True,
        **kwargs,
    )


def _reader(sb: Sandbox, **kwargs: Any) -> coinguard.Client:
    return coinguard.Client(
        provider=_provider(sb),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        **kwargs,
    )


def test_signed_read_and_trade_with_hmac(bn: Sandbox) -> None:
    """A signed USER_DATA read and a TRADE order pass the emulation's signature checks."""
    with _trader(bn) as client:
        assert "balances" in client.get("/api/v3/account")
        order = client.post("/api/v3/order", params=ORDER)
        assert order["status"] == "NEW"
        found = client.get(
            "/api/v3/order", params={"symbol": "BTCUSDT", "orderId": order["orderId"]}
        )
        assert found["clientOrderId"] == order["clientOrderId"]
    assert not [e for e in bn.ledger.entries() if e.outcome == "bad-signature"]


def test_ed25519_trade_key_signs_orders(bn: Sandbox) -> None:
    """An Ed25519 key pair (the secret a PEM private key) places an order the server verifies."""
    with _trader(bn, "ed25519") as client:
        order = client.post("/api/v3/order", params=ORDER)
    assert order["status"] == "NEW"


def test_read_only_client_refused_before_any_byte(bn: Sandbox) -> None:
    """No trade pair: an order raises ScopeError and the emulation sees nothing."""
    with _reader(bn) as client, pytest.raises(coinguard.ScopeError):
        client.post("/api/v3/order", params=ORDER)
    assert bn.ledger.entries() == []


def test_clock_skew_is_recovered_by_resync() -> None:
    """The server's clock jumps 30 s ahead after the first sync: -1021, re-sync, success."""
    skew = [0.0]
    config = SandboxConfig(profile="binance", clock=lambda: time.time() + skew[0])
    with Sandbox(config) as sb, _reader(sb) as client:
        client.get("/api/v3/account")
        skew[0] = 30.0
        assert "balances" in client.get("/api/v3/account")
        outcomes = [e.outcome for e in sb.ledger.entries()]
    assert outcomes.count("bad-timestamp") == 1
    assert outcomes[-1] == "ok"


def test_wrong_secret_is_an_authentication_error(bn: Sandbox) -> None:
    """A secret that does not match the key: -1022, AuthenticationError, no secret in text."""
    wrong = "x" * 64
    with (
        coinguard.Client(provider=_provider(bn), read_key=bn.keys.read, read_secret=wrong) as c,
        pytest.raises(coinguard.AuthenticationError) as info,
    ):
        c.get("/api/v3/account")
    assert "-1022" in str(info.value)
    assert wrong not in str(info.value)


def test_weight_header_is_synced(bn: Sandbox) -> None:
    """X-MBX-USED-WEIGHT-1M from the emulation is what the client's quota shows as used."""
    with _reader(bn) as client:
        client.get("/api/v3/exchangeInfo")
        client.get("/api/v3/exchangeInfo")
        status = client.quota
    assert status is not None
    assert status.windows[0].used >= 40


def test_429_then_418_and_the_client_respects_both() -> None:
    """Raw requests over the limit get 429 then 418; a client afterwards sends nothing."""
    with Sandbox(SandboxConfig(profile="binance", weight_limit=50)) as sb:
        statuses = []
        with httpx.Client() as raw:
            for _ in range(6):
                statuses.append(raw.get(sb.origin + "/api/v3/exchangeInfo").status_code)
        assert statuses[:2] == [200, 200]
        assert 429 in statuses
        assert statuses[-1] == 418
        seen = len(sb.ledger.entries())
        with _reader(sb, on_quota="raise") as client:
            with pytest.raises(coinguard.RateLimitError) as info:
                client.get("/api/v3/ping")
            assert info.value.retry_after is not None
            assert info.value.retry_after > 60
            with pytest.raises(coinguard.QuotaExceededError):
                client.get("/api/v3/ping")
        assert len(sb.ledger.entries()) == seen + 1  # only the request that learned of the ban


def test_duplicate_client_order_id_is_rejected(bn: Sandbox) -> None:
    """Two open orders with one newClientOrderId, from two clients (one client refuses an id
    it already used): the second is -2010 'Duplicate order sent.'"""
    params = {**ORDER, "newClientOrderId": "cg-dup-1"}
    with _trader(bn) as first, _trader(bn) as second:
        first.post("/api/v3/order", params=params)
        with pytest.raises(coinguard.APIStatusError, match="Duplicate order sent"):
            second.post("/api/v3/order", params=params)


@pytest.mark.parametrize(
    ("key", "finding"),
    [
        ("read", None),
        ("trade", None),
        ("overprivileged", "withdraw"),
        ("unrestricted", "not restricted"),
    ],
)
def test_api_restrictions_of_the_provisioned_keys(
    bn: Sandbox, key: str, finding: str | None
) -> None:
    """verify_key() reads apiRestrictions: each provisioned trade key gets its findings."""
    with _trader(bn, key if key != "read" else "trade") as client:
        reports = client.verify_key(on_finding="ignore")
    trade = reports[-1]
    assert reports[0].ok
    if finding is None:
        assert trade.ok
    else:
        assert any(finding in f for f in trade.findings)


def _signed(sb: Sandbox, path: str, key: str, secret: str, **params: str) -> httpx.Response:
    """A raw signed GET, as any Binance client would build it."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    query += f"{'&' if query else ''}timestamp={int(time.time() * 1000)}"
    signature = coinguard.binance_signature(secret, query)
    url = f"{sb.origin}{path}?{query}&signature={signature}"
    return httpx.get(url, headers={"X-MBX-APIKEY": key})


def test_new_order_is_invisible_for_a_moment() -> None:
    """Faults(invisible_seconds=...): a lookup right after placement answers -2013."""
    from coinguard.sandbox import Faults

    config = SandboxConfig(profile="binance", faults=Faults(invisible_seconds=30.0))
    with Sandbox(config) as sb, _trader(sb) as client:
        order = client.post("/api/v3/order", params=ORDER)
        answer = _signed(
            sb, "/api/v3/order", sb.keys.read, sb.keys.read_secret or "",
            symbol="BTCUSDT", origClientOrderId=order["clientOrderId"],
        )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["code"] == -2013


def test_recv_window_above_60000_is_refused(bn: Sandbox) -> None:
    """A recvWindow over Binance's maximum answers -1131."""
    answer = _signed(
        bn, "/api/v3/account", bn.keys.read, bn.keys.read_secret or "", recvWindow="60001"
    )
    assert answer.json()["code"] == -1131


def test_read_key_cannot_trade_on_the_emulation(bn: Sandbox) -> None:
    """The read key signing an order itself (as a careless client might) gets -2015."""
    query = (
        f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timestamp={int(time.time() * 1000)}"
    )
    signature = coinguard.binance_signature(bn.keys.read_secret or "", query)
    answer = httpx.post(
        f"{bn.origin}/api/v3/order?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": bn.keys.read},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == -2015


class _SharedClock:
    """One clock for the emulation and the client, still unless the client sleeps: every
    call here falls in one clock-aligned minute."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_placed_orders_weigh_nothing_refused_ones_pay() -> None:
    """Placed orders and a cancel weigh 0 on REQUEST_WEIGHT, a refused order its weight: the
    client's count after them is the emulation's X-MBX-USED-WEIGHT-1M, exactly."""
    clock = _SharedClock()
    config = SandboxConfig(profile="binance", clock=clock)
    with Sandbox(config) as sb, _trader(sb, clock=clock, sleep=clock.sleep) as client:
        placed = [client.post("/api/v3/order", params=ORDER) for _ in range(3)]
        client.delete(
            "/api/v3/order", params={"symbol": "BTCUSDT", "orderId": placed[0]["orderId"]}
        )
        with pytest.raises(coinguard.APIStatusError):
            client.post("/api/v3/order", params={**ORDER, "side": "HOLD"})
        ping = client.get("/api/v3/ping", raw=True)
        status = client.quota
    assert status is not None
    # the clock sync (1), the refused order (1) and the ping (1)
    assert int(ping.headers["x-mbx-used-weight-1m"]) == 3
    assert status.windows[0].used == 3


def test_a_pair_rotated_at_its_source_is_reloaded_whole(bn: Sandbox) -> None:
    """The client holds a pair the emulation does not know (-2015); its source now gives the
    provisioned pair: key and secret are both reloaded, and the signed read succeeds."""
    current = {"key": "k" * 64, "secret": "s" * 64}
    with coinguard.Client(
        provider=_provider(bn),
        read_key=lambda: current["key"],
        read_secret=lambda: current["secret"],
    ) as client:
        client.get("/api/v3/time")
        current.update(key=bn.keys.read, secret=bn.keys.read_secret)
        assert "balances" in client.get("/api/v3/account")
    outcomes = [e.outcome for e in bn.ledger.entries() if e.route == "GET /api/v3/account"]
    assert outcomes == ["unauthorized", "ok"]


def test_raw_requests_are_emulated_and_the_client_stays_under_them() -> None:
    """The emulation answers 429 past RAW_REQUESTS (here 3 per 5 minutes) whatever the
    weight; a client whose RAW_REQUESTS says the same waits for the next 5 minutes instead,
    and gets no 429."""
    with Sandbox(SandboxConfig(profile="binance", raw_limit=3)) as sb, httpx.Client() as raw:
        statuses = [raw.get(sb.origin + "/api/v3/ping").status_code for _ in range(5)]
        sapi = raw.get(sb.origin + "/sapi/v1/system/status").status_code
    assert statuses == [200, 200, 200, 429, 429]
    assert sapi == 200  # SAPI calls are not RAW_REQUESTS
    clock = _SharedClock()
    clock.now = 1_800_000_290.0  # 10 s before a 5-minute boundary
    small = dataclasses.replace(
        binance.RAW_REQUESTS,
        quota=coinguard.QuotaPolicy([coinguard.Window(3, 300.0, calendar=True)]),
    )
    config = SandboxConfig(profile="binance", raw_limit=3, clock=clock)
    with Sandbox(config) as sb:
        provider = dataclasses.replace(_provider(sb), route_quotas=(*binance.sapi_quotas(), small))
        with coinguard.Client(
            provider=provider, read_key=sb.keys.read, read_secret=sb.keys.read_secret,
            clock=clock, sleep=clock.sleep,
        ) as client:  # fmt: skip
            for _ in range(5):
                client.get("/api/v3/ping")
        outcomes = [e.outcome for e in sb.ledger.entries()]
    assert outcomes == ["ok"] * 5
    assert clock.now >= 1_800_000_300.0  # the 5-minute boundary waited for
