"""Rows as DataFrames and HTML: pandas is an optional extra, imported only when asked for.

Timed rows get a UTC ``DatetimeIndex`` named ``time``; prices and volumes are ``float64``,
symbols ``str`` (pandas 2 and 3 alike: the dtypes are set, never inferred).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ._exceptions import ConfigurationError

__all__ = ["frame_of", "html_table", "require_pandas"]

_FLOATS = ("open", "high", "low", "close", "volume", "price", "market_cap", "current_price")
_STRINGS = ("symbol", "id", "name", "currency")


def require_pandas() -> Any:
    """The pandas module, or a clear error naming the extra to install."""
    try:
        import pandas
    except ImportError:
        raise ConfigurationError(
            "DataFrames need pandas: pip install 'coinguard[pandas]'"
        ) from None
    return pandas


def frame_of(rows: Sequence[Any]) -> Any:
    """A DataFrame of model rows (nested values such as quotes stay objects)."""
    pd = require_pandas()
    records = [row.model_dump() if hasattr(row, "model_dump") else dict(row) for row in rows]
    frame = pd.DataFrame.from_records(records)
    for name in _FLOATS:
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in _STRINGS:
        if name in frame.columns:
            frame[name] = frame[name].astype(str)
    when = next((n for n in ("time", "date") if n in frame.columns), None)
    if when is not None:
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(when), utc=True), name="time")
    return frame


def html_table(caption: str, rows: Sequence[dict[str, Any]]) -> str:
    """A small escaped HTML table for notebooks (every value through :func:`html.escape`)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
