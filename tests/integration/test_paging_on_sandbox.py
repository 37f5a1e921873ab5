"""Pagination over real sockets: every row of 50 symbols x 90 days, with and without 5xx faults,
resumable after a failed page, paced by the quota with no 429."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

import coinguard
from coinguard import PaginationError, RetryPolicy
from coinguard.sandbox import Faults, Sandbox, SandboxConfig
from coinguard.sandbox._data import Market, candle_json

END = date(2026, 10, 31)
START = END - timedelta(days=89)
FAST = RetryPolicy(max_retries=6, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _expected(symbols: list[str]) -> dict[tuple[str, date], float]:
    """The emulation's own closes for each (symbol, day) of the range."""
    market = Market(SandboxConfig().seed)
    out = {}
    for symbol in symbols:
        token = market.by_symbol[symbol]
        for i in range(90):
            day = START + timedelta(days=i)
            out[(symbol, day)] = candle_json(token, market.daily(token, day), hourly=False)["close"]
    return out


def _symbols() -> list[str]:
    return [t.symbol for t in Market(SandboxConfig().seed).tokens[:50]]


def _client(sb: Sandbox, retry: RetryPolicy = FAST) -> coinguard.Client:
    return coinguard.Client(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, retry=retry
    )


def _check_every_row(rows: coinguard.Rows, symbols: list[str]) -> None:
    expected = _expected(symbols)
    got = {(r.symbol, r.time.date()): r.close for r in rows}
    assert len(rows) == len(expected) == 50 * 90
    assert got == expected
    times = [(r.time, r.symbol) for r in rows]
    assert times == sorted(times)


def test_fifty_symbols_ninety_days_every_row_present(sb: Sandbox) -> None:
    """50 x 90 daily candles through 100-row pages: every row, the emulation's own values."""
    symbols = _symbols()
    with _client(sb) as c:
        rows = c.paginate(
            "daily_ohlcv", symbol=",".join(symbols), start=START, end=END, limit=100,
            progress=False,
        )  # fmt: skip
    _check_every_row(rows, symbols)
    assert rows.complete
    # 45 full pages, then the empty one that proves the end (the answers carry no total)
    assert rows.pages == 46
    assert sb.ledger.count(status=429) == 0
    assert sb.ledger.violations() == []


def test_every_row_present_under_twenty_percent_injected_5xx(sb: Sandbox) -> None:
    """With 20 % of answers a 5xx, the retried pages still yield all 4,500 rows."""
    sb.set_faults(Faults(error_rate=0.2, seed=15))
    symbols = _symbols()
    with _client(sb) as c:
        rows = c.paginate(
            "daily_ohlcv", symbol=",".join(symbols), start=START, end=END, limit=100,
            progress=False,
        )  # fmt: skip
    _check_every_row(rows, symbols)
    assert sb.ledger.count(outcome="fault-5xx") > 0
    assert sb.ledger.count(status=429) == 0


def test_a_long_range_is_split_into_chunks_and_stays_whole(sb: Sandbox) -> None:
    """span=30 days cuts the 90 days into three calls' worth; rows are the same, sorted."""
    symbols = _symbols()[:5]
    with _client(sb) as c:
        rows = c.paginate(
            "daily_ohlcv", symbol=",".join(symbols), start=START, end=END,
            span=timedelta(days=30), progress=False,
        )  # fmt: skip
    expected = _expected(symbols)
    assert {(r.symbol, r.time.date()): r.close for r in rows} == expected
    assert rows.pages == 3 * 2  # 150 rows a chunk: a page of 100 and one of 50


def test_a_failed_page_raises_with_rows_and_resumes_without_refetching(sb: Sandbox) -> None:
    """Without retries, 30 % faults stop the walk; each resume fetches only what is left,
    and the finished result has every row."""
    sb.set_faults(Faults(error_rate=0.3, seed=3))
    symbols = _symbols()[:10]
    resume, errors = None, []
    with _client(sb, RetryPolicy(max_retries=0)) as c:
        while True:
            try:
                rows = c.paginate(
                    "daily_ohlcv", symbol=",".join(symbols), start=START, end=END, limit=50,
                    progress=False, resume=resume,
                )  # fmt: skip
                break
            except PaginationError as exc:
                errors.append(exc)
                resume = exc.resume
    assert errors
    assert all(len(e.rows) == len(e.resume.rows) for e in errors)
    assert all("resume=error.resume" in str(e) for e in errors)
    assert {(r.symbol, r.time.date()) for r in rows} == set(_expected(symbols))
    answered = sb.ledger.count(status=200)
    # 900 rows in 18 pages of 50, and the empty page after them: no page fetched twice
    assert answered == rows.pages == 19


def test_on_error_skip_reports_the_pages_it_lost(sb: Sandbox) -> None:
    """on_error="skip": the result says it is incomplete and which pages are missing."""
    sb.set_faults(Faults(error_rate=0.3, seed=3))
    symbols = _symbols()[:10]
    with _client(sb, RetryPolicy(max_retries=0)) as c:
        rows = c.paginate(
            "daily_ohlcv", symbol=",".join(symbols), start=START, end=END, limit=50,
            on_error="skip", progress=False,
        )  # fmt: skip
    assert not rows.complete
    assert len(rows) == 900 - 50 * len(rows.skipped)
    assert all("/daily-ohlcv" in s.label and "page=" in s.label for s in rows.skipped)
    assert "skipped" in repr(rows)


def test_hourly_candles_come_whole_not_one_page(sb: Sandbox) -> None:
    """Three symbols x three days of hourly candles: 216 rows, not the first page of 50."""
    with _client(sb) as c:
        rows = c.paginate(
            "hourly_ohlcv", symbol="BTC,ETH,SOL", start=END - timedelta(days=2), end=END,
            limit=50, progress=False,
        )  # fmt: skip
    assert len(rows) == 216
    assert len({r.time for r in rows}) == 72


@pytest.mark.anyio
async def test_async_paginate_gets_the_same_rows(sb: Sandbox) -> None:
    """AsyncClient.paginate walks the same pages to the same rows."""
    symbols = _symbols()[:5]
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, retry=FAST
    ) as c:
        rows = await c.paginate(
            "daily_ohlcv", symbol=",".join(symbols), start=START, end=END, limit=100,
            progress=False,
        )  # fmt: skip
    assert {(r.symbol, r.time.date()): r.close for r in rows} == _expected(symbols)
