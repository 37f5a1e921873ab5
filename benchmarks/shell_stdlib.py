"""Sketch of a sandbox I/O shell on the standard library: ``ThreadingHTTPServer`` around ``App``.

Not wired into coinguard: it exists so that ``sandbox_stack.py`` can measure it and
``sandbox_stack_faults.py`` can check the fault actions on it. It does what
``coinguard/sandbox/_server.py`` does for the data plane (keep-alive, chunked bodies, the
body limit, a JSON 400 for malformed HTTP, delay / reset / drop, an idle timeout, a stop
that closes every connection), one ``App`` per port, a thread per connection.

Run alone, it prints one JSON line like ``coinguard sandbox --json`` and serves until killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from coinguard.sandbox._app import App, Reply, Request, envelope

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.open: set[socket.socket] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle stall
    timeout = 60.0  # idle keep-alive connections are closed after this
    server: _Server
    server_version = "coinguard-sandbox"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.open.add(self.connection)

    def finish(self) -> None:
        self.server.open.discard(self.connection)
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
        reply = self.server.app.handle(Request(self.command, target, headers, body, oversized))
        if reply.delay:
            time.sleep(reply.delay)
        if reply.action != "respond":
            self._abort()
            return
        self._send(reply, close=oversized)

    def _body(self, headers: dict[str, str]) -> tuple[bytes, bool]:
        limit = self.server.app.config.max_body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int(self.rfile.readline(100).split(b";")[0], 16):
                body += self.rfile.read(size + 2)[:-2]
                if len(body) > limit:
                    return b"", True
            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body), False
        length = int(headers.get("content-length", 0))
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
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The default page is HTML and may quote the request line: answer an envelope instead,
        # with a status line even when the request line was too broken to name a version.
        self.request_version = "HTTP/1.1"
        body = envelope(False, "Malformed HTTP request" if code == 400 else f"HTTP {code}")
        self._send(Reply(code, [("content-type", "application/json")], body), close=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StdlibShell:
    """One ``ThreadingHTTPServer`` per ``(port, App)``, each in a daemon thread."""

    def __init__(self, apps: Sequence[App], host: str = "127.0.0.1") -> None:
        self.servers = [_Server((host, app.config.port), app) for app in apps]
        self.ports = [s.server_address[1] for s in self.servers]

    def start(self) -> StdlibShell:
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
            for sock in list(server.open):  # keep-alive connections idle in readline()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


if __name__ == "__main__":
    from _stack_common import serve_main

    serve_main(lambda apps: StdlibShell(apps).start())
