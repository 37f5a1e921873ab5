"""A scripted first hour: the README's two commands and the CLI a newcomer tries, as subprocesses.

The venv/pip parts of the README commands are what set up this very environment; their Python
parts run here: the quickstart, and a collection of the whole suite (running the suite inside
itself would recurse). `.ci/run` must run the README's test command verbatim.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import coinguard
from docs_support import ROOT, blocks, shape

COINGUARD = str(Path(sys.executable).parent / "coinguard")


def _readme_commands() -> tuple[str, str]:
    demo, tests = (b.body.strip() for b in blocks(ROOT / "README.md") if b.kind == "bash")
    return demo, tests


@pytest.fixture
def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no coinguard settings or provider key, an empty home directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COINGUARD_") and k != "TOKENMETRICS_API_KEY"
    }
    env["HOME"] = str(tmp_path)
    env["COINGUARD_QUOTA_PERSIST"] = "0"
    return env


def _run(
    argv: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_readme_demo_command_runs(newcomer_env: dict[str, str]) -> None:
    """The README's first command ends in the quickstart: it exits 0 and prints the README's
    sample output, line for line up to numbers and fingerprints."""
    demo, _ = _readme_commands()
    python_part = demo.split("&& ")[-1].split()
    assert python_part == [".venv/bin/python", "examples/quickstart.py"]
    proc = _run([sys.executable, python_part[1]], newcomer_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    sample = next(b for b in blocks(ROOT / "README.md") if b.marker == "output of: coinguard demo")
    assert shape(proc.stdout) == shape(sample.body)


def test_readme_test_command_is_what_ci_runs(newcomer_env: dict[str, str]) -> None:
    """`.ci/run` runs the README's test command verbatim; its pytest part collects the suite."""
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci
    assert [line for line in ci if "pytest" in line and not line.startswith("#")] == [tests]
    assert tests.endswith(".venv/bin/python -m pytest")
    proc = _run([sys.executable, "-m", "pytest", "--collect-only", "-q"], newcomer_env)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "tests/test_newcomer.py::test_readme_test_command_is_what_ci_runs" in proc.stdout


def test_bare_help_and_version(newcomer_env: dict[str, str]) -> None:
    """`coinguard`, `coinguard --help` and `coinguard --version` answer, exit 0, on stdout."""
    bare = _run([COINGUARD], newcomer_env)
    helped = _run([COINGUARD, "--help"], newcomer_env)
    version = _run([COINGUARD, "--version"], newcomer_env)
    assert (bare.returncode, helped.returncode, version.returncode) == (0, 0, 0)
    assert bare.stdout == helped.stdout
    assert bare.stdout.startswith("usage: coinguard")
    for command in ("demo", "sandbox", "doctor"):
        assert command in bare.stdout
    assert "``" not in bare.stdout
    assert version.stdout == f"coinguard {coinguard.__version__}\n"
    assert bare.stderr == helped.stderr == version.stderr == ""


def test_sandbox_env_then_python_example_then_doctor(
    newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    """`coinguard sandbox --env`: its lines, applied, make its Python example and `coinguard
    doctor --provider sandbox --trade --verify` work, with no finding on the sandbox's keys."""
    proc = subprocess.Popen(
        [COINGUARD, "sandbox", "--port", "0", "--env"],
        env=newcomer_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        env = dict(newcomer_env)
        while True:
            line = proc.stdout.readline()
            if line.startswith("# then: "):
                example = shlex.split(line.removeprefix("# then: "))
                break
            name, _, value = shlex.split(line)[1].partition("=")
            env[name] = value
        assert example[:2] == ["python", "-c"]
        ran = _run([sys.executable, "-c", example[2]], env, cwd=tmp_path, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert "'symbol': 'BTC'" in ran.stdout
        doctor = _run(
            [COINGUARD, "doctor", "--provider", "sandbox", "--trade", "--verify"],
            env,
            cwd=tmp_path,
            timeout=60,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        proc.communicate()
    assert code == 0
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "No findings." in doctor.stdout
    assert env["COINGUARD_BASE_URL"] in doctor.stdout
    assert env["COINGUARD_READ_KEY"] not in doctor.stdout + doctor.stderr


def test_doctor_in_an_empty_directory_says_what_is_missing(
    newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    """A newcomer's first `coinguard doctor`: exit 1, a missing-key finding naming the
    variables, and a note about the .env file it did not read."""
    (tmp_path / ".env").write_text("COINGUARD_READ_KEY=from-a-dotenv-file\n")
    proc = _run([COINGUARD, "doctor"], newcomer_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "no read key found; looked in: COINGUARD_READ_KEY" in proc.stdout
    assert "a .env file in the working directory was not read" in proc.stdout
    assert "from-a-dotenv-file" not in proc.stdout
    assert "Traceback" not in proc.stderr


#: the modules of every optional extra: `pip install -e .` has none of them
OPTIONAL = (
    "cryptography", "jwt", "redis", "boto3", "botocore", "hvac", "keyring", "google.cloud",
    "azure", "pandas", "tqdm", "matplotlib", "rich", "mcp", "agents", "langchain_core",
    "pydantic_ai", "opentelemetry", "prometheus_client",
)  # fmt: skip


def test_the_demo_runs_without_any_optional_extra(
    newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    """The README's demo command installs coinguard without extras: the quickstart must run
    when none of their modules can be imported (here: blocked), with the same output."""
    runner = tmp_path / "bare.py"
    runner.write_text(
        "import importlib.abc, runpy, sys\n"
        f"OPTIONAL = {OPTIONAL!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if any(name == m or name.startswith(m + '.') for m in OPTIONAL):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        f"runpy.run_path({str(ROOT / 'examples' / 'quickstart.py')!r}, run_name='__main__')\n"
    )
    proc = _run([sys.executable, str(runner)], newcomer_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sample = next(b for b in blocks(ROOT / "README.md") if b.marker == "output of: coinguard demo")
    assert shape(proc.stdout) == shape(sample.body)
