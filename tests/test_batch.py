"""The batch checkpoint: what it writes, what it reads back, and torn or foreign lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinguard import Candle, ConfigurationError
from coinguard._batch import Checkpoint, item_keys


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
