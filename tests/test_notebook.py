"""The example notebook, executed by a real Jupyter kernel, with assertions on its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def _outputs(nb: Any) -> list[Any]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def test_the_notebook_runs_without_an_error_cell(executed: Any) -> None:
    """Every code cell ran; none produced an error output."""
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert [o for o in _outputs(executed) if o.output_type == "error"] == []


def test_the_month_of_candles_has_every_row_and_the_promised_frame(executed: Any) -> None:
    """The summary cell: 20 symbols x 30 days, OHLCV columns, a UTC index, nothing skipped."""
    lines = [
        line
        for o in _outputs(executed)
        if o.output_type == "stream" and o.name == "stdout"
        for line in o.text.splitlines()
        if line.startswith("{")
    ]
    summary = json.loads(lines[-1])
    assert summary == {
        "rows": 600,
        "symbols": 20,
        "days": 30,
        "columns": ["close", "high", "low", "open", "symbol", "volume"],
        "index_tz": "UTC",
        "complete": True,
        "price_rows": 20,
    }


def test_the_notebook_shows_tables_quota_bars_and_a_plot(executed: Any) -> None:
    """Rich outputs: HTML tables (the client, quota bars, frames) and a PNG plot."""
    rich = [o for o in _outputs(executed) if o.output_type in ("execute_result", "display_data")]
    html = [o.data["text/html"] for o in rich if "text/html" in o.data]
    assert any("<caption>Client</caption>" in h for h in html)
    assert sum("quota sandbox" in h or "quota coingecko" in h for h in html) == 2
    assert any("price_coingecko" in h for h in html)
    assert any("image/png" in o.data for o in rich)
    assert any(o.data.get("text/plain") == "True" for o in rich)  # both providers agree
