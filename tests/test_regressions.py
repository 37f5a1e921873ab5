"""Regressions found by attacking signed trading (#13), the data layer (#15) and the quota
(#19): each test states the documented behaviour that an attack showed broken."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import coinguard
from coinguard import PaginationError
from coinguard._paging import PageRequest, walk
from coinguard.providers import binance
from coinguard.sandbox import Faults, Sandbox, SandboxConfig

LIMIT_ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "10"}
MARKET_ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}


def _trader(sb: Sandbox, **kwargs: Any) -> coinguard.Client:
    """The stock Binance profile (default polls and interval) aimed at the emulation."""
    return coinguard.Client(
        provider=dataclasses.replace(binance.PROFILE, base_url=sb.origin),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        trade_key=sb.keys.trade,
        trade_secret=sb.keys.trade_secret,
        allow_trading=True,
        **kwargs,
    )


def _drive(gen: Any, answer: Callable[[PageRequest], Any]) -> Any:
    value: Any = None
    while True:
        try:
            page = gen.send(value)
        except StopIteration as done:
            return done.value
        value = answer(page)


# -- signed trading (#13) --------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_lost_market_order_still_invisible_after_the_polls_is_not_filled_twice() -> None:
    """A MARKET order executes, its answer is lost, and it stays invisible to lookups for
    1.5 s (Binance documents -2013 'may appear briefly right after placement'). Promise 4:
    never re-send an order whose outcome is unknown. The re-send with the same
    newClientOrderId is no protection: the first order is FILLED, not open."""
    faults = Faults(drop_after_order_rate=1.0, invisible_seconds=1.5)
    config = SandboxConfig(profile="binance", faults=faults, orders_per_10s=10_000)
    with Sandbox(config) as sb, _trader(sb) as client:
        client.get("/api/v3/account")  # clock synced, keys loaded
        # an honest "unknown" is acceptable; a second fill is not
        with contextlib.suppress(coinguard.OrderOutcomeUnknownError):
            client.post("/api/v3/order", params=MARKET_ORDER)
        sb.set_faults(Faults())
        time.sleep(1.6)  # let every order become visible
        orders = client.get("/api/v3/allOrders", params={"symbol": "BTCUSDT"})
    assert len(orders) == 1, [(o["clientOrderId"], o["status"]) for o in orders]


@pytest.mark.timeout(60)
def test_order_whose_body_cannot_be_signed_is_a_clear_error_and_sends_nothing() -> None:
    """Promise 5: bad input gets a clear error, before anything is spent. The signer decodes
    the body as UTF-8 inside the auth flow; the UnicodeDecodeError is taken for a connection
    that failed after sending, so the order reads as 'maybe executed' and is reconciled."""
    with Sandbox(profile="binance") as sb, _trader(sb) as client:
        client.get("/api/v3/account")
        before = len(sb.ledger.entries())
        with pytest.raises(coinguard.CoinguardError) as info:
            client.post("/api/v3/order", params=LIMIT_ORDER, content=b"\xff\xfe")
        sent = sb.ledger.entries()[before:]
    assert not isinstance(info.value, coinguard.OrderOutcomeUnknownError), str(info.value)
    assert sent == []  # no lookup, no quota spent on an order that never left


@pytest.mark.timeout(60)
def test_interrupted_reconciliation_says_the_order_may_exist(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The order's answer is lost; Ctrl+C lands in the wait between two lookups. The
    KeyboardInterrupt cannot carry the news, so, as the retry loop does (``interrupted``), a
    WARNING must name the order's client id: the caller must reconcile before sending again."""

    CLIENT_ID = "review-interrupted-1"

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    faults = Faults(drop_after_order_rate=1.0, invisible_seconds=30.0)
    config = SandboxConfig(profile="binance", faults=faults)
    with Sandbox(config) as sb, _trader(sb, sleep=sleep) as client:
        client.get("/api/v3/account")
        caplog.set_level(logging.INFO, logger="coinguard")
        with pytest.raises(KeyboardInterrupt):
            client.post("/api/v3/order", params={**LIMIT_ORDER, "newClientOrderId": CLIENT_ID})
        placed = [e for e in sb.ledger.entries() if e.method == "POST"]
    assert len(placed) == 1  # the order reached the server (and executed)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(CLIENT_ID in w for w in warnings), warnings


@pytest.mark.timeout(60)
def test_a_lost_order_is_not_reconciled_to_an_older_order_with_the_same_client_id() -> None:
    """Binance lets a client id be used again once its order is filled; a lost second order
    with that id would be looked up and taken for the first. A client refuses an id it
    already used, before anything is sent."""
    order = {**MARKET_ORDER, "newClientOrderId": "review-reused-1"}
    config = SandboxConfig(profile="binance", orders_per_10s=10_000)
    with Sandbox(config) as sb, _trader(sb) as client:
        client.post("/api/v3/order", params=order)
        seen = len(sb.ledger.entries())
        with pytest.raises(coinguard.ConfigurationError, match="already used"):
            client.post("/api/v3/order", params=order)
        assert len(sb.ledger.entries()) == seen
        orders = client.get("/api/v3/allOrders", params={"symbol": "BTCUSDT"})
    assert len(orders) == 1


def test_a_signed_read_follows_a_same_origin_redirect_signed_once() -> None:
    """follow_redirects=True on a signed provider: a 307 to another read route on the same
    origin is followed with the read key, signed afresh, with one timestamp (not the first
    hop's stale one beside a new one). Today the auth flow reads ``keyed.content`` of the hop
    and httpx raises RequestNotRead; the error says the connection failed and the read is
    re-sent three times (weight 20 each)."""
    import httpx

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": 1_800_000_000_000})
        if request.url.path == "/api/v3/account":
            return httpx.Response(307, headers={"location": "/api/v3/myTrades"})
        return httpx.Response(200, json={"ok": True})

    with coinguard.Client(
        provider="binance",
        read_key="review-binance-read-key-0123456789",
        read_secret="review-binance-read-secret-0123456789",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        follow_redirects=True,
        clock=lambda: 1_800_000_000.0,
        sleep=lambda seconds: None,
        quota=None,
    ) as client:
        answer = client.get("/api/v3/account", params={"omitZeroBalances": "true"})
    assert answer == {"ok": True}
    hop = seen[-1]
    assert hop.url.path == "/api/v3/myTrades"
    assert len(hop.url.params.get_list("timestamp")) == 1
    assert "signature" in hop.url.params


# -- the data layer (#15) --------------------------------------------------------------------

LISTINGS = coinguard.get_provider("coinmarketcap").endpoint("listings_latest")
MARKETS = coinguard.get_provider("coingecko").endpoint("markets")
DAILY = coinguard.get_provider("tokenmetrics").endpoint("daily_ohlcv")


def test_distinct_coins_sharing_a_ticker_are_all_kept() -> None:
    """Tickers are not unique (the CoinGecko profile says so itself: 'several coins share a
    ticker'). Two coins with different ids must both come back from a listing."""
    coins = [
        {"id": 7083, "name": "Uniswap", "symbol": "UNI", "quote": {"USD": {"price": 5.0}}},
        {"id": 9999, "name": "Unicorn", "symbol": "UNI", "quote": {"USD": {"price": 0.01}}},
    ]
    rows = _drive(
        walk(LISTINGS, {}, limit=10), lambda page: {"data": coins, "status": {"total_count": 2}}
    )
    assert sorted(r.id for r in rows) == [7083, 9999]
    markets = [
        {"id": "ethereum", "symbol": "eth", "name": "Ethereum"},
        {"id": "bridged-ether", "symbol": "eth", "name": "Bridged Ether"},
    ]
    rows = _drive(walk(MARKETS, {}, limit=250), lambda page: markets)
    assert sorted(r.id for r in rows) == ["bridged-ether", "ethereum"]


def test_a_page_that_does_not_fit_the_model_keeps_the_rows_and_a_resume_point() -> None:
    """The documented contract of paginate: a page that fails raises PaginationError with the
    rows fetched so far and ``resume`` (promise 5: nothing is lost, credits not spent twice)."""

    def candle(day: str) -> dict[str, Any]:
        return {"symbol": "BTC", "date": day, "open": 1, "high": 2, "low": 1, "close": 1}

    answers = iter(
        [
            {"data": [candle("2026-01-01")]},
            {"data": [candle("2026-01-02")]},
            {"data": [{"symbol": "BTC", "date": "2026-01-03", "open": "n/a"}]},  # bad page
        ]
    )
    gen = walk(DAILY, {"symbol": "BTC"}, start=date(2026, 1, 1), end=date(2026, 1, 9), limit=1)
    with pytest.raises(PaginationError) as info:
        _drive(gen, lambda page: next(answers))
    assert len(info.value.rows) == 2
    assert info.value.resume.position == 3


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


class _Opaque:
    """A result a caller may well return from a batch fetch (a DataFrame, a custom object):
    it has no JSON form."""


@pytest.mark.timeout(60)
def test_a_result_the_checkpoint_cannot_encode_is_that_items_error(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Promise 5: a clear error that says what and where, never a raw error from inside, and
    nothing lost. The other items' results come back; the odd item is an error of its own."""
    with coinguard.Client(
        provider="sandbox", base_url=sandbox.base_url, read_key=sandbox.keys.read
    ) as client:

        def fetch(symbol: str) -> Any:
            body = client.get("/price", params={"symbol": symbol})
            return _Opaque() if symbol == "ETH" else body

        done = client.batch(
            ["BTC", "ETH", "SOL"],
            fetch,
            workers=1,
            checkpoint=tmp_path / "batch.jsonl",
            progress=False,
        )
    assert done[0] is not None
    assert done[2] is not None
    assert list(done.errors) == [1]
    assert isinstance(done.errors[1], coinguard.CoinguardError)


# -- quota (#19): the month journal's lease --------------------------------------------------


def test_a_forked_process_does_not_spend_or_give_back_the_parents_lease(tmp_path: Path) -> None:
    """Promise 4 across a restart: the journal must never hold less than was used ('after a
    crash it holds at most one block more than was used, never less'). A process forked
    after the first call (a pre-forking server, multiprocessing's fork start) makes 10 calls
    and exits cleanly; the parent makes 10 more; a restarted process must see 21."""
    import os
    import warnings

    from coinguard._quota import MemoryStore, QuotaPolicy, Window, _sqlite
    from coinguard._quota._limiter import Quota

    path = tmp_path / "journal.sqlite3"
    policy = QuotaPolicy([Window.per_month(10_000)])

    def clock() -> float:
        return 1_800_000_000.0

    quota = Quota(policy, store=MemoryStore(), key_id="fork", clock=clock, persist=path)
    quota.reserve("GET", "/x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads alive
        pid = os.fork()
    if pid == 0:  # the child: ten calls, then a clean interpreter exit
        try:
            for _ in range(10):
                quota.reserve("GET", "/x")
            _sqlite._close_journals()  # the atexit handler a normal exit runs
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    for _ in range(10):
        quota.reserve("GET", "/x")
    quota.close()
    restarted = Quota(policy, store=MemoryStore(), key_id="fork", clock=clock, persist=path)
    assert restarted.status().windows[0].used >= 21


def test_a_range_bound_string_means_the_same_utc_day_as_its_datetime() -> None:
    """``ohlcv``/``paginate`` take inclusive UTC days; ``as_day`` converts a datetime to UTC
    but slices a string's first ten characters, so 23:00 at UTC-5 (04:00 UTC the next day)
    names the day before, and trailing garbage after a date is accepted silently."""
    from datetime import datetime

    from coinguard._paging import as_day

    moment = "2026-11-01T23:00:00-05:00"
    assert as_day(moment, "end") == as_day(datetime.fromisoformat(moment), "end")
    with pytest.raises(coinguard.ConfigurationError):
        as_day("2026-11-01 and then some", "end")
