"""Reading the fenced blocks of README.md and docs/*.md, and the environment they run in.

The convention every block follows is written down in CONTRIBUTING.md ("Code blocks in the
docs"); tests/test_docs.py enforces it and tests/test_newcomer.py runs the README's commands.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coinguard._cli import _exports
from coinguard.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
KINDS = ("python", "bash", "console", "text", "json", "yaml")
NOT_RUN = "# docs: not run: "
_MARKER = re.compile(r"^<!-- docs: (.+?) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string, its text and the marker above it."""

    path: Path
    line: int
    kind: str
    body: str
    marker: str | None

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    kind, marker, body = "", None, list[str]()
    for number, line in enumerate(lines, 1):
        if start is None and line.startswith("```"):
            start, kind, body = number, line[3:].strip(), []
            above = [text for text in lines[: number - 1] if text.strip()]
            match = _MARKER.match(above[-1].strip()) if above else None
            marker = match.group(1) if match else None
        elif start is not None and line.startswith("```"):
            found.append(Block(path, start, kind, "\n".join(body) + "\n", marker))
            start = None
        elif start is not None:
            body.append(line)
    assert start is None, f"{path}:{start}: unclosed code block"
    return found


def all_blocks() -> list[Block]:
    """The blocks of README.md and every docs/*.md file."""
    return [block for path in DOC_FILES for block in blocks(path)]


def shape(text: str) -> list[str]:
    """Text with what differs per run (numbers, fingerprints, keys, spacing) made equal."""
    out = []
    for line in text.strip("\n").splitlines():
        line = re.sub(r"fp:[0-9a-f]{12}", "fp:X", line)
        line = re.sub(r"sbx_[\w-]+", "KEY", line)
        line = re.sub(r"\d[\d,]*(\.\d+)?", "N", line)
        out.append(re.sub(r"\s+", " ", line).strip())
    return out


def docs_environment(sandbox: Sandbox, tmp: Path) -> dict[str, str]:
    """What the blocks run with: no key or coinguard setting of the machine, plus exactly the
    lines ``coinguard sandbox --env`` prints for this sandbox."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("COINGUARD_") and name != "TOKENMETRICS_API_KEY"
    }
    for line in _exports(sandbox):
        name, _, value = shlex.split(line)[1].partition("=")
        env[name] = value
    env["COINGUARD_QUOTA_PERSIST"] = str(tmp / "quota-journal.sqlite3")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Replace os.environ with ``env`` for the duration."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
