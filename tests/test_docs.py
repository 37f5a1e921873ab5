"""Every code block in README.md and docs/*.md is run or checked, so the docs cannot drift.

The rules are in CONTRIBUTING.md ("Code blocks in the docs"); in short: ``python`` blocks run
against a sandbox, ``console`` sessions run and their output is compared, ``text`` and ``json``
blocks are compared with what they claim to show, ``bash``/``yaml`` commands must name options
that exist. No block is left unchecked: an unknown kind or an unexplained block fails.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import importlib
import inspect
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import coinguard
from coinguard._cli import _build_parser
from coinguard.sandbox import Sandbox
from docs_support import (
    DOC_FILES,
    KINDS,
    NOT_RUN,
    ROOT,
    Block,
    all_blocks,
    blocks,
    docs_environment,
    environment,
    shape,
)

README_COMMANDS = {
    "python3 -m venv .venv && .venv/bin/pip install -e . "
    "&& .venv/bin/python examples/quickstart.py",
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest',
}  # run by tests/test_newcomer.py
BLOCKS = all_blocks()


def _of(kind: str) -> list[Block]:
    return [b for b in BLOCKS if b.kind == kind]


@pytest.fixture
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh sandbox, the environment `coinguard sandbox --env` prints for it, a temp cwd."""
    monkeypatch.chdir(tmp_path)
    with Sandbox() as sandbox:
        yield docs_environment(sandbox, tmp_path)


def _bash(command: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_every_block_has_a_known_kind() -> None:
    """Each fence names one of the kinds the rules cover; there are blocks to check at all."""
    assert len(BLOCKS) > 20
    assert [str(b) for b in BLOCKS if b.kind not in KINDS] == []


def test_docs_import_public_names_only() -> None:
    """No block teaches an import from a private module (coinguard._something)."""
    private = [str(b) for b in BLOCKS if re.search(r"\bcoinguard\._\w", b.body)]
    assert private == []


def test_no_stray_text_in_the_docs() -> None:
    """Prose has no leftover editing tokens (a run of capitals with digits, like MARGIN05)."""
    for path in DOC_FILES:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert re.findall(r"\b[A-Z]{3,}\d+\b", text) == [], path.name


# -- python ----------------------------------------------------------------------------------


def _coinguard_names(tree: ast.AST) -> list[str]:
    """Names a block takes from coinguard: imports and coinguard.X attributes."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coinguard"):
            names += [f"{node.module}:{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "coinguard"
        ):
            names.append(f"coinguard:{node.attr}")
    return names


def _resolve(name: str) -> bool:
    module, _, attr = name.partition(":")
    return hasattr(importlib.import_module(module), attr)


def _run_python(block: Block, namespace: dict[str, Any], tmp: Path, env: dict[str, str]) -> str:
    """Run one block in the file's namespace; return what it printed."""
    code = compile(block.body, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    before = set(namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))  # noqa: S307 - our own docs, compiled above
        else:
            exec(code, namespace)  # noqa: S102 - our own docs, compiled above
    tests = [n for n in set(namespace) - before if n.startswith("test_")]
    if tests:  # a pytest example: run it as pytest would, with the coinguard plugin
        path = tmp / f"test_docs_example_{block.line}.py"
        path.write_text(block.body, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{len(tests)} passed" in done.stdout
    return out.getvalue()


PY_FILES = sorted({b.path for b in _of("python")}, key=str)


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: p.name)
def test_python_blocks_run_against_the_sandbox(
    path: Path, docs_env: dict[str, str], tmp_path: Path
) -> None:
    """A file's python blocks run in order, in one namespace, with the sandbox environment;
    a text block marked 'output of: python block above' matches what that block printed."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    printed: str | None = None
    with environment(docs_env):
        for block in blocks(path):
            if block.kind == "python":
                tree = ast.parse(block.body)
                unknown = [n for n in _coinguard_names(tree) if not _resolve(n)]
                assert unknown == [], f"{block}: {unknown}"
                if block.body.startswith(NOT_RUN):
                    assert block.body.splitlines()[0].removeprefix(NOT_RUN).strip(), str(block)
                    continue
                printed = _run_python(block, namespace, tmp_path, docs_env)
            elif block.marker == "output of: python block above":
                assert printed is not None, f"{block}: no python block above"
                assert shape(block.body) == shape(printed), str(block)


def test_not_run_blocks_are_few_and_explained() -> None:
    """Blocks that cannot run against a sandbox say why on their first line; they stay rare."""
    marked = [b for b in _of("python") if b.body.startswith(NOT_RUN)]
    assert len(marked) <= 2, [str(b) for b in marked]
    for block in marked:
        assert len(block.body.splitlines()[0]) > len(NOT_RUN) + 10, str(block)


# -- console sessions and outputs ------------------------------------------------------------


def _session(block: Block) -> tuple[list[str], str]:
    commands, expected = [], []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        else:
            expected.append(line)
    return commands, "\n".join(expected)


@pytest.mark.parametrize("block", _of("console"), ids=str)
def test_console_sessions_print_what_they_show(
    block: Block, docs_env: dict[str, str], tmp_path: Path
) -> None:
    """A console block's '$ ' commands run in one shell; the output has the same shape."""
    commands, expected = _session(block)
    assert commands, str(block)
    assert shape(_bash("\n".join(commands), docs_env, tmp_path)) == shape(expected)


OUTPUTS = [b for b in BLOCKS if (b.marker or "").startswith("output of: ") and b.kind != "python"]


@pytest.mark.parametrize(
    "block", [b for b in OUTPUTS if b.marker != "output of: python block above"], ids=str
)
def test_outputs_match_their_command(
    block: Block, docs_env: dict[str, str], tmp_path: Path
) -> None:
    """A text block marked 'output of: CMD' has the shape of CMD's output; a json block the
    same keys at every level."""
    assert block.marker is not None
    actual = _bash(block.marker.removeprefix("output of: "), docs_env, tmp_path)
    if block.kind == "json":
        assert _keys(json.loads(block.body)) == _keys(json.loads(actual))
    else:
        assert shape(block.body) == shape(actual)


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return None


# -- text, bash and yaml: what each must be --------------------------------------------------


def _subparser(command: str) -> argparse.ArgumentParser:
    """The parser of ``COMMAND`` or ``COMMAND ACTION`` (``audit check``)."""
    parser = _build_parser()
    for word in command.split():
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[word]
    return parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        opt
        for a in parser._actions
        for opt in a.option_strings
        if opt.startswith("--") and opt not in ("--help",)
    }


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def _usage_command(block: Block) -> str | None:
    match = re.match(r"coinguard (\w+(?: (?!FILE\b)\w+)?) (?:FILE )?\[", block.body)
    return match.group(1) if match else None


@pytest.mark.parametrize("block", _of("text"), ids=str)
def test_text_blocks_say_what_they_are(block: Block) -> None:
    """A text block is a command's usage (checked both ways against the parser), a marked
    output (checked above) or a marked signature (checked against the function)."""
    command = _usage_command(block)
    if command is not None:
        assert _flags(block.body) == _options(_subparser(command)), str(block)
    elif (block.marker or "").startswith("signature of: "):
        target = (block.marker or "").removeprefix("signature of: ")
        module, _, name = target.rpartition(".")
        func = getattr(importlib.import_module(module), name)
        documented = set(re.findall(r"^\s*(\w+):", block.body, flags=re.MULTILINE))
        assert documented == set(inspect.signature(func).parameters), str(block)
    else:
        assert block in OUTPUTS, f"{block}: a text block needs a <!-- docs: ... --> marker"


def _command_lines(block: Block) -> list[str]:
    if block.kind == "yaml":
        return [m.strip() for m in re.findall(r"run: (.+)", block.body)]
    return [line for line in block.body.splitlines() if line.strip()]


@pytest.mark.parametrize("block", _of("bash") + _of("yaml"), ids=str)
def test_commands_name_options_that_exist(block: Block) -> None:
    """bash/yaml commands: the README's two are run by the newcomer test; coinguard and
    benchmark commands use only options their --help lists; nothing else is allowed."""
    for line in _command_lines(block):
        command = line.split("#")[0].split(">")[0].strip()
        if command in README_COMMANDS:
            assert block.path.name == "README.md", str(block)
        elif command.startswith("coinguard "):
            sub = command.split()[1]
            assert _flags(command) <= _options(_subparser(sub)), f"{block}: {command}"
        elif command.startswith("python benchmarks/"):
            script = ROOT / shlex.split(command)[1]
            assert script.is_file(), f"{block}: {script}"
            help_text = subprocess.run(
                [sys.executable, str(script), "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert _flags(command) <= _flags(help_text), f"{block}: {command}"
        elif command.startswith("cat "):
            continue  # shows a file the block itself wrote
        else:
            pytest.fail(f"{block}: no rule for the command {command!r}")


def test_the_readme_has_exactly_its_two_commands() -> None:
    """The README's bash blocks are exactly the install-and-demo and install-and-test lines."""
    readme = [b.body.strip() for b in blocks(ROOT / "README.md") if b.kind == "bash"]
    assert sorted(readme) == sorted(README_COMMANDS)


def test_public_names_used_in_prose_exist() -> None:
    """`coinguard.Name` classes quoted in prose are real attributes of the package (lower-case
    names there are mostly loggers, such as `coinguard.keys`)."""
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for name in set(re.findall(r"`coinguard\.([A-Z]\w*)", text)):
            assert hasattr(coinguard, name), f"{path.name}: coinguard.{name}"


def test_client_quota_docstring_matches_str(coinguard_sandbox: Sandbox) -> None:
    """The table in Client.quota's docstring has the shape print(client.quota) really has."""
    doc = inspect.getdoc(coinguard.Client.quota) or ""
    example = doc.split(">>> print(client.quota)  # doctest: +SKIP\n")[1]
    sb = coinguard_sandbox
    with coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read) as c:
        c.get("/price", params={"symbol": "BTC"})
        c.get("/daily-ohlcv", params={"symbol": "BTC", "limit": 3})
        assert shape(example) == shape(str(c.quota))
