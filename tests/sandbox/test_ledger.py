"""The ledger: no key values, filters, max_in_window and violations."""

from __future__ import annotations

import threading

import pytest

from coinguard._secret import fingerprint
from coinguard.sandbox import Faults, Ledger, LedgerEntry, ManualClock, SandboxConfig, Window


def _entry(t: float, cost: int = 1, account: str = "a", admitted: bool = True) -> LedgerEntry:
    return LedgerEntry(
        time=t,
        request_id="r",
        fingerprint="fp:x",
        account=account,
        method="GET",
        path="/v2/price",
        route="/price",
        scope_required="read",
        status=200 if admitted else 429,
        outcome="ok" if admitted else "limited",
        admitted=admitted,
        cost=cost,
    )


def _ledger(*entries: LedgerEntry, windows: tuple[Window, ...] = ()) -> Ledger:
    ledger = Ledger(windows)
    for entry in entries:
        ledger.record(entry)
    return ledger


def test_ledger_never_holds_a_key_value(coinguard_sandbox_factory, http, clock) -> None:
    """Canary: after every kind of request, no entry's repr contains any key value."""
    sb = coinguard_sandbox_factory(SandboxConfig(clock=clock, windows=(Window(3, 60.0),)))
    canary = "sbx_canary_" + "z" * 20
    new = sb.rotate(sb.keys.read, overlap=0)
    for key in (sb.keys.read, sb.keys.trade, sb.keys.overprivileged, new, canary):
        client = http(sb, key)
        client.get("/tokens")
        client.get(f"/price?api_key={key}")
        client.post("/orders", json={"symbol": "BTC"})
    sb.set_faults(Faults(error_rate=1.0))
    http(sb, new).get("/tokens")
    dump = "\n".join(repr(e) for e in sb.ledger.entries())
    for key in (sb.keys.read, sb.keys.trade, sb.keys.overprivileged, new, canary):
        assert key not in dump
    assert fingerprint(canary) in dump
    assert sb.keys.read not in repr(sb.keys)


def test_entries_describe_each_request(coinguard_sandbox_factory, http, clock) -> None:
    """An entry has server time, fingerprint, account, path without query, status, scope, cost."""
    sb = coinguard_sandbox_factory(SandboxConfig(clock=clock))
    http(sb, sb.keys.read).get("/daily-ohlcv", params={"symbol": "BTC"})
    (entry,) = sb.ledger.entries()
    assert entry.time == 1_700_000_000.0
    assert entry.fingerprint == fingerprint(sb.keys.read)
    assert entry.account == sb.account_of(sb.keys.read)
    assert (entry.method, entry.path, entry.route) == ("GET", "/v2/daily-ohlcv", "/daily-ohlcv")
    assert (entry.status, entry.scope_required, entry.outcome) == (200, "read", "ok")
    assert (entry.admitted, entry.cost) == (True, 2)


def test_count_filters_and_trade_key_separation(coinguard_sandbox_factory, http, clock) -> None:
    """count() filters by status/path/fingerprint; scopes_used_by shows what a key touched."""
    sb = coinguard_sandbox_factory(SandboxConfig(clock=clock))
    http(sb, sb.keys.read).get("/price")
    http(sb, sb.keys.trade).post(
        "/orders", json={"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1}
    )
    trade_fp = fingerprint(sb.keys.trade)
    assert sb.ledger.count(status=200, path="/price") == 1
    assert sb.ledger.count(path="/v2/orders", fingerprint=trade_fp) == 1
    assert sb.ledger.scopes_used_by(trade_fp) == {"trade"}
    assert sb.ledger.count(fingerprint=trade_fp, scope_required="read") == 0


def test_max_in_window_uses_half_open_windows() -> None:
    """(t - s, t]: a request exactly s seconds later is in the next window, not this one."""
    ledger = _ledger(_entry(0.0), _entry(0.5), _entry(1.0), _entry(1.2, cost=3))
    assert ledger.max_in_window(1.0) == 5  # 1.0 and 1.2 (3 units) plus 0.5
    assert ledger.max_in_window(0.5) == 4
    assert ledger.max_in_window(10.0) == 6


def test_max_in_window_by_account_and_refusals() -> None:
    """account= restricts to one account; admitted_only=False adds refused requests."""
    ledger = _ledger(_entry(0.0), _entry(0.1, account="b"), _entry(0.2, admitted=False))
    assert ledger.max_in_window(1.0) == 2
    assert ledger.max_in_window(1.0, account="a") == 1
    assert ledger.max_in_window(1.0, account="a", admitted_only=False) == 2


def test_simultaneous_requests_are_all_in_the_window() -> None:
    """Requests with the same arrival time count together."""
    assert _ledger(*(_entry(5.0) for _ in range(4))).max_in_window(1.0) == 4


def test_violations_of_declared_and_given_windows() -> None:
    """violations() checks the declared windows, or a client policy passed in."""
    ledger = _ledger(_entry(0.0), _entry(0.1), _entry(0.2), windows=(Window(3, 1.0),))
    assert ledger.violations() == []
    (found,) = ledger.violations((Window(2, 1.0),))
    assert (found.account, found.observed, found.at) == ("a", 3, 0.2)
    assert ledger.violations((Window(2, 60.0, calendar=True),))[0].observed == 3


def test_violations_empty_after_a_burst(coinguard_sandbox_factory, http, clock) -> None:
    """A burst far over the limit leaves no violation: the server only admits what fits."""
    sb = coinguard_sandbox_factory(
        SandboxConfig(clock=clock, windows=(Window(5, 1.0), Window(8, 60.0)))
    )
    client = http(sb, sb.keys.read)
    for _ in range(4):
        for _ in range(4):
            client.get("/tokens")
        clock.advance(0.4)
    assert sb.ledger.count(status=429) > 0
    assert sb.ledger.violations() == []
    assert sb.ledger.max_in_window(60.0) == 8


def test_ledger_is_thread_safe() -> None:
    """Concurrent record() calls lose nothing."""
    ledger = Ledger()
    threads = [
        threading.Thread(target=lambda: [ledger.record(_entry(0.0)) for _ in range(500)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.count() == 4000


@pytest.mark.parametrize("seconds", [0.5, 1.0])
def test_manual_clock_only_moves_forward(seconds: float) -> None:
    """ManualClock.advance moves time forward and refuses to go back."""
    clock = ManualClock(10.0)
    clock.advance(seconds)
    assert clock() == 10.0 + seconds
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
