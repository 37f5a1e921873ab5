"""Shared fixtures: canary keys, full-depth log capture, loopback HTTP servers, anyio backend."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest

import coinguard


@pytest.fixture(autouse=True)
def _fresh_quota(coinguard_fresh_quota: None) -> None:
    """Each test starts with an empty process-wide memory quota store."""


@pytest.fixture(autouse=True)
def _quota_journal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """Month windows persist by default: tests keep their journal out of the user's cache."""
    if "COINGUARD_QUOTA_PERSIST" not in os.environ:
        path = tmp_path_factory.mktemp("journal") / "quota.sqlite3"
        monkeypatch.setenv("COINGUARD_QUOTA_PERSIST", str(path))


# -- canary keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Canary:
    """A distinctive fake key; ``core`` is a random run that survives any URL or JSON encoding."""

    value: str
    core: str

    @property
    def needles(self) -> tuple[str, ...]:
        """Every spelling of the key worth searching for, raw and URL-encoded."""
        raw = self.value
        return (raw, quote(raw, safe=""), quote_plus(raw, safe=""), quote(raw), self.core)

    def found_in(self, text: str) -> list[str]:
        """The needles present in ``text`` (empty when the key is absent)."""
        folded = text.casefold()  # an echo in another case leaks the key all the same
        return [needle for needle in self.needles if needle.casefold() in folded]


@pytest.fixture
def make_canary() -> Callable[[str], Canary]:
    """Return a factory of canary keys; they hold ``+``, ``/`` and ``=`` like base64 keys do."""

    def make(label: str = "KEY") -> Canary:
        core = secrets.token_hex(8)
        return Canary(f"CANARY-{label}-{core}+{secrets.token_hex(2)}/=", core)

    return make


# -- log capture -----------------------------------------------------------------------------

LOG_FORMAT = "%(name)s %(levelname)s %(message)s"


class CapturedLogs(logging.Handler):
    """Every record, formatted with :data:`LOG_FORMAT` plus exception and stack text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log_capture() -> Iterator[CapturedLogs]:
    """Capture DEBUG and up from every logger (root, coinguard, httpx, httpcore); restore levels."""
    loggers = [logging.getLogger(name) for name in (None, "coinguard", "httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    handler = CapturedLogs()
    root = loggers[0]
    root.addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# -- loopback HTTP servers -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request exactly as a loopback server received it."""

    method: str
    request_line: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[0] if found else None

    def presented(self, style: object) -> list[str]:
        """The key values this request carried where ``style`` (a coinguard auth) puts them."""
        if isinstance(style, coinguard.HeaderKey):
            return [v for k, v in self.headers if k.lower() == style.name.lower()]
        if isinstance(style, coinguard.BearerKey):
            auth = [v for k, v in self.headers if k.lower() == style.header.lower()]
            return [v.removeprefix(f"{style.prefix} ") for v in auth]
        if isinstance(style, coinguard.SignedKey):
            return [v for k, v in self.headers if k.lower() == style.header.lower()]
        assert isinstance(style, coinguard.QueryKey)
        return [v for k, v in self.query if k == style.name]

    @property
    def raw(self) -> str:
        """Request line, headers and body as one text, for searching."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.request_line}\n{head}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class Reply:
    """What a route answers. ``body`` dicts and lists are sent as JSON."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # wait this long (or until the server stops) before answering
    reason: str | None = None  # a reason phrase of the server's own (some echo the request)


Route = Callable[[Seen], "Reply | Mapping[str, Any]"]
"""A route answers a :class:`Reply`, or a mapping of its fields (test modules need no import)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    route: Route
    seen: list[Seen]
    release: threading.Event

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before a slow reply: expected, not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            method=self.command,
            request_line=self.requestline,
            target=self.path,
            headers=tuple(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )
        self.server.seen.append(seen)
        answer = self.server.route(seen)
        reply = answer if isinstance(answer, Reply) else Reply(**answer)
        if reply.delay:
            self.server.release.wait(reply.delay)
        body = reply.body
        ctype = "application/json"
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body, ctype = body.encode(), "text/html; charset=utf-8"
        body = body or b""
        self.send_response(reply.status, reply.reason)
        headers = {"Content-Type": ctype, **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 in a thread; records every request it gets."""

    def __init__(self, route: Route) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.route = route
        self._server.seen = []
        self._server.release = threading.Event()
        self.port: int = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        # A short poll interval keeps shutdown() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        return self._server.seen

    def url(self, path: str = "") -> str:
        return self.origin + path

    def stop(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def http_server() -> Iterator[Callable[[Route], LoopbackServer]]:
    """Return ``serve(route) -> LoopbackServer``; every server started is stopped at teardown."""
    started: list[LoopbackServer] = []

    def serve(route: Route) -> LoopbackServer:
        server = LoopbackServer(route)
        started.append(server)
        return server

    try:
        yield serve
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
