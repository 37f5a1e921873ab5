"""The sans-I/O page walk: chunks, page ends, totals, de-duplication, failure and resume."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import coinguard
from coinguard import ConfigurationError, PaginationError, ServerError
from coinguard._paging import Failed, PageRequest, as_day, chunks, tidy, walk

DAILY = coinguard.get_provider("tokenmetrics").endpoint("daily_ohlcv")
LISTINGS = coinguard.get_provider("coinmarketcap").endpoint("listings_latest")


def _candle(symbol: str, day: date) -> dict[str, Any]:
    return {"symbol": symbol, "date": day.isoformat(), "open": 1, "high": 2, "low": 1, "close": 1}


def _drive(gen: Any, answer: Any) -> tuple[list[PageRequest], Any]:
    """Run a walk, answering each page with ``answer(page)``; return the pages and result."""
    pages: list[PageRequest] = []
    value: Any = None
    while True:
        try:
            page = gen.send(value)
        except StopIteration as done:
            return pages, done.value
        pages.append(page)
        value = answer(page)


def test_chunks_cover_the_range_once() -> None:
    """Chunks are inclusive, adjacent, never overlapping, and the last one is short."""
    got = chunks(date(2026, 1, 1), date(2026, 3, 31), timedelta(days=30))
    assert [(a.isoformat(), b.isoformat()) for a, b in got] == [
        ("2026-01-01", "2026-01-30"),
        ("2026-01-31", "2026-03-01"),
        ("2026-03-02", "2026-03-31"),
    ]
    with pytest.raises(ConfigurationError, match="ends"):
        chunks(date(2026, 2, 1), date(2026, 1, 1), None)


def test_overlapping_rows_are_kept_once_and_sorted() -> None:
    """The same candle on two pages counts once; rows come out by time, then symbol."""
    day = date(2026, 1, 2)
    answers = iter(
        [
            {"data": [_candle("ETH", day), _candle("BTC", day)]},
            {"data": [_candle("BTC", day), _candle("BTC", day - timedelta(days=1))]},
            {"data": []},
        ]
    )
    gen = walk(DAILY, {"symbol": "BTC,ETH"}, limit=2)
    pages, rows = _drive(gen, lambda page: next(answers))
    assert [p.params["page"] for p in pages] == [1, 2, 3]
    assert [(r.symbol, r.time.day) for r in rows] == [("BTC", 1), ("BTC", 2), ("ETH", 2)]


def test_offset_paging_stops_at_the_providers_total() -> None:
    """CoinMarketCap's start/limit walk stops when status.total_count is reached."""
    coin = {"id": 1, "name": "A", "symbol": "A", "quote": {"USD": {"price": 1.0}}}

    def answer(page: PageRequest) -> Any:
        start = page.params["start"]
        data = [{**coin, "id": start + i, "symbol": f"S{start + i}"} for i in range(2)]
        return {"data": data, "status": {"total_count": 6}}

    pages, rows = _drive(walk(LISTINGS, {}, limit=2), answer)
    assert [p.params["start"] for p in pages] == [1, 3, 5]
    assert len(rows) == 6


def test_a_failed_page_raises_with_what_was_fetched_and_resumes_there() -> None:
    """Page 2 fails: the error keeps page 1's rows; resuming asks for page 2 first."""
    day = date(2026, 1, 1)
    gen = walk(DAILY, {"symbol": "BTC"}, limit=1)
    assert gen.send(None).params["page"] == 1
    assert gen.send({"data": [_candle("BTC", day)]}).params["page"] == 2
    with pytest.raises(PaginationError, match="page=2 failed") as info:
        gen.send(Failed(ServerError("HTTP 503", status_code=503)))
    error = info.value
    assert len(error.rows) == 1
    assert isinstance(error.error, ServerError)
    again = walk(DAILY, {"symbol": "BTC"}, limit=1, resume=error.resume)
    assert again.send(None).params["page"] == 2
    assert again.send({"data": [_candle("BTC", day + timedelta(days=1))]}).params["page"] == 3
    with pytest.raises(StopIteration) as done:
        again.send({"data": []})
    assert [r.time.day for r in done.value.value] == [1, 2]


def test_time_range_on_an_endpoint_without_one_is_refused() -> None:
    """A range for an endpoint that takes none is a clear error, not a silent full fetch."""
    with pytest.raises(ConfigurationError, match="takes no time range"):
        walk(LISTINGS, {}, start=date(2026, 1, 1), end=date(2026, 1, 2)).send(None)


def test_skip_stops_a_chunk_after_three_failed_pages_in_a_row_and_says_so() -> None:
    """on_error="skip" against pages that keep failing ends, and records what it gave up."""
    gen = walk(DAILY, {"symbol": "BTC"}, limit=1, on_error="skip")
    pages, rows = _drive(
        gen,
        lambda page: (
            {"data": [_candle("BTC", date(2026, 1, 1))]}
            if page.params["page"] == 1
            else Failed(ServerError("HTTP 503", status_code=503))
        ),
    )
    assert [p.params["page"] for p in pages] == [1, 2, 3, 4]
    assert len(rows) == 1
    assert not rows.complete
    assert rows.skipped[-1].label.endswith("page=4 and any page after it")


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-11-01", date(2026, 11, 1)),
        (" 2026-11-01 ", date(2026, 11, 1)),
        ("2026-11-01T23:00:00-05:00", date(2026, 11, 2)),
        ("2026-11-01T01:00:00+05:00", date(2026, 10, 31)),
        ("2026-11-01T23:59:59Z", date(2026, 11, 1)),
        ("2026-11-01 12:00", date(2026, 11, 1)),  # no offset: UTC
    ],
)
def test_a_range_bound_string_is_read_whole_as_a_utc_day(text: str, day: date) -> None:
    assert as_day(text, "start") == day


@pytest.mark.parametrize(
    "text", ["2026-11-01 and then some", "2026-11-01x", "2026-11-01T", "20261101", "01/11/2026"]
)
def test_a_range_bound_with_trailing_or_odd_text_is_refused_by_name(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^end must be") as info:
        as_day(text, "end")
    assert repr(text)[:40] in str(info.value)


def test_rows_are_told_apart_by_the_providers_id_before_the_ticker() -> None:
    """Tokens and timed candles that share a ticker but not an id are all kept; the same id
    seen twice is kept once."""
    tokens = coinguard.get_provider("tokenmetrics").endpoint("tokens")
    listed = [
        {"token_id": 1, "symbol": "UNI", "name": "Uniswap"},
        {"token_id": 2, "symbol": "UNI", "name": "Unicorn"},
        {"token_id": 1, "symbol": "UNI", "name": "Uniswap"},
    ]
    _, rows = _drive(walk(tokens, {}, limit=100), lambda page: {"data": listed})
    assert [r.token_id for r in rows] == [1, 2]

    day = date(2026, 1, 2)
    candles = [
        {**_candle("UNI", day), "token_id": 1},
        {**_candle("UNI", day), "token_id": 2},
        {**_candle("UNI", day), "token_id": 2},
    ]
    _, rows = _drive(walk(DAILY, {"symbol": "UNI"}, limit=100), lambda page: {"data": candles})
    assert sorted(r.token_id for r in rows) == [1, 2]


def test_a_row_whose_id_cannot_be_hashed_is_kept() -> None:
    rows = tidy([SimpleNamespace(id=["a"], symbol="A"), SimpleNamespace(id=["a"], symbol="A")])
    assert len(rows) == 2


def test_skip_records_a_page_that_does_not_fit_the_model_and_goes_on() -> None:
    """A body of the wrong shape is a failed page: skipped and recorded, the walk goes on."""
    bodies = {
        1: {"data": [_candle("BTC", date(2026, 1, 1))]},
        2: {"data": {"not": "a list"}},
        3: {"data": [{"symbol": "BTC", "date": "2026-01-03", "open": "n/a"}]},
        4: {"data": []},
    }
    gen = walk(DAILY, {"symbol": "BTC"}, limit=1, on_error="skip")
    pages, rows = _drive(gen, lambda page: bodies[page.params["page"]])
    assert [p.params["page"] for p in pages] == [1, 2, 3, 4]
    assert len(rows) == 1
    assert rows.pages == 2
    assert [s.label[-6:] for s in rows.skipped] == ["page=2", "page=3"]
    assert "does not fit Candle" in rows.skipped[1].error
    assert "n/a" not in rows.skipped[1].error  # the message names fields, never values
