"""The batch helper's parts that do no network I/O: the checkpoint file and the result.

``client.batch(items, fetch)`` runs ``fetch(item)`` for every item with bounded concurrency;
the client's one quota paces every worker. Each finished item is appended to the checkpoint
(JSON Lines, one ``{"key", "model", "value"}`` object a line, flushed at once), so a batch run
again after a crash skips what was done and spends no credit on it. Failed items are collected
in :attr:`BatchResult.errors` and never checkpointed: a re-run tries them again. Neither are
:class:`Rows` with skipped pages (not finished), nor a result with no JSON form (its error is
in :attr:`BatchResult.errors`, the result stays in the results).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from . import _models
from ._exceptions import ConfigurationError
from ._frames import frame_of, html_table, require_pandas
from ._paging import Rows

__all__ = ["BatchResult", "Checkpoint", "item_keys"]


def item_keys(items: Sequence[Any], key: Callable[[Any], str] | None) -> list[str]:
    """The checkpoint key of each item (``str(item)`` by default); keys must be unique."""
    keys = [key(item) if key is not None else str(item) for item in items]
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        twice = next(k for k in keys if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ConfigurationError(f"batch items must have unique keys; {twice!r} appears twice")
    return keys


def _encode(value: Any) -> tuple[str | None, Any]:
    if isinstance(value, Rows):
        value = list(value)  # its rows (none, for a symbol without data), as any list of rows
    rows = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if rows and all(isinstance(r, BaseModel) for r in rows):
        kinds = {type(r) for r in rows}
        if len(kinds) == 1:
            kind = kinds.pop()
            if getattr(_models, kind.__name__, None) is kind:
                return kind.__name__, [r.model_dump(mode="json") for r in rows]
    if isinstance(value, BaseModel) and getattr(_models, type(value).__name__, None) is type(value):
        return type(value).__name__ + ":one", value.model_dump(mode="json")
    return None, to_jsonable_python(value)


def _decode(model: str | None, value: Any) -> Any:
    if model is None:
        return value
    name, _, one = model.partition(":")
    cls = getattr(_models, name)
    if one:
        return cls.model_validate(value)
    return [cls.model_validate(v) for v in value]


class Checkpoint:
    """Finished items of a batch, in a JSON Lines file; safe to append from many threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.done: dict[str, Any] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    break  # a line cut short by a crash: that item is fetched again
                try:
                    entry = json.loads(line)
                    self.done[entry["key"]] = _decode(entry["model"], entry["value"])
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise ConfigurationError(
                        f"checkpoint {self.path}: line {number} is not a batch entry"
                    ) from None

    def add(self, key: str, value: Any) -> bool:
        """Record one finished item (written and flushed before this returns).

        A :class:`Rows` with skipped pages is not recorded (False): it is not finished, and a
        re-run fetches it again. A result with no JSON form is a :class:`ConfigurationError`
        naming the item and the type, and nothing is written.
        """
        if isinstance(value, Rows) and not value.complete:
            return False
        try:
            model, data = _encode(value)
            line = json.dumps({"key": key, "model": model, "value": data}, separators=(",", ":"))
        except (PydanticSerializationError, TypeError, ValueError):
            raise ConfigurationError(
                f"batch item {key!r:.60}: its result, a {type(value).__name__}, cannot be "
                f"written to the checkpoint {self.path.name}; return JSON data, coinguard models "
                f"or rows from fetch (the result is kept; a re-run fetches this item again)"
            ) from None
        with self._lock:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.done[key] = value
        return True


class BatchResult(Sequence[Any]):
    """Results in input order (None where an item failed), the errors by item, and counts.

    ``errors`` maps an item's index to its exception (an item whose result the checkpoint could
    not write has both: its result, and the error saying it was not recorded); ``resumed``
    counts the items taken from the checkpoint (no request sent for them).
    """

    def __init__(
        self,
        items: Sequence[Any],
        results: list[Any],
        errors: dict[int, BaseException],
        resumed: int,
    ) -> None:
        self.items = list(items)
        self.results = results
        self.errors = errors
        self.resumed = resumed

    @property
    def ok(self) -> bool:
        """True when every item succeeded."""
        return not self.errors

    def __getitem__(self, index: Any) -> Any:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def to_pandas(self) -> Any:
        """All successful rows as one DataFrame (each result a list of rows, or a row)."""
        require_pandas()
        rows: list[Any] = []
        for result in self.results:
            if result is None:
                continue
            rows.extend(result if isinstance(result, Sequence) else [result])
        return frame_of(rows)

    @property
    def df(self) -> Any:
        """Same as :meth:`to_pandas`."""
        return self.to_pandas()

    def __repr__(self) -> str:
        failed = f", {len(self.errors)} failed" if self.errors else ""
        return f"BatchResult({len(self.items)} items{failed}, {self.resumed} from the checkpoint)"

    def _repr_html_(self) -> str:
        """The counts, and a table of the first failed items (redacted error texts)."""
        rows = [
            {"item": self.items[index], "error": f"{type(error).__name__}: {error}"}
            for index, error in list(self.errors.items())[:10]
        ]
        return html_table(repr(self), rows)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        lines = [repr(self)]
        for index, error in list(self.errors.items())[:10]:
            lines.append(f"  {self.items[index]!r}: {type(error).__name__}: {error}")
        p.text("\n".join(lines))


def check_workers(workers: int) -> int:
    """A worker count is a positive int."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(f"workers must be a positive int, got {workers!r}")
    return workers
