"""The HTML usage report in a real headless Chromium: it renders, its charts have the expected
series and bars, and no key is on the page.

Needs Debian's ``chromium-headless-shell`` (or ``chromium``), installed by ``.ci/run``; skipped
without it unless ``COINGUARD_REQUIRE_SERVICES=1``, which makes the absence a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import coinguard
from coinguard._cli import main

if TYPE_CHECKING:
    from conftest import Canary

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")


@pytest.fixture
def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("COINGUARD_REQUIRE_SERVICES") == "1":
        pytest.fail("a headless Chromium is required (COINGUARD_REQUIRE_SERVICES=1)")
    pytest.skip("no headless Chromium installed (Debian: chromium-headless-shell)")


def _run(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Rendered(HTMLParser):
    """Bars per (key, series) in the DOM the browser serialised."""

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.series = ""
        self.bars: dict[tuple[str, str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.key = a.get("data-key") or ""
        elif tag == "svg":
            self.series = a.get("data-series") or ""
        elif tag == "rect":
            where = (self.key, self.series)
            self.bars[where] = self.bars.get(where, 0) + int(a.get("data-value") or 0)


def test_the_report_renders_in_a_real_browser_without_a_key(
    browser: str,
    tmp_path: Path,
    make_canary: Callable[[str], Canary],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Twelve calls by one key (four of them 500): the rendered page has a calls chart summing
    to 12 and a credits chart, a screenshot is produced, and the key is nowhere."""
    canary = make_canary("READ")
    answers = iter([200] * 8 + [500] * 4)

    def answer(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"echo": request.headers["x-api-key"]})

    path = tmp_path / "calls.jsonl"
    provider = coinguard.Provider(
        name="rendered",
        base_url="https://api.rendered.test",
        quota=coinguard.QuotaPolicy([coinguard.Window.per_minute(1000)]),
    )
    with coinguard.Client(
        provider=provider,
        read_key=canary.value,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
        max_retries=0,
        audit=path,
    ) as client:
        for _ in range(12):
            with contextlib.suppress(coinguard.ServerError):
                client.get("/price")
    page = tmp_path / "report.html"
    assert main(["audit", "report", str(path), "--html", str(page)]) == 0
    capsys.readouterr()
    dom = _run(browser, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-500:]
    rendered = Rendered()
    rendered.feed(dom.stdout)
    fp = coinguard.fingerprint(canary.value)
    assert rendered.bars[fp, "calls"] == 12
    assert rendered.bars[fp, "credits"] == 12
    assert canary.found_in(dom.stdout) == []
    shot = tmp_path / "report.png"
    done = _run(browser, f"--screenshot={shot}", "--window-size=900,900", page.as_uri())
    assert done.returncode == 0, done.stderr[-500:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
