"""The client against the real sandbox: scopes, faults, retries, rotation, least privilege."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

import coinguard
from coinguard import (
    AuthenticationError,
    OrderOutcomeUnknownError,
    OverPrivilegedKeyError,
    ResponseDecodeError,
    RetryPolicy,
    ScopeError,
)
from coinguard.sandbox import Faults, ManualClock, Sandbox, SandboxConfig, Window

ORDER = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.5}
FAST = RetryPolicy(max_retries=8, backoff_initial=0.001, backoff_max=0.004, deadline=30.0)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _client(sb: Sandbox, **kw: object) -> coinguard.Client:
    kw.setdefault("read_key", sb.keys.read)
    return coinguard.Client(provider="sandbox", base_url=sb.base_url, **kw)  # type: ignore[arg-type]


def test_reads_and_one_order_keep_keys_apart(sb: Sandbox) -> None:
    """Reads carry the read key, the order the trade key; the ledger shows no crossing."""
    with _client(sb, trade_key=sb.keys.trade, allow_trading=True) as c:
        prices = c.get("/price", params={"symbol": "BTC,ETH"})
        assert [p["symbol"] for p in prices["data"]] == ["BTC", "ETH"]
        order = c.post("/orders", json=ORDER)["data"]
        assert c.get(f"/orders/{order['id']}")["data"]["id"] == order["id"]
    trade_fp = coinguard.fingerprint(sb.keys.trade)
    read_fp = coinguard.fingerprint(sb.keys.read)
    assert sb.ledger.scopes_used_by(trade_fp) == {"trade"}
    assert sb.ledger.scopes_used_by(read_fp) == {"read"}
    assert sb.ledger.count(status=403) == 0


def test_read_only_client_never_reaches_the_server_with_an_order(sb: Sandbox) -> None:
    """ScopeError before I/O: the ledger has no order request at all."""
    with _client(sb) as c, pytest.raises(ScopeError):
        c.post("/orders", json=ORDER)
    assert sb.ledger.count(path="/v2/orders") == 0
    assert sb.orders == {}


def test_query_key_auth_against_query_mode_sandbox() -> None:
    """QueryKey providers work end to end, and the ledger never stores the key."""
    with Sandbox(SandboxConfig(auth="query")) as sb:
        provider = dataclasses.replace(
            coinguard.get_provider("sandbox"), auth=coinguard.QueryKey("api_key")
        )
        with coinguard.Client(provider=provider, base_url=sb.base_url, read_key=sb.keys.read) as c:
            assert c.get("/tokens", params={"limit": 3})["length"] == 3
        assert all(sb.keys.read not in repr(e) for e in sb.ledger.entries())


def test_reads_survive_5xx_and_resets(sb: Sandbox) -> None:
    """20 % 5xx plus 10 % resets: every read still succeeds within its deadline."""
    sb.set_faults(Faults(error_rate=0.2, reset_rate=0.1))
    retries: list[coinguard.RetryDetails] = []
    with _client(sb, retry=FAST, on_retry=retries.append) as c:
        for _ in range(60):
            assert c.get("/price", params={"symbol": "BTC"})["success"] is True
    outcomes = {e.outcome for e in sb.ledger.entries()}
    assert {"fault-5xx", "reset"} <= outcomes
    assert len(retries) >= 10


def test_order_dropped_after_processing_with_idempotency_is_recovered(sb: Sandbox) -> None:
    """'Process then drop' with idempotency: the retry gets the first order back; one exists."""
    sb.set_faults(Faults(drop_after_order_rate=1.0))
    with _client(sb, trade_key=sb.keys.trade, allow_trading=True, retry=FAST) as c:
        order = c.post("/orders", json=ORDER)["data"]
    assert list(sb.orders) == [order["id"]]
    assert sb.ledger.count(path="/v2/orders", method="POST") == 2


def test_order_dropped_after_processing_without_idempotency_is_not_resent(sb: Sandbox) -> None:
    """'Process then drop' without idempotency: one attempt, one order, a reconcile error."""
    provider = dataclasses.replace(coinguard.get_provider("sandbox"), idempotency_header=None)
    sb.set_faults(Faults(drop_after_order_rate=1.0))
    with (
        coinguard.Client(
            provider=provider,
            base_url=sb.base_url,
            read_key=sb.keys.read,
            trade_key=sb.keys.trade,
            allow_trading=True,
            retry=FAST,
        ) as c,
        pytest.raises(OrderOutcomeUnknownError) as info,
    ):
        c.post("/orders", json=ORDER)
    assert info.value.idempotency_key is None
    assert info.value.sent_at is not None
    assert len(sb.orders) == 1
    assert sb.ledger.count(path="/v2/orders", method="POST") == 1


def test_order_retry_after_drop_returns_the_same_order(sb: Sandbox) -> None:
    """With an idempotency key, a retry after a drop gets the first order back, not a second one."""
    sb.set_faults(Faults(drop_after_order_rate=0.5, seed=3))
    with _client(sb, trade_key=sb.keys.trade, allow_trading=True, retry=FAST) as c:
        ids = {c.post("/orders", json=ORDER)["data"]["id"] for _ in range(10)}
    assert len(ids) == 10
    assert len(sb.orders) == 10


def test_rotated_key_is_reloaded_after_401(sb: Sandbox) -> None:
    """The server rotates the key with no overlap; the client reloads once and keeps working."""
    current = {"key": sb.keys.read}
    with _client(sb, read_key=lambda: current["key"]) as c:
        assert c.get("/price", params={"symbol": "BTC"})["success"]
        current["key"] = sb.rotate(sb.keys.read, overlap=0.0)
        for _ in range(5):
            assert c.get("/price", params={"symbol": "BTC"})["success"]
    assert sb.ledger.count(status=401) == 1


def test_revoked_static_key_fails_clearly(sb: Sandbox) -> None:
    """A revoked, non-reloadable key raises AuthenticationError with the provider message."""
    with _client(sb) as c:
        sb.revoke(sb.keys.read)
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            c.get("/price", params={"symbol": "BTC"})


def test_captive_portal_page_is_a_decode_error(sb: Sandbox) -> None:
    """An HTML 200 is not silently returned as data."""
    sb.set_faults(Faults(html_rate=1.0))
    with _client(sb) as c, pytest.raises(ResponseDecodeError, match="text/html"):
        c.get("/price", params={"symbol": "BTC"})


def test_bad_input_is_a_provider_style_error(sb: Sandbox) -> None:
    """Malformed parameters come back as a 400 APIStatusError naming the parameter."""
    with _client(sb) as c, pytest.raises(coinguard.APIStatusError, match="limit") as info:
        c.get("/tokens", params={"limit": "abc"})
    assert info.value.status_code == 400


def _manual(
    header_style: str,
) -> tuple[ManualClock, SandboxConfig, list[float], Callable[[float], None]]:
    clock = ManualClock(1_800_000_000.0)
    config = SandboxConfig(windows=(Window(2, 1.0),), clock=clock, header_style=header_style)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    return clock, config, waits, sleep


def test_429_retry_after_on_a_manual_clock() -> None:
    """A 2/s window the client was not told about, no headers: one 429, then exactly its wait."""
    clock, config, waits, sleep = _manual("none")
    with Sandbox(config) as sb, _client(sb, clock=clock, sleep=sleep, jitter=lambda: 0.0) as c:
        for _ in range(3):
            c.get("/price", params={"symbol": "BTC"})
    assert waits == [1.0]
    assert sb.ledger.count(status=429) == 1
    assert sb.ledger.violations() == []


@pytest.mark.parametrize("style", ["ietf", "legacy"])
def test_server_headers_prevent_the_429(style: str) -> None:
    """Same undeclared 2/s window, with rate-limit headers: the client waits instead of a 429."""
    clock, config, waits, sleep = _manual(style)
    with Sandbox(config) as sb, _client(sb, clock=clock, sleep=sleep, jitter=lambda: 0.0) as c:
        for _ in range(6):
            c.get("/price", params={"symbol": "BTC"})
    assert sb.ledger.count(status=429) == 0
    assert sum(waits) >= 2.0
    assert sb.ledger.violations() == []


def test_rate_limit_beyond_deadline_gives_up_with_retry_after() -> None:
    """A spent server window of its own refuses the next call before sending, with its wait."""
    config = SandboxConfig(windows=(Window(1, 3600.0),))
    with Sandbox(config) as sb, _client(sb, retry=RetryPolicy(deadline=5.0)) as c:
        c.get("/price", params={"symbol": "BTC"})
        with pytest.raises(coinguard.QuotaExceededError) as info:
            c.get("/price", params={"symbol": "BTC"})
        assert len(sb.ledger.entries()) == 1
    assert "(server)" in info.value.window
    assert info.value.retry_after > 3000


def test_verify_key_accepts_least_privilege_and_warns_on_age(sb: Sandbox) -> None:
    """A read-only read key 120 days old: reports fine, warns about age."""
    seen: list[str] = []
    old_read = sb.issue_key(("read",), age_days=120)
    with (
        _client(sb, read_key=old_read, trade_key=sb.keys.trade, allow_trading=True) as c,
        pytest.warns(coinguard.KeyAgeWarning, match="120 days"),
    ):
        reports = c.verify_key(hook=seen.append)
    assert len(seen) == 1
    assert "read key" in seen[0]
    assert old_read not in seen[0]
    by_scope = {r.scope: r for r in reports}
    assert by_scope["read"].ok
    assert not by_scope["read"].permissions.can_trade
    assert by_scope["trade"].permissions.can_trade


def test_verify_key_refuses_an_over_privileged_read_key(sb: Sandbox) -> None:
    """A 'read' key that can trade and withdraw is refused, naming its fingerprint only."""
    key = sb.keys.overprivileged
    with (
        _client(sb, read_key=key) as c,
        pytest.warns(coinguard.KeyAgeWarning),
        pytest.raises(OverPrivilegedKeyError, match="can trade") as info,
    ):
        c.verify_key()
    assert key not in str(info.value)
    assert coinguard.fingerprint(key) in str(info.value)


def test_verify_on_start(sb: Sandbox) -> None:
    """verify_on_start=True checks the key at construction."""
    with pytest.warns(coinguard.KeyAgeWarning), pytest.raises(OverPrivilegedKeyError):
        _client(sb, read_key=sb.keys.overprivileged, verify_on_start=True)


def test_async_client_same_behaviour(sb: Sandbox) -> None:
    """AsyncClient: reads through faults, an order, and a ScopeError on a read-only twin."""

    async def main() -> None:
        async with coinguard.AsyncClient(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=sb.keys.read,
            trade_key=sb.keys.trade,
            allow_trading=True,
            retry=FAST,
        ) as c:
            sb.set_faults(Faults(error_rate=0.3))
            results = []
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(_fetch, c, results)
            assert len(results) == 20
            sb.set_faults(Faults())
            assert (await c.post("/orders", json=ORDER))["success"]
        async with coinguard.AsyncClient(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read
        ) as ro:
            with pytest.raises(ScopeError):
                await ro.post("/orders", json=ORDER)

    anyio.run(main)
    assert len(sb.orders) == 1


async def _fetch(c: coinguard.AsyncClient, out: list[object]) -> None:
    out.append(await c.get("/price", params={"symbol": "ETH"}))


def test_on_quota_raise_refuses_before_sending(sb: Sandbox) -> None:
    """on_quota='raise': the call over the declared window raises QuotaExceededError, unsent."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(2)])
    with _client(sb, quota=policy, on_quota="raise", quota_store=coinguard.MemoryStore()) as c:
        c.get("/price", params={"symbol": "BTC"})
        c.get("/price", params={"symbol": "BTC"})
        with pytest.raises(coinguard.QuotaExceededError) as info:
            c.get("/price", params={"symbol": "BTC"})
        assert info.value.window == "2/min"
        assert 0 < info.value.retry_after <= 60.1
        status = c.quota
        assert status is not None
        assert status.windows[0].remaining == 0
    assert sb.ledger.count(path="/v2/price") == 2


def test_month_credits_survive_a_new_client(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted notebook: the monthly count persists in the journal file across clients."""
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", str(tmp_path / "quota.db"))
    policy = coinguard.QuotaPolicy([coinguard.Window.per_month(10)])
    with _client(sb, quota=policy, quota_store=coinguard.MemoryStore()) as c:
        for _ in range(3):
            c.get("/price", params={"symbol": "BTC"})
    with _client(sb, quota=policy, quota_store=coinguard.MemoryStore()) as c:
        c.get("/price", params={"symbol": "BTC"})
        status = c.quota
    assert status is not None
    assert status.windows[0].used == 4


def test_async_verify_on_start_without_async_with(sb: Sandbox) -> None:
    """AsyncClient(verify_on_start=True) used without 'async with' checks before its first call."""

    async def main() -> None:
        client = coinguard.AsyncClient(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=sb.keys.overprivileged,
            verify_on_start=True,
        )
        try:
            with pytest.warns(coinguard.KeyAgeWarning), pytest.raises(OverPrivilegedKeyError):
                await client.get("/price", params={"symbol": "BTC"})
        finally:
            await client.aclose()

    anyio.run(main)
    assert sb.ledger.count(path="/v2/price") == 0


def test_close_releases_the_quota_stores_it_opened(sb: Sandbox, tmp_path: Path) -> None:
    """A store opened from a URL is closed with the client (no SQLite handle left behind)."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'q.db'}"
    with _client(sb, quota_store=url) as c:
        c.get("/price", params={"symbol": "BTC"})
        (quota,) = c._quotas.values()
    with pytest.raises(sqlite3.ProgrammingError):
        quota.store._conn.execute("select 1")  # type: ignore[attr-defined]


AGE_SCRIPT = """
import coinguard
from coinguard.sandbox import Sandbox
with Sandbox() as sb:
    key = sb.issue_key(("read",), age_days=120)
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=key) as c:
        c.verify_key()
"""


def test_key_age_finding_shows_once_without_logging_configured() -> None:
    """With no logging set up, an age finding reaches stderr once (the warning), not twice."""
    proc = subprocess.run(
        [sys.executable, "-c", AGE_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("days old") == 1, proc.stderr
    assert "KeyAgeWarning" in proc.stderr


def test_key_age_finding_is_logged_when_logging_is_configured(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """With a handler configured, the finding goes to coinguard.keys as well as the warning."""
    key = sb.issue_key(("read",), age_days=120)
    with _client(sb, read_key=key) as c, pytest.warns(coinguard.KeyAgeWarning):
        c.verify_key()
    assert [r.name for r in caplog.records if "days old" in r.getMessage()] == ["coinguard.keys"]
