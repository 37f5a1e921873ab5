"""Keys: 401/403 semantics, query auth, /key, rotation with overlap and revocation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from coinguard._secret import fingerprint
from coinguard.sandbox import ManualClock, Sandbox, SandboxConfig


@pytest.fixture
def sb(coinguard_sandbox_factory, clock: ManualClock) -> Sandbox:
    """A sandbox on a manual clock."""
    return coinguard_sandbox_factory(SandboxConfig(clock=clock))


def test_missing_and_unknown_keys_are_401(sb: Sandbox, http) -> None:
    """No key and a made-up key both get 401 envelopes, and the ledger says unauthorized."""
    missing = http(sb).get("/price")
    assert missing.status_code == 401
    assert missing.json()["success"] is False
    unknown = http(sb, "sbx_made_up").get("/price")
    assert unknown.status_code == 401
    assert unknown.json()["message"] == "Invalid API key"
    assert sb.ledger.count(outcome="unauthorized") == 2
    assert sb.ledger.entries()[0].fingerprint is None


@pytest.mark.parametrize(
    ("key", "read", "trade"),
    [("read", 200, 403), ("trade", 403, 201), ("overprivileged", 200, 201)],
)
def test_scopes_of_the_three_keys(sb: Sandbox, http, key: str, read: int, trade: int) -> None:
    """read reads only, trade trades only, overprivileged does both."""
    client = http(sb, getattr(sb.keys, key))
    assert client.get("/price", params={"symbol": "BTC"}).status_code == read
    order = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1}
    r = client.post("/orders", json=order)
    assert r.status_code == trade
    if trade == 403:
        assert "'trade' scope" in r.json()["message"]


def test_key_endpoint_reports_scopes_age_and_usage(sb: Sandbox, http) -> None:
    """/key shows scopes, ISO 8601 created/expires (read key 30 days old) and window usage."""
    client = http(sb, sb.keys.read)
    client.get("/tokens")
    data = client.get("/key").json()["data"]
    assert data["scopes"] == ["read"]
    assert data["fingerprint"] == fingerprint(sb.keys.read)
    created = datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))
    assert (datetime.fromtimestamp(1_700_000_000, tz=timezone.utc) - created).days == 30
    assert data["expires_at"].endswith("Z")
    first = data["usage"][0]
    assert {"window", "limit", "used", "remaining", "reset"} <= first.keys()
    assert first["used"] == 2  # /tokens and this /key call
    assert http(sb, sb.keys.trade).get("/key").json()["data"]["scopes"] == ["trade"]
    over = http(sb, sb.keys.overprivileged).get("/key").json()["data"]["scopes"]
    assert over == ["read", "trade", "withdraw"]


def test_key_ages_are_configurable(coinguard_sandbox_factory, http, clock) -> None:
    """key_age_days and key_ttl_days set created_at/expires_at; an expired key is 401."""
    config = SandboxConfig(clock=clock, key_age_days={"read": 400.0}, key_ttl_days=365.0)
    sb = coinguard_sandbox_factory(config)
    assert http(sb, sb.keys.read).get("/key").status_code == 401
    assert http(sb, sb.keys.trade).get("/key").json()["data"]["created_at"].startswith("2023-11-14")


def test_query_auth_mode(coinguard_sandbox_factory, http, clock) -> None:
    """With auth="query" the key goes in api_key; the header is then ignored."""
    sb = coinguard_sandbox_factory(SandboxConfig(auth="query", clock=clock))
    client = http(sb)
    assert client.get("/tokens", params={"api_key": sb.keys.read}).status_code == 200
    assert http(sb, sb.keys.read).get("/tokens").status_code == 401
    assert all(sb.keys.read not in repr(e) for e in sb.ledger.entries())
    assert sb.ledger.entries()[0].path == "/v2/tokens"


def test_rotation_keeps_old_key_for_the_overlap(sb: Sandbox, http, clock: ManualClock) -> None:
    """After rotate(), both keys work until the overlap ends; then only the new one."""
    old = sb.keys.read
    new = sb.rotate(old, overlap=5.0)
    assert new != old
    assert http(sb, old).get("/tokens").status_code == 200
    assert http(sb, new).get("/tokens").status_code == 200
    clock.advance(4.9)
    assert http(sb, old).get("/tokens").status_code == 200
    clock.advance(0.1)
    assert http(sb, old).get("/tokens").status_code == 401
    assert http(sb, new).get("/key").json()["data"]["scopes"] == ["read"]


def test_rotated_key_shares_the_account_quota(coinguard_sandbox_factory, http, clock) -> None:
    """Old and new keys count against one account: the rotation does not reset the quota."""
    from coinguard.sandbox import Window

    sb = coinguard_sandbox_factory(SandboxConfig(clock=clock, windows=(Window(3, 60.0),)))
    old = sb.keys.read
    new = sb.rotate(old, overlap=30.0)
    assert sb.account_of(new) == sb.account_of(old)
    statuses = [http(sb, k).get("/tokens").status_code for k in (old, new, old, new)]
    assert statuses == [200, 200, 200, 429]


def test_revocation_is_immediate(sb: Sandbox, http) -> None:
    """A revoked key is 401 on the next request; other keys are unaffected."""
    sb.revoke(sb.keys.read)
    assert http(sb, sb.keys.read).get("/tokens").status_code == 401
    assert http(sb, sb.keys.overprivileged).get("/tokens").status_code == 200


def test_rotating_an_unknown_key_fails_without_echoing_it(sb: Sandbox) -> None:
    """rotate() of an unknown key raises KeyError naming only a fingerprint."""
    with pytest.raises(KeyError) as info:
        sb.rotate("sbx_not_a_real_key")
    assert "sbx_not_a_real_key" not in str(info.value)


def test_issue_key_adds_a_key_on_its_own_account(sb: Sandbox, http) -> None:
    """issue_key() provisions a key with the given scopes on a fresh account."""
    key = sb.issue_key(("read", "trade"))
    assert http(sb, key).get("/key").json()["data"]["scopes"] == ["read", "trade"]
    assert sb.account_of(key) != sb.account_of(sb.keys.read)
