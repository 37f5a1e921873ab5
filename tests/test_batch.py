"""The batch checkpoint: what it writes, what it reads back, and torn or foreign lines."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import coinguard
from coinguard import Candle, ConfigurationError
from coinguard._batch import Checkpoint, item_keys
from coinguard._paging import PageFailure, Rows
from coinguard.sandbox import Sandbox


def test_models_and_plain_values_come_back_as_they_were(tmp_path: Path) -> None:
    """Rows of a model come back as that model; plain JSON values as themselves."""
    path = tmp_path / "c.jsonl"
    candle = Candle(time="2026-11-01", open=1, high=2, low=1, close=1.5, symbol="BTC")
    first = Checkpoint(path)
    first.add("BTC", [candle])
    first.add("n", {"count": 3})
    again = Checkpoint(path)
    assert again.done["BTC"] == [candle]
    assert again.done["n"] == {"count": 3}


def test_a_line_torn_by_a_crash_is_dropped_not_trusted(tmp_path: Path) -> None:
    """The last line cut short (no newline) is ignored: that item is fetched again."""
    path = tmp_path / "c.jsonl"
    Checkpoint(path).add("a", 1)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "b", "model": null, "val')
    assert Checkpoint(path).done == {"a": 1}


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """A whole line that is not an entry: an error naming the file and line, not a guess."""
    path = tmp_path / "c.jsonl"
    path.write_text('{"key": "a", "model": null, "value": 1}\nhello\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="line 2 is not a batch entry"):
        Checkpoint(path)


def test_item_keys_must_be_unique() -> None:
    """Two items with one key would share a checkpoint line: refused up front."""
    assert item_keys(["a", "b"], None) == ["a", "b"]
    with pytest.raises(ConfigurationError, match="'a' appears twice"):
        item_keys(["a", "b", "a"], None)


def test_rows_with_skipped_pages_are_not_recorded_as_done(tmp_path: Path) -> None:
    """A Rows with a skipped page is not finished: a re-run must fetch it again."""
    path = tmp_path / "c.jsonl"
    candle = Candle(time="2026-11-01", open=1, high=2, low=1, close=1.5, symbol="BTC")
    partial = Rows("daily_ohlcv", [candle], skipped=[PageFailure("page=2", "HTTP 503")])
    whole = Rows("daily_ohlcv", [candle])
    first = Checkpoint(path)
    assert first.add("BTC", partial) is False
    assert first.add("ETH", whole) is True
    assert set(Checkpoint(path).done) == {"ETH"}


def test_a_result_with_no_json_form_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.jsonl"
    with pytest.raises(ConfigurationError, match=r"batch item 'ETH'.* a _Opaque, cannot be"):
        Checkpoint(path).add("ETH", _Opaque())
    assert Checkpoint(path).done == {}


class _Opaque:
    pass


def _client(sb: Sandbox) -> coinguard.Client:
    return coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read)


@pytest.mark.timeout(60)
def test_a_batch_fetches_an_item_with_skipped_pages_again_on_a_re_run(tmp_path: Path) -> None:
    calls: list[str] = []

    def fetch(symbol: str) -> Rows:
        calls.append(symbol)
        skipped = [PageFailure("page=2", "HTTP 503")] if symbol == "ETH" else []
        return Rows("price", [], skipped=skipped)

    path = tmp_path / "batch.jsonl"
    with Sandbox() as sb, _client(sb) as client:
        first = client.batch(["BTC", "ETH"], fetch, checkpoint=path, progress=False)
        again = client.batch(["BTC", "ETH"], fetch, checkpoint=path, progress=False)
    assert first.ok
    assert not first[1].complete
    assert again.resumed == 1
    assert sorted(calls) == ["BTC", "ETH", "ETH"]


@pytest.mark.timeout(60)
def test_an_async_batch_result_with_no_json_form_is_that_items_error(tmp_path: Path) -> None:
    async def fetch(symbol: str) -> object:
        return _Opaque() if symbol == "ETH" else {"symbol": symbol}

    async def main(sb: Sandbox) -> coinguard.BatchResult:
        async with coinguard.AsyncClient(
            provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read
        ) as client:
            return await client.batch(
                ["BTC", "ETH", "SOL"], fetch, checkpoint=tmp_path / "b.jsonl", progress=False
            )

    with Sandbox() as sb:
        done = anyio.run(main, sb)
    assert list(done.errors) == [1]
    assert isinstance(done.errors[1], ConfigurationError)
    assert isinstance(done[1], _Opaque)  # the result is kept beside its error
    assert done[2] == {"symbol": "SOL"}
    assert set(Checkpoint(tmp_path / "b.jsonl").done) == {"BTC", "SOL"}


def test_rows_with_no_row_are_recorded_as_an_empty_list(tmp_path: Path) -> None:
    """A complete pagination that found nothing (a symbol without data) is finished too."""
    path = tmp_path / "c.jsonl"
    assert Checkpoint(path).add("NOPE", Rows("daily_ohlcv", [])) is True
    assert Checkpoint(path).done == {"NOPE": []}
