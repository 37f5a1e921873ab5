"""Notebook helpers: DataFrames, progress bars, visible quota waits, rich reprs, running loops."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import coinguard
from coinguard import ConfigurationError, QuotaPolicy, Window
from coinguard.sandbox import Sandbox


class FakeClock:
    """A clock whose sleep advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _client(sb: Sandbox, **kwargs: Any) -> coinguard.Client:
    return coinguard.Client(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, **kwargs
    )


def test_ohlcv_frame_has_a_utc_index_float_columns_and_string_symbols(sb: Sandbox) -> None:
    """to_pandas(): UTC DatetimeIndex named time, float64 OHLCV, str symbols; .df is the same."""
    with _client(sb) as c:
        rows = c.ohlcv(["BTC", "ETH"], start="2026-11-01", end="2026-11-10", progress=False)
    frame = rows.to_pandas()
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "time"
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["symbol"])
    assert len(frame) == 20
    assert frame.equals(rows.df)


def test_without_pandas_the_error_names_the_extra(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas missing: a ConfigurationError that says which extra to install."""
    with _client(sb) as c:
        rows = c.prices(["BTC"])
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match=r"coinguard\[pandas\]"):
        rows.to_pandas()


def test_a_quota_wait_over_a_second_is_logged_and_shown_on_the_bar(
    sb: Sandbox, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2/min quota over three pages: the wait is an INFO line and the bar's postfix."""
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="coinguard.quota")
    with _client(
        sb,
        quota=QuotaPolicy([Window.per_minute(2)]),
        max_wait=600.0,
        retry=coinguard.RetryPolicy(deadline=600.0),
        clock=clock.time,
        sleep=clock.sleep,
    ) as c:
        rows = c.paginate("tokens", limit=20, progress=True)
    assert len(rows) == 50
    assert any(s > 1 for s in clock.sleeps)
    assert "waiting 60.0 s for the 2/min window" in caplog.text
    assert "waiting 60.0 s for the 2/min window" in capsys.readouterr().err


def test_progress_false_shows_no_bar(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """progress=False: nothing on stderr."""
    with _client(sb) as c:
        c.paginate("tokens", limit=20, progress=False)
    assert capsys.readouterr().err == ""


def test_quota_status_client_and_rows_render_for_notebooks(sb: Sandbox) -> None:
    """HTML and pretty reprs: a bar per quota window; the client by fingerprint, never the key."""
    with _client(sb) as c:
        rows = c.paginate("price", symbol="BTC,ETH", progress=False)
        status = c.quota
        assert status is not None
        quota_html = status._repr_html_()
        client_html = c._repr_html_()
        client_text: list[str] = []

        class Printer:
            def text(self, value: str) -> None:
                client_text.append(value)

        c._repr_pretty_(Printer(), False)
    assert quota_html.count("<tr>") == 1 + len(status.windows)
    assert "width:" in quota_html
    assert "fp:" in client_html
    assert "<td>off</td>" in client_html
    assert "trading: off" in client_text[0]
    assert sb.keys.read not in client_html + client_text[0]
    assert "<table" in rows._repr_html_()
    assert "BTC" in rows._repr_html_()
    with _client(sb) as c:
        done = c.batch(["BTC", "NOPE"], lambda s: c.prices(s), progress=False)
    assert "1 failed" in done._repr_html_()
    assert "NOPE" in done._repr_html_()


def test_sync_client_works_inside_a_running_event_loop(sb: Sandbox) -> None:
    """As in Jupyter: the sync client called from inside a coroutine on a running loop."""

    async def notebook_cell() -> list[str]:
        with _client(sb) as c:
            return [p.symbol for p in c.prices(["BTC", "ETH"])]

    assert asyncio.run(notebook_cell()) == ["BTC", "ETH"]
