"""``coinguard audit check`` and ``coinguard audit report`` over an audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import coinguard
from coinguard import Attempt
from coinguard._cli import main

if TYPE_CHECKING:
    from conftest import Canary

START = 1_795_780_800.0


def _write(path: Path, records: list[Attempt]) -> None:
    log = coinguard.AuditLog(path)
    for record in records:
        log.attempt(record)
    log.close()


class Charts(HTMLParser):
    """The bars of every chart, by key and series; every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.series = ""
        self.bars: dict[tuple[str, str], list[int]] = {}
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "section":
            self.key = a.get("data-key") or ""
        elif tag == "svg":
            self.series = a.get("data-series") or ""
        elif tag == "rect":
            self.bars.setdefault((self.key, self.series), []).append(int(a["data-value"] or 0))


def _records() -> list[Attempt]:
    first = [Attempt.example(started=START + i * 60, cost=2) for i in range(30)]
    other = [
        Attempt.example(
            started=START + i * 120, key_fp="fp:aaaaaaaaaaaa", status=429, outcome="rate_limited"
        )
        for i in range(10)
    ]
    return first + other


def test_report_prints_a_row_per_key_and_writes_html_charts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has each key's calls, credits and errors; the page a calls and a credits chart
    per key whose bars add up to those numbers, and no external asset."""
    path = tmp_path / "calls.jsonl"
    _write(path, _records())
    page = tmp_path / "report.html"
    assert main(["audit", "report", str(path), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "40 attempts, 2 keys" in out
    row = next(line for line in out.splitlines() if line.startswith("sandbox   fp:05234613d638"))
    # calls, credits, then the most credits in any minute, hour and day (quota use per window)
    assert row.split()[2:7] == ["30", "60", "2", "60", "60"]
    assert "10 rate_limited" in out
    charts = Charts()
    charts.feed(page.read_text())
    assert sum(charts.bars["fp:05234613d638", "calls"]) == 30
    assert sum(charts.bars["fp:05234613d638", "credits"]) == 60
    assert sum(charts.bars["fp:aaaaaaaaaaaa", "calls"]) == 10
    assert len(charts.bars["fp:05234613d638", "calls"]) == len(
        charts.bars["fp:aaaaaaaaaaaa", "calls"]
    )  # one time axis for every key
    assert charts.links == []
    assert "<script" not in page.read_text()


def test_check_exits_1_with_alerts_and_0_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 storm in the log: exit 1 and the alert; thresholds come from the options."""
    path = tmp_path / "calls.jsonl"
    storm = [Attempt.example(started=START + i, status=401, outcome="auth") for i in range(3)]
    _write(path, storm)
    assert main(["audit", "check", str(path)]) == 0
    assert "3 attempts checked, 0 alerts" in capsys.readouterr().out
    assert main(["audit", "check", str(path), "--auth-failures", "3", "--json"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["rule"] == "auth_failures"


def test_check_options_reach_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--trade-hours and --trade-symbols judge orders."""
    path = tmp_path / "calls.jsonl"
    order = Attempt.example(
        started=START - 9 * 3600, scope="trade", method="POST", route="/orders", symbol="DOGE"
    )
    _write(path, [order])
    args = ["audit", "check", str(path), "--trade-hours", "8-20", "--trade-symbols", "BTC,ETH"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "trade_hours" in out
    assert "trade_symbol" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file or a bad option value: exit 2 and a message naming it."""
    assert main(["audit", "check", str(tmp_path / "absent.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["audit", "check", "x.jsonl", "--trade-hours", "late"])
    assert info.value.code == 2


def test_the_report_of_a_real_log_holds_no_key(
    tmp_path: Path, make_canary: Callable[[str], Canary], capsys: pytest.CaptureFixture[str]
) -> None:
    """A server echoing the key in its request id: neither the log nor the report shows it."""
    canary = make_canary("READ")

    def echo(request: httpx.Request) -> httpx.Response:
        key = request.url.params["api_key"]
        return httpx.Response(401, json={}, headers={"x-request-id": f"req-{key}"})

    path = tmp_path / "calls.jsonl"
    provider = coinguard.Provider(
        name="echo", base_url="https://api.echo.test", auth=coinguard.QueryKey("api_key")
    )
    with coinguard.Client(
        provider=provider,
        read_key=canary.value,
        http_client=httpx.Client(transport=httpx.MockTransport(echo)),
        audit=path,
    ) as client:
        for _ in range(6):
            with pytest.raises(coinguard.AuthenticationError):
                client.get("/price", params={"api_key_hint": canary.value})
    page = tmp_path / "report.html"
    assert main(["audit", "report", str(path), "--html", str(page)]) == 0
    texts: list[Any] = [path.read_text(), page.read_text(), capsys.readouterr().out]
    assert [canary.found_in(text) for text in texts] == [[], [], []]
    assert "auth_failures" in page.read_text()


def test_usage_is_the_report_under_its_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.jsonl"
    _write(path, _records())
    assert main(["usage", str(path)]) == 0
    by_usage = capsys.readouterr().out
    assert main(["audit", "report", str(path)]) == 0
    assert capsys.readouterr().out == by_usage
    assert "40 attempts, 2 keys" in by_usage


def test_in_a_terminal_the_report_is_a_rich_table() -> None:
    """On a TTY (with the report extra) the same rows come as a table with aligned columns
    and the alert count as its caption."""
    import io

    from rich.console import Console

    from coinguard._report import rich_report, usage_of

    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    console.print(rich_report(usage_of(_records())))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "coinguard usage: 40 attempts, 2 keys" in text
    row = next(line for line in text.splitlines() if "fp:05234613d638" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:4] == ["sandbox", "fp:05234613d638", "30", "60"]
    assert "alerts: 0" in text
