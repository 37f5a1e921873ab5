"""The Coinbase profile against the Coinbase emulation over loopback sockets: orders under
execute-then-timeout faults exist exactly once, throttling answered as 401 is waited out,
over-privileged keys are findings, and no key name, private key or JWT reaches any text."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import coinguard
from coinguard.providers import coinbase
from coinguard.sandbox import Faults, Sandbox, SandboxConfig
from test_leaks import Needle, _client_texts, _exception_texts, _foreign_links, _leaks

if TYPE_CHECKING:
    from conftest import CapturedLogs

ORDERS = "/api/v3/brokerage/orders"
ORDER = {
    "product_id": "BTC-USD",
    "side": "BUY",
    "order_configuration": {"limit_limit_gtc": {"base_size": "1", "limit_price": "10"}},
}


def _trader(sb: Sandbox, key: str = "trade", **kwargs: Any) -> coinguard.Client:
    keys = vars(sb.keys)
    kwargs.setdefault("quota_store", coinguard.MemoryStore())
    return coinguard.Client(
        provider=dataclasses.replace(coinbase.PROFILE, base_url=sb.origin),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=keys[key],
        trade_secret=keys[f"{key}_secret"],
        allow_trading=True,
        **kwargs,
    )


def _listed(client: coinguard.Client) -> list[dict[str, Any]]:
    orders = client.get(f"{ORDERS}/historical/batch")["orders"]
    assert isinstance(orders, list)
    return orders


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("faults", "outcome"),
    [
        (Faults(timeout_after_order_rate=0.2, stall_seconds=2.0, seed=13), "stalled"),
        (Faults(drop_after_order_rate=0.2, seed=13), "dropped"),
    ],
    ids=["execute-then-timeout", "execute-then-drop"],
)
def test_orders_under_20_percent_faults_exist_exactly_once(faults: Faults, outcome: str) -> None:
    """20 % of orders execute and then lose their answer: 100 requested, 100 exist, no
    client_order_id twice, and each call returned its own order (a re-send with the same
    client_order_id answers the order placed first)."""
    config = SandboxConfig(profile="coinbase", faults=faults, weight_limit=1000)
    with Sandbox(config) as sb, _trader(sb, timeout=0.5) as client:
        returned = [client.post(ORDERS, json=ORDER)["success_response"] for _ in range(100)]
        sb.set_faults(Faults())
        existing = _listed(client)
        entries = sb.ledger.entries()
    lost = [e for e in entries if e.outcome == f"{outcome}-after-order"]
    assert len(lost) >= 10  # the faults really fired
    posts = [e for e in entries if e.method == "POST"]
    assert len(posts) == 100 + len(lost)  # each lost answer cost exactly one re-send
    assert len(existing) == 100
    assert len({o["client_order_id"] for o in existing}) == 100
    by_id = {o["order_id"]: o for o in existing}
    assert len({o["order_id"] for o in returned}) == 100
    for order in returned:
        assert by_id[order["order_id"]]["client_order_id"] == order["client_order_id"]


def test_a_refused_order_is_an_error_and_is_not_sent_again() -> None:
    """HTTP 200 with success: false is EnvelopeError naming the reason; sent once."""
    with Sandbox(profile="coinbase") as sb, _trader(sb) as client:
        with pytest.raises(coinguard.EnvelopeError, match="INVALID_PRODUCT_ID"):
            client.post(ORDERS, json={**ORDER, "product_id": "NOPE-USD"})
        posts = [e for e in sb.ledger.entries() if e.method == "POST"]
    assert [e.outcome for e in posts] == ["rejected"]


def test_throttling_answered_as_401_is_waited_out_not_a_bad_key() -> None:
    """Another client spends the key's second, and the emulation answers the overflow with
    401 Unauthorized: this client waits for the window's reset and gets every answer; no
    AuthenticationError, and the key is never judged or reloaded."""
    faults = Faults(throttle_as_401_rate=1.0)
    config = SandboxConfig(profile="coinbase", faults=faults, weight_limit=5)
    loads: list[str] = []

    with Sandbox(config) as sb:

        def read_key() -> str:
            loads.append("load")
            return sb.keys.read

        with _trader(sb) as other:
            for _ in range(5):
                other.get("/api/v3/brokerage/accounts")
        reader = coinguard.Client(
            provider=dataclasses.replace(coinbase.PROFILE, base_url=sb.origin),
            read_key=read_key,
            read_secret=sb.keys.read_secret,
            quota_store=coinguard.MemoryStore(),
        )
        with reader:
            answers = [reader.get("/api/v3/brokerage/accounts") for _ in range(3)]
        outcomes = [e.outcome for e in sb.ledger.entries()]
    assert all(a["size"] == 2 for a in answers)
    assert "throttled-401" in outcomes
    assert loads == ["load"]


def test_over_privileged_keys_are_findings() -> None:
    """key_permissions of the emulation: a read key that can trade and transfer, and a trade
    key that can transfer, are findings; the provisioned read and trade keys are clean."""
    with Sandbox(profile="coinbase") as sb:
        with _trader(sb) as clean:
            reports = clean.verify_key(on_finding="ignore")
        assert [r.findings for r in reports] == [(), ()]
        reader = coinguard.Client(
            provider=dataclasses.replace(coinbase.PROFILE, base_url=sb.origin),
            read_key=sb.keys.overprivileged,
            read_secret=sb.keys.overprivileged_secret,
            quota_store=coinguard.MemoryStore(),
        )
        with reader:
            (read,) = reader.verify_key(on_finding="ignore")
            with pytest.raises(coinguard.OverPrivilegedKeyError):
                reader.verify_key()
        with _trader(sb, "overprivileged") as trader:
            _, trade = trader.verify_key(on_finding="ignore")
    assert set(read.findings) == {"the read key can trade", "the read key can withdraw"}
    assert set(trade.findings) == {"the trade key can withdraw"}


def test_key_names_private_keys_and_jwts_reach_no_text(
    log_capture: CapturedLogs, tmp_path: Path
) -> None:
    """Orders lost for good, refused orders and a revoked key, over real sockets: the key
    names, the PEM private keys and every JWT sent stay out of logs (ours, httpx's,
    httpcore's), errors (str, repr, args, chain, traceback locals, pickle), warnings, the
    client's reprs and the audit log."""
    tokens: list[str] = []

    def record(request: httpx.Request) -> None:
        tokens.append(request.headers.get("authorization", "").removeprefix("Bearer "))

    errors: list[Exception] = []
    audit = tmp_path / "audit.jsonl"
    faults = Faults(drop_after_order_rate=1.0)
    with (
        Sandbox(SandboxConfig(profile="coinbase", faults=faults)) as sb,
        httpx.Client(event_hooks={"request": [record]}) as http,
    ):
        client = _trader(sb, http_client=http, audit=str(audit), max_retries=0)
        with warnings.catch_warnings(record=True) as caught, client:
            warnings.simplefilter("always")
            attempts: list[Callable[[], Any]] = [
                lambda: client.post(ORDERS, json=ORDER),
                lambda: client.post(ORDERS, json={**ORDER, "side": "UP"}),
            ]
            sb.set_faults(Faults())
            client.verify_key(on_finding="ignore")
            sb.set_faults(faults)
            for attempt in attempts:
                try:
                    attempt()
                except coinguard.CoinguardError as exc:
                    errors.append(exc)
                sb.set_faults(Faults())
            sb.revoke(sb.keys.read)
            try:
                client.get("/api/v3/brokerage/accounts")
            except coinguard.CoinguardError as exc:
                errors.append(exc)
        keys = sb.keys
    assert [type(e).__name__ for e in errors] == [
        "OrderOutcomeUnknownError",
        "EnvelopeError",
        "AuthenticationError",
    ]
    assert len(tokens) >= 6
    assert keys.trade is not None
    assert keys.trade_secret is not None
    assert keys.read_secret is not None
    pem_lines = [
        line
        for secret in (keys.read_secret, keys.trade_secret)
        for line in secret.splitlines()
        if "-----" not in line
    ]
    needles = [Needle(keys.read), Needle(keys.trade), *map(Needle, pem_lines), *map(Needle, tokens)]
    texts = [
        ("logs", log_capture.text),
        ("audit", audit.read_text()),
        *_client_texts(client),
        *((f"warning {w.category.__name__}", str(w.message)) for w in caught),
    ]
    for exc in errors:
        texts += list(_exception_texts(exc))
        assert _foreign_links(exc) == []
    assert _leaks(needles, texts) == []
    assert any(r.name.startswith("httpcore") for r in log_capture.records)
