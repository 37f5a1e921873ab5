"""The I/O shell: the standard library's ``ThreadingHTTPServer`` around :class:`App`.

Chosen on measurement (docs/benchmarks.md, "The sandbox's stack"): it served more requests a
second than the asyncio + h11 shell it replaced, with less of our own code. A thread per
connection; the raw socket stays in reach for the faults: a reset is ``SO_LINGER 0`` and a
close of the descriptor (the peer sees RST), and "drop after order" cuts the connection after
the order exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ._accounts import Keys
from ._app import App, Reply, Request, envelope
from ._config import Faults, Profile, SandboxConfig
from ._ledger import Ledger
from ._orders import Order

__all__ = ["Sandbox"]

log = logging.getLogger("coinguard.sandbox")

_IDLE_TIMEOUT = 60.0
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name
_CHUNK_LINE = 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, config: SandboxConfig, app: App) -> None:
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        super().__init__((config.host, config.port), _Handler)
        self.app = app
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.jitter = random.Random(f"{config.seed}:arrival")  # apart from the fault draws

    def arrival_delay(self) -> float:
        low, high = self.app.faults.arrival_jitter
        if high <= 0:
            return 0.0
        with self.lock:
            return self.jitter.uniform(low, high)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a timeout test, a reset) is no error; anything else is
        logged by type only, never printed: socketserver's default prints a traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            log.error("sandbox connection failed: %s", type(exc).__name__)

    def close_all(self) -> None:
        """Cut every open connection (keep-alive ones wait in ``readline``)."""
        with self.lock:
            sockets = list(self.open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle stall
    timeout = _IDLE_TIMEOUT  # an idle keep-alive connection is closed after this
    server: _Server
    server_version = "coinguard-sandbox"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.open.discard(self.connection)
        with contextlib.suppress(OSError):  # an aborted connection has no descriptor left
            super().finish()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method goes to the app, which answers 405 itself
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        # parse_request() turns a leading "//" into "/" (gh-87389): take the target as sent.
        target = self.requestline.split(" ")[1]
        headers = {k.lower(): v for k, v in self.headers.items()}
        # The email parser is lenient where h11 (and real front ends) answer 400: a line without
        # a colon ends the headers silently, "name : value" keeps the space in the name.
        if self.headers.defects or any(not _TOKEN.fullmatch(name) for name in headers):
            self.send_error(400)
            return
        try:
            body, oversized = self._body(headers)
        except ValueError:  # a bad content-length or chunk size
            self.send_error(400)
            return
        delay = self.server.arrival_delay()
        if delay:
            time.sleep(delay)
        try:
            reply = self.server.app.handle(Request(self.command, target, headers, body, oversized))
        except Exception:
            log.exception("sandbox request handler failed")
            self.send_error(500)
            return
        if reply.delay:
            time.sleep(reply.delay)
        if reply.action != "respond":
            self._abort()
            return
        self._send(reply, close=oversized)

    def _body(self, headers: dict[str, str]) -> tuple[bytes, bool]:
        limit = self.server.app.config.max_body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            if "content-length" in headers:  # request smuggling's favourite: refuse it
                raise ValueError("both content-length and transfer-encoding")
            body = bytearray()
            while size := int(self.rfile.readline(_CHUNK_LINE).split(b";")[0], 16):
                if size < 0:
                    raise ValueError("negative chunk size")
                body += self.rfile.read(size + 2)[:-2]
                if len(body) > limit:
                    return b"", True
            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body), False
        declared = headers.get("content-length", "0").strip()
        if not declared.isdigit():
            raise ValueError("content-length is not a number")
        length = int(declared)
        if length > limit:
            return b"", True
        return self.rfile.read(length), False

    def _send(self, reply: Reply, *, close: bool) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)

    def _abort(self) -> None:
        """Close with a TCP RST: SO_LINGER 0, then close the descriptor itself (close() would
        wait for rfile/wfile, and socketserver's shutdown(SHUT_WR) would send a FIN first)."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self.server.lock:
            self.server.open.discard(self.connection)
        os.close(self.connection.detach())
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The default page is HTML and quotes the request line, which may carry a key: answer
        # an envelope instead, with a status line even when the request line was too broken to
        # name a version.
        self.request_version = "HTTP/1.1"
        text = {400: "Malformed HTTP request", 500: "Internal server error"}.get(code)
        body = envelope(False, text or f"HTTP {code}")
        with contextlib.suppress(OSError):
            self._send(Reply(code, [("content-type", "application/json")], body), close=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line may carry a key in its query: the ledger records requests


class Sandbox:
    """A keyed crypto-data API on loopback, for demos, integration tests and benchmarks.

    >>> import httpx
    >>> from coinguard.sandbox import Sandbox, SandboxConfig
    >>> with Sandbox(SandboxConfig(seed=7)) as sb:
    ...     r = httpx.get(sb.base_url + "/price", params={"symbol": "BTC"},
    ...                   headers={"x-api-key": sb.keys.read})
    >>> r.status_code, r.json()["data"][0]["symbol"]
    (200, 'BTC')
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, profile: Profile | None = None
    ) -> None:
        config = config or SandboxConfig()
        if profile is not None:
            config = dataclasses.replace(config, profile=profile)
        self.config = config
        self._app = App(self.config)
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._port: int | None = None
        self._used = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind the socket and serve in a daemon thread; returns once it accepts connections."""
        if self._used:
            raise RuntimeError("a Sandbox runs once; create a new one to start again")
        self._used = True
        server = _Server(self.config, self._app)
        self._server, self._port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="coinguard-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, and join the thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None or not thread.is_alive():
            return
        server.shutdown()
        server.server_close()
        server.close_all()
        thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (a free one when the config asked for port 0)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://HOST:PORT``."""
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client's ``base_url`` should be: ``http://HOST:PORT/v2`` by default, the
        Demo root ``/api/v3`` for ``coingecko``, the bare origin for ``coinmarketcap``,
        ``binance``, ``kraken`` and ``coinbase``."""
        if self.config.profile == "coingecko":
            return self.origin + "/api/v3"
        if self.config.profile in ("coinmarketcap", "binance", "kraken", "coinbase"):
            return self.origin
        return self.origin + "/v2"

    @property
    def pro_base_url(self) -> str:
        """The CoinGecko emulation's Pro root, ``http://HOST:PORT/pro/api/v3``."""
        if self.config.profile != "coingecko":
            raise AttributeError("only the coingecko profile has a Pro root")
        return self.origin + "/pro/api/v3"

    # -- keys, faults, state -----------------------------------------------------------------

    @property
    def keys(self) -> Keys:
        """The provisioned keys: ``read``, ``trade`` and ``overprivileged`` by default; the
        Demo key as ``read`` and the Pro key as ``pro`` for ``coingecko``; the key as ``read``
        for ``coinmarketcap``."""
        return self._app.keys

    def set_faults(self, faults: Faults) -> None:
        """Change the injected faults from now on (the fault RNG restarts from its seed)."""
        self._app.set_faults(faults)

    def rotate(self, key: str, overlap: float = 5.0) -> str:
        """Issue and return a successor of ``key``: same account (same quota), same scopes.

        The old key keeps working for ``overlap`` seconds of the server clock.
        """
        return self._app.rotate(key, overlap)

    def revoke(self, key: str) -> None:
        """Make ``key`` fail with 401 from now on."""
        self._app.revoke(key)

    def issue_key(
        self,
        scopes: Sequence[str] = ("read",),
        *,
        account: str | None = None,
        age_days: float = 0.0,
    ) -> str:
        """Provision an extra key (its own account unless ``account`` is given)."""
        return self._app.issue(scopes, account, age_days)

    @property
    def ledger(self) -> Ledger:
        """Every request the server saw (never a key value)."""
        return self._app.ledger

    @property
    def orders(self) -> dict[str, Order]:
        """A snapshot of every order created, by id."""
        return self._app.orders()

    def account_of(self, key: str) -> str:
        """The account id a key belongs to (for ``ledger.max_in_window(..., account=...)``)."""
        return self._app.account_of(key)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"Sandbox({where})"
