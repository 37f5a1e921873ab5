"""The client under faults: unbuildable requests, Retry-After on any status, deadlines that
cover quota waits, cancelled waits, store failures after an answer, rotated keys."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import (
    ConfigurationError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
)
from test_client import BASE, TRADE, FakeClock, Runner, _ok, _read_quota, _seq, clock, run

__all__ = ["clock", "run"]  # fixtures shared with test_client


def test_an_unbuildable_request_costs_no_quota(run: Runner, clock: FakeClock) -> None:
    """A header that cannot be encoded is a ConfigurationError before any quota is spent (a
    body on a GET is refused earlier still, by the argument checks)."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(2)])
    store = coinguard.MemoryStore()
    handler, seen = _seq(_ok(1))
    kw: dict[str, Any] = {"quota": policy, "quota_store": store}
    for _ in range(2):
        with pytest.raises(ConfigurationError, match=r"GET /price.*headers") as info:
            run.call(handler, "GET", "/price", clock, headers={"x-when": "\u00e9t\u00e9"}, **kw)
        assert not isinstance(info.value, TypeError)
    assert run.call(handler, "GET", "/price", clock, **kw)["data"] == 1
    assert clock.sleeps == []
    assert len(seen) == 1
    assert _read_quota(policy, store, clock).status().windows[0].used == 1


def test_retry_after_on_503_is_honoured(run: Runner, clock: FakeClock) -> None:
    """A 503 with Retry-After (seconds, or an HTTP date) waits that long before the retry."""
    when = datetime.fromtimestamp(clock.now + 7, timezone.utc)
    handler, seen = _seq(
        httpx.Response(503, headers={"Retry-After": "4"}),
        httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        _ok(1),
    )
    assert run.call(handler, "GET", "/price", clock)["data"] == 1
    assert len(seen) == 3
    assert clock.sleeps[0] >= 4.0
    assert clock.sleeps[1] >= 7.0 - 4.0 - 1.0  # the date is absolute; ~3 s remained


@pytest.mark.parametrize("seconds", [463 * 86400, 8 * 86400, 120])
def test_a_retry_after_beyond_the_cap_or_deadline_raises_at_once(
    run: Runner, clock: FakeClock, seconds: int
) -> None:
    """A Retry-After above 7 days or above the deadline raises at once with retry_after set."""
    handler, seen = _seq(
        httpx.Response(429, headers={"Retry-After": str(seconds)}), _ok(1), _ok(1), _ok(1)
    )
    with pytest.raises(RateLimitError) as info:
        run.call(handler, "GET", "/price", clock)
    assert len(seen) == 1
    assert clock.sleeps == []
    assert info.value.retry_after == seconds


def test_the_deadline_bounds_the_quota_wait(run: Runner, clock: FakeClock) -> None:
    """With deadline=5 a call on a 1-per-30 s plan raises at once instead of sleeping 30 s."""
    policy = coinguard.QuotaPolicy([coinguard.Window(1, 30.0)])
    store = coinguard.MemoryStore()
    handler, seen = _seq(_ok(1), _ok(2))
    kw: dict[str, Any] = {"quota": policy, "quota_store": store, "retry": RetryPolicy(deadline=5)}
    assert run.call(handler, "GET", "/price", clock, **kw)["data"] == 1
    with pytest.raises(QuotaExceededError) as info:
        run.call(handler, "GET", "/price", clock, **kw)
    assert clock.sleeps == []
    assert len(seen) == 1
    assert info.value.window == "1/30s"
    assert info.value.retry_after == pytest.approx(30.0, abs=0.1)
    assert _read_quota(policy, store, clock).status().windows[0].used == 1


def test_trade_429_beyond_deadline_is_not_retried(run: Runner, clock: FakeClock) -> None:
    """An order answered 429 with a long Retry-After is not re-sent early."""
    handler, seen = _seq(httpx.Response(429, headers={"Retry-After": "90000000"}), _ok(1))
    with pytest.raises(RateLimitError):
        run.call(handler, "POST", "/orders", clock, json={}, **TRADE)
    assert len(seen) == 1


class _SyncFails:
    """A memory store whose bucket cannot record what the server said: 'database is locked'."""

    def __init__(self) -> None:
        self.inner = coinguard.MemoryStore()

    @property
    def blocking(self) -> bool:
        return True

    def bind(self, key_id: str, specs: Any) -> Any:
        bucket = self.inner.bind(key_id, specs)

        class Bucket:
            reserve, settle, correct = bucket.reserve, bucket.settle, bucket.correct
            release, snapshot = bucket.release, bucket.snapshot

            def sync(self, *args: object) -> None:
                raise sqlite3.OperationalError("database is locked")

        return Bucket()

    def close(self) -> None:
        pass


def test_a_store_error_after_a_fill_never_replaces_the_fill(
    run: Runner, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A store failing on a filled order's headers still returns the fill, and logs."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(5)])
    fill = httpx.Response(
        201,
        json={"success": True, "data": {"id": "o1", "status": "filled"}},
        headers={"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "1"},
    )
    handler, seen = _seq(fill)
    kw: dict[str, Any] = {"quota": policy, "quota_store": _SyncFails()}
    got = run.call(handler, "POST", "/orders", clock, json={"qty": 1}, **kw, **TRADE)
    assert got["data"]["status"] == "filled"
    assert len(seen) == 1
    logged = [r for r in caplog.records if r.name == "coinguard.quota"]
    assert any("database is locked" in r.getMessage() for r in logged)


def test_a_rotated_key_keeps_counting_in_its_slot(run: Runner, clock: FakeClock) -> None:
    """A key rotated after a 401 spends the same budget: the quota is the slot's, not the key's."""
    keys = iter(["read-key-old-abcdefgh", "read-key-new-abcdefgh"])
    key_of = {"read-key-old-abcdefgh": 401, "read-key-new-abcdefgh": 200}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(key_of[request.headers["x-api-key"]], json={"success": True})

    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(10)])
    store = coinguard.MemoryStore()
    run.call(handler, "GET", "/price", clock, read_key=lambda: next(keys), quota=policy,
             quota_store=store)  # fmt: skip
    quota = coinguard.Quota(
        policy,
        store=store,
        key_id=f"sandbox:{coinguard.fingerprint('read-key-old-abcdefgh')}",
        clock=clock.time,
        persist=None,
    )
    assert quota.status().windows[0].used == 2  # the 401 and the retry with the new key


def test_a_key_from_a_variable_keeps_its_budget_across_rotation_and_restart(
    run: Runner, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clients, the second after the variable got a new key: one budget, month included."""
    monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", "0")  # never the user's cache directory
    provider = coinguard.Provider(name="rot", base_url=BASE, read_key_env="ROT_READ_KEY")
    policy = coinguard.QuotaPolicy([coinguard.Window.per_month(100)])
    store = coinguard.MemoryStore()
    handler, _ = _seq(_ok(1), _ok(2))
    kw: dict[str, Any] = {"provider": provider, "quota": policy, "quota_store": store}
    monkeypatch.setenv("ROT_READ_KEY", "rot-key-first-1234")
    run.call(handler, "GET", "/price", clock, read_key=None, **kw)
    monkeypatch.setenv("ROT_READ_KEY", "rot-key-second-5678")
    run.call(handler, "GET", "/price", clock, read_key=None, **kw)
    quota = coinguard.Quota(
        policy, store=store, key_id="rot:read:env var ROT_READ_KEY", clock=clock.time, persist=None
    )
    assert quota.status().windows[0].used == 2


def test_keys_that_share_an_account_share_its_quota(run: Runner, clock: FakeClock) -> None:
    """quota_account= names the account the provider counts: two keys, one budget."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(10)])
    store = coinguard.MemoryStore()
    handler, _ = _seq(_ok(1), _ok(2))
    kw: dict[str, Any] = {"quota": policy, "quota_store": store, "quota_account": "acct-7"}
    run.call(handler, "GET", "/price", clock, read_key="read-key-aaaa-abcdefgh", **kw)
    run.call(handler, "GET", "/price", clock, read_key="read-key-bbbb-abcdefgh", **kw)
    quota = coinguard.Quota(
        policy, store=store, key_id="sandbox:account:acct-7", clock=clock.time, persist=None
    )
    assert quota.status().windows[0].used == 2


def test_status_names_the_real_reason_for_a_block(clock: FakeClock) -> None:
    """blocked_by says what blocked the key (the server's 429), not a fixed word."""
    quota = coinguard.Quota(
        coinguard.QuotaPolicy([coinguard.Window.per_second(5)]),
        store=coinguard.MemoryStore(),
        key_id="why",
        clock=clock.time,
        persist=None,
    )
    quota.observe(429, {"Retry-After": "3"})
    assert quota.status().blocked_by == "server 429"


def test_a_maybe_executed_order_stays_unknown_when_its_retry_fails_early(
    run: Runner, clock: FakeClock
) -> None:
    """503 on an idempotent order, then a retry refused before sending: the call still ends in
    OrderOutcomeUnknownError (the first attempt may have executed), never "nothing was sent"."""
    handler, seen = _seq(httpx.Response(503), httpx.ConnectError("refused"))
    with pytest.raises(coinguard.OrderOutcomeUnknownError) as info:
        run.call(
            handler,
            "POST",
            "/orders",
            clock,
            json={},
            idempotency_key="idem-order-1",
            max_retries=1,
            trade_key="trade-key-1-abcdefgh",
            allow_trading=True,
        )
    assert len(seen) == 2
    assert info.value.status_code == 503
    assert info.value.idempotency_key == "idem-order-1"
    assert "ConnectError" in str(info.value)


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("sqlite:////proc/nope/q.db", "cannot be opened"),
        ("redis://[::1/0", "bad quota store URL"),
        ("ftp://x", "unknown quota store"),
    ],
)
def test_a_bad_quota_store_is_a_clear_error(store: str, message: str) -> None:
    """A store URL that cannot be opened: a ConfigurationError naming it, not a raw OSError,
    sqlite3 or ValueError, raised by the constructor rather than the first call."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(1)])
    with pytest.raises(ConfigurationError, match=message):
        coinguard.Client(
            provider="generic",
            base_url="https://api.example.com",
            read_key="read-key-1-abcdefgh",
            quota=policy,
            quota_store=store,
        )
    with pytest.raises(coinguard.ArgumentTypeError, match="quota_store"):
        coinguard.Client(
            provider="generic",
            base_url="https://api.example.com",
            read_key="read-key-1-abcdefgh",
            quota_store=123,  # type: ignore[arg-type]
        )


def test_an_interruption_after_a_maybe_executed_order_is_logged(
    run: Runner, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl+C in the backoff after an order's 503: the KeyboardInterrupt cannot say the order
    may have executed, so a warning on coinguard.retry does."""
    handler, seen = _seq(httpx.Response(503), _ok())

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    clock.sleep = interrupt  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="coinguard.retry")
    with pytest.raises(KeyboardInterrupt):
        run.call(
            handler,
            "POST",
            "/orders",
            clock,
            json={},
            idempotency_key="idem-order-2",
            trade_key="trade-key-1-abcdefgh",
            allow_trading=True,
        )
    assert len(seen) == 1
    assert "may have executed (idempotency key idem-order-2)" in caplog.text


def test_a_store_url_opens_with_the_client_once_for_all_its_keys(tmp_path: Path) -> None:
    """The store is opened by the constructor (no first request pays for it, `import redis`
    included), shared by the read and trade quotas, and closed with the client."""
    script = """
import sys, coinguard
c = coinguard.Client(provider="generic", base_url="https://api.example.com",
                     read_key="read-key-1-abcdefgh", quota_store="redis://127.0.0.1:1/0",
                     quota=coinguard.QuotaPolicy([coinguard.Window.per_second(1)]))
print("redis" in sys.modules)
c.close()
"""
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert ran.stdout.strip() == "True"
    db = tmp_path / "q.db"
    client = coinguard.Client(
        provider="generic",
        base_url="https://api.example.com",
        read_key="read-key-1-abcdefgh",
        trade_key="trade-key-1-abcdefgh",
        allow_trading=True,
        quota=coinguard.QuotaPolicy([coinguard.Window.per_second(1)]),
        quota_store=f"sqlite:///{db}",
    )
    assert db.exists()
    core = client._core
    slots = [core.read, core.trade]
    quotas = [client._quota_for(s, s.loaded) for s in slots if s is not None and s.loaded]
    client.close()
    assert len(quotas) == 2
    assert quotas[0].store is quotas[1].store
