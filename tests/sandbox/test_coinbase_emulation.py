"""The Coinbase Advanced Trade emulation, driven with JWTs this test signs itself: claims
checked, rate headers and throttling (429, or 401), orders failing with HTTP 200, client
order ids de-duplicated, key permissions, execute-then-timeout faults, bare installs."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from coinguard.sandbox import Faults, ManualClock, Sandbox, SandboxConfig

NOW = 1_700_000_000.0
ORDERS = "/api/v3/brokerage/orders"
PERMISSIONS = "/api/v3/brokerage/key_permissions"
LIMIT = {"limit_limit_gtc": {"base_size": "1", "limit_price": "10"}}


@pytest.fixture
def cb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(profile="coinbase", clock=ManualClock(NOW))) as sandbox:
        yield sandbox


def token(
    sb: Sandbox, name: str, method: str, path: str, *, secret: str | None = None, **change: Any
) -> str:
    """A CDP JWT as Coinbase documents it; ``change`` overrides claims (None drops one)."""
    keys = vars(sb.keys)
    key_name = keys[name]
    claims: dict[str, Any] = {
        "sub": key_name,
        "iss": "cdp",
        "nbf": int(NOW),
        "exp": int(NOW) + 120,
        "uri": f"{method} 127.0.0.1{path}",
    }
    nonce = change.pop("nonce", secrets.token_hex())
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    signing = secret or keys[f"{name}_secret"]
    algorithm = "ES256" if signing.startswith("-----") else "EdDSA"
    if algorithm == "EdDSA":
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signing = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing)[:32])  # type: ignore[assignment]
    headers = {"kid": key_name, "nonce": nonce}
    return jwt.encode(claims, signing, algorithm=algorithm, headers=headers)


def call(
    sb: Sandbox,
    name: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    bearer: str | None = None,
    timeout: float = 5.0,
) -> httpx.Response:
    bearer = bearer or token(sb, name, method, path)
    return httpx.request(
        method,
        sb.origin + path,
        json=json,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=timeout,
    )


def order(client_order_id: str = "", **change: Any) -> dict[str, Any]:
    body = {
        "client_order_id": client_order_id,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": LIMIT,
    }
    return {**body, **change}


def test_key_permissions_of_the_three_keys(cb: Sandbox) -> None:
    """read views, trade views and trades, overprivileged may also transfer; ES256 and EdDSA
    tokens both verify."""
    seen = {
        name: call(cb, name, "GET", PERMISSIONS).json()
        for name in ("read", "trade", "overprivileged", "ed25519")
    }
    flags = {n: (b["can_view"], b["can_trade"], b["can_transfer"]) for n, b in seen.items()}
    assert flags == {
        "read": (True, False, False),
        "trade": (True, True, False),
        "overprivileged": (True, True, True),
        "ed25519": (True, True, False),
    }


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "coinbase-cloud"},
        {"sub": "organizations/x/apiKeys/y"},
        {"uri": f"GET 127.0.0.1{PERMISSIONS}?limit=5"},
        {"uri": "GET 127.0.0.1/api/v3/brokerage/accounts"},
        {"uri": f"POST 127.0.0.1{PERMISSIONS}"},
        {"nbf": int(NOW) + 30},
        {"exp": int(NOW) - 1},
        {"nbf": int(NOW) - 10, "exp": int(NOW) + 200},
        {"uri": None},
    ],
    ids=["iss", "sub", "uri-query", "uri-path", "uri-method", "nbf", "exp", "lifetime", "no-uri"],
)
def test_a_wrong_claim_is_401(cb: Sandbox, change: dict[str, Any]) -> None:
    """Each claim is checked: one wrong gives 401 Unauthorized (plain text), nothing else."""
    bad = token(cb, "read", "GET", PERMISSIONS, **change)
    answer = call(cb, "read", "GET", PERMISSIONS, bearer=bad)
    assert (answer.status_code, answer.text) == (401, "Unauthorized\n")
    assert cb.ledger.entries()[-1].outcome == "bad-claims"


def test_forged_replayed_and_missing_tokens_are_401(cb: Sandbox) -> None:
    """Signed by another key's private half, a nonce used twice, no token: all 401."""
    forged = token(cb, "read", "GET", PERMISSIONS, secret=cb.keys.trade_secret)
    assert call(cb, "read", "GET", PERMISSIONS, bearer=forged).status_code == 401
    once = token(cb, "read", "GET", PERMISSIONS, nonce="n" * 64)
    assert call(cb, "read", "GET", PERMISSIONS, bearer=once).status_code == 200
    again = token(cb, "read", "GET", PERMISSIONS, nonce="n" * 64)
    assert call(cb, "read", "GET", PERMISSIONS, bearer=again).status_code == 401
    assert httpx.get(cb.origin + PERMISSIONS).status_code == 401
    outcomes = [e.outcome for e in cb.ledger.entries()]
    assert outcomes == ["bad-signature", "ok", "bad-claims", "unauthorized"]


def test_rate_headers_then_429_beyond_the_limit() -> None:
    """x-ratelimit-limit/-remaining/-reset on each answer; the call over the limit is 429."""
    config = SandboxConfig(profile="coinbase", clock=ManualClock(NOW), weight_limit=3)
    with Sandbox(config) as sb:
        answers = [call(sb, "read", "GET", PERMISSIONS) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert {a.headers["x-ratelimit-reset"] for a in answers} == {str(int(NOW) + 1)}
    assert answers[3].json()["error"] == "RATE_LIMIT_EXCEEDED"


def test_throttling_can_arrive_as_401_with_nothing_remaining() -> None:
    """With throttle_as_401_rate=1 the call over the limit is 401 Unauthorized, as Coinbase
    has answered; its rate headers say nothing remains, which tells it from a bad key."""
    faults = Faults(throttle_as_401_rate=1.0)
    clock = ManualClock(NOW)
    config = SandboxConfig(profile="coinbase", clock=clock, weight_limit=1, faults=faults)
    with Sandbox(config) as sb:
        first = call(sb, "read", "GET", PERMISSIONS)
        throttled = call(sb, "read", "GET", PERMISSIONS)
        forged = token(sb, "read", "GET", PERMISSIONS, secret=sb.keys.trade_secret)
        bad_key = call(sb, "read", "GET", PERMISSIONS, bearer=forged)
    assert first.status_code == 200
    assert (throttled.status_code, throttled.text) == (401, "Unauthorized\n")
    assert throttled.headers["x-ratelimit-remaining"] == "0"
    assert bad_key.status_code == 401
    assert "x-ratelimit-remaining" not in bad_key.headers


def test_failed_orders_are_http_200_with_an_error_response(cb: Sandbox) -> None:
    """A refused order: HTTP 200, success false, error_response naming the reason."""
    reasons = {}
    for change in ({"side": "UP"}, {"product_id": "NOPE-USD"}, {"order_configuration": {}}):
        answer = call(cb, "trade", "POST", ORDERS, json=order(**change))
        assert answer.status_code == 200
        assert answer.json()["success"] is False
        reasons[next(iter(change))] = answer.json()["error_response"]["error"]
    huge = {"limit_limit_gtc": {"base_size": "1000000", "limit_price": "100"}}
    broke = call(cb, "trade", "POST", ORDERS, json=order(order_configuration=huge)).json()
    assert reasons == {
        "side": "INVALID_SIDE",
        "product_id": "INVALID_PRODUCT_ID",
        "order_configuration": "UNSUPPORTED_ORDER_CONFIGURATION",
    }
    assert broke["error_response"]["new_order_failure_reason"] == "INSUFFICIENT_FUND"


def test_the_same_client_order_id_answers_the_existing_order(cb: Sandbox) -> None:
    """Re-sending an order with its client_order_id returns the order placed first, never a
    second one; another id places another; the read key lists them, looks one up, and may
    not place any (403)."""
    first = call(cb, "trade", "POST", ORDERS, json=order("cid-1")).json()
    again = call(cb, "trade", "POST", ORDERS, json=order("cid-1")).json()
    other = call(cb, "trade", "POST", ORDERS, json=order("cid-2")).json()
    assert first == again
    assert first["success_response"]["order_id"] != other["success_response"]["order_id"]
    listed = call(cb, "read", "GET", f"{ORDERS}/historical/batch").json()["orders"]
    assert sorted(o["client_order_id"] for o in listed) == ["cid-1", "cid-2"]
    order_id = first["success_response"]["order_id"]
    found = call(cb, "read", "GET", f"{ORDERS}/historical/{order_id}").json()["order"]
    assert found["client_order_id"] == "cid-1"
    assert call(cb, "read", "GET", f"{ORDERS}/historical/nope").status_code == 404
    assert call(cb, "read", "POST", ORDERS, json=order("cid-3")).status_code == 403


def test_execute_then_timeout_places_the_order_and_answers_late() -> None:
    """timeout_after_order_rate=1: the order exists although its answer never came in time."""
    faults = Faults(timeout_after_order_rate=1.0, stall_seconds=1.0)
    config = SandboxConfig(profile="coinbase", clock=ManualClock(NOW), faults=faults)
    with Sandbox(config) as sb:
        with pytest.raises(httpx.ReadTimeout):
            call(sb, "trade", "POST", ORDERS, json=order("late-1"), timeout=0.2)
        sb.set_faults(Faults())
        listed = call(sb, "read", "GET", f"{ORDERS}/historical/batch").json()["orders"]
    assert [o["client_order_id"] for o in listed] == ["late-1"]
    assert "stalled-after-order" in [e.outcome for e in sb.ledger.entries()]


def test_ledger_keeps_fingerprints_never_key_names_or_tokens(cb: Sandbox) -> None:
    """The ledger row of a call holds the key's fingerprint, not its name or the JWT."""
    bearer = token(cb, "trade", "GET", PERMISSIONS)
    call(cb, "trade", "GET", PERMISSIONS, bearer=bearer)
    text = repr(cb.ledger.entries()) + repr(cb.keys)
    assert cb.keys.trade is not None
    assert cb.keys.trade not in text
    assert bearer not in text
    assert cb.ledger.entries()[0].fingerprint is not None


def test_sandbox_runs_on_a_bare_install_and_names_the_extra() -> None:
    """Without PyJWT and cryptography the default sandbox still starts; the coinbase profile
    says which extra it needs."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["jwt"] = None
        sys.modules["cryptography"] = None
        from coinguard.sandbox import Sandbox
        with Sandbox() as sb:
            pass
        try:
            Sandbox(profile="coinbase")
        except RuntimeError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "coinguard[signing]" in done.stdout
