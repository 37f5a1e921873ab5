"""The batch helper over real sockets: order kept, errors collected, the quota pacing every
worker, and a crash mid-batch resumed from the checkpoint without a second request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import coinguard
from coinguard import APIStatusError, Candle, PaginationError
from coinguard.sandbox import Sandbox
from coinguard.sandbox._data import Market

SYMBOLS = [t.symbol for t in Market(7).tokens]  # the sandbox's 50 tokens
RANGE = {"start": "2026-11-01", "end": "2026-11-10", "progress": False}


class Crash(BaseException):
    """Stands for the process dying (Ctrl+C, a kill) in the middle of a batch."""


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _client(sb: Sandbox) -> coinguard.Client:
    return coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read)


def test_results_in_input_order_and_errors_collected_per_item(sb: Sandbox) -> None:
    """50 symbols and one unknown: 50 results in order, one error naming its item; no 429."""
    items = [*SYMBOLS[:25], "NOPE", *SYMBOLS[25:]]
    with _client(sb) as c:
        done = c.batch(items, lambda s: c.ohlcv(s, **RANGE), workers=8, progress=False)
    assert not done.ok
    assert list(done.errors) == [25]
    assert isinstance(done.errors[25], PaginationError)
    assert isinstance(done.errors[25].error, APIStatusError)
    assert done[25] is None
    for symbol, rows in zip(items, done, strict=True):
        if symbol != "NOPE":
            assert [r.symbol for r in rows] == [symbol] * 10
    assert sb.ledger.count(status=429) == 0
    assert sb.ledger.violations() == []
    assert len(done.to_pandas()) == 500


def test_a_crash_mid_batch_resumes_without_spending_credits_again(
    sb: Sandbox, tmp_path: Path
) -> None:
    """The 20th fetch crashes the batch; the re-run fetches only the rest: one request an item."""
    checkpoint = tmp_path / "batch.jsonl"
    calls, lock = [0], threading.Lock()

    def crashing(symbol: str) -> Any:
        with lock:
            calls[0] += 1
            if calls[0] == 20:
                raise Crash
        return c.ohlcv(symbol, **RANGE)

    with _client(sb) as c:
        with pytest.raises(Crash):
            c.batch(SYMBOLS, crashing, workers=4, checkpoint=checkpoint, progress=False)
        recorded = len(checkpoint.read_text().splitlines())
        sent_before = sb.ledger.count(status=200)
        assert recorded == sent_before  # every answered item was written down
        assert 0 < recorded < len(SYMBOLS)
        done = c.batch(
            SYMBOLS, lambda s: c.ohlcv(s, **RANGE), workers=4, checkpoint=checkpoint, progress=False
        )
    assert done.ok
    assert done.resumed == recorded
    assert sb.ledger.count(status=200) == len(SYMBOLS)  # no item fetched twice
    assert all(isinstance(r, Candle) for rows in done for r in rows)
    assert [rows[0].symbol for rows in done] == SYMBOLS


@pytest.mark.anyio
async def test_async_batch_keeps_order_and_checkpoints(sb: Sandbox, tmp_path: Path) -> None:
    """AsyncClient.batch: input order, and a second run answers from the checkpoint only."""
    checkpoint = tmp_path / "prices.jsonl"
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read
    ) as c:

        async def price(symbol: str) -> Any:
            return await c.prices(symbol)

        first = await c.batch(SYMBOLS[:20], price, workers=5, checkpoint=checkpoint)
        again = await c.batch(SYMBOLS[:20], price, workers=5, checkpoint=checkpoint)
    assert [rows[0].symbol for rows in first] == SYMBOLS[:20]
    assert [rows[0].price for rows in again] == [rows[0].price for rows in first]
    assert again.resumed == 20
    assert sb.ledger.count(status=200) == 20
