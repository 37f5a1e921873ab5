"""Sketch of a sandbox I/O shell on uvicorn (h11), bare or with Starlette routing, around App.

Not wired into coinguard: it exists so that ``sandbox_stack.py`` can measure it and
``sandbox_stack_faults.py`` can check the fault actions on it. One uvicorn ``Server`` per
``(port, App)``, all on one event loop in a daemon thread. ASGI has no message for "reset"
or "drop": both reach the transport through uvicorn's private ``RequestResponseCycle``
(``send.__self__.transport``), captured by an outer wrapper before Starlette wraps ``send``.

Run alone (``--starlette`` for the Starlette app), it prints one JSON line like
``coinguard sandbox --json`` and serves until killed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import Route

from coinguard.sandbox._app import App, Reply, Request
from coinguard.sandbox._routes import ROUTES

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _abort(send: Send) -> None:
    """TCP RST: SO_LINGER 0 + abort() on the transport, reached through uvicorn internals."""
    transport: asyncio.Transport = send.__self__.transport  # type: ignore[attr-defined]
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _request(scope: Scope, body: bytes, oversized: bool) -> Request:
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    return Request(scope["method"], target, headers, body, oversized)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, bool]:
    for name, value in scope["headers"]:
        if name == b"content-length" and int(value) > limit:
            return b"", True
    body, more = bytearray(), True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return b"", True
    return bytes(body), False


def _headers(reply: Reply, close: bool) -> list[tuple[bytes, bytes]]:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    headers.append((b"server", b"coinguard-sandbox"))
    if close:
        headers.append((b"connection", b"close"))
    return headers


def bare_asgi(app: App) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A plain ASGI callable: the App does all routing."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        body, oversized = await _read_body(scope, receive, app.config.max_body)
        reply = app.handle(_request(scope, body, oversized))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.action != "respond":
            _abort(send)
            await asyncio.sleep(0)  # let connection_lost() run, or uvicorn answers 500
            return
        start = {"type": "http.response.start", "status": reply.status}
        await send({**start, "headers": _headers(reply, oversized)})
        await send({"type": "http.response.body", "body": reply.body})

    return asgi


def starlette_asgi(app: App) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Starlette routing: one Route per sandbox template, and a catch-all for the rest (the
    App must still see unknown paths and odd spellings, to answer and record them)."""

    async def endpoint(request: StarletteRequest) -> Response:
        scope = request.scope
        body, oversized = await _read_body(scope, request.receive, app.config.max_body)
        reply = app.handle(_request(scope, body, oversized))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.action != "respond":
            scope["extensions"]["coinguard.abort"]()
            await asyncio.sleep(0)  # uvicorn drops what is sent after connection_lost()
            return Response(b"", 500)
        response = Response(reply.body, reply.status)
        response.raw_headers = _headers(reply, oversized)
        return response

    templates = sorted({"/v2" + r.template for r in ROUTES})
    routes = [Route(t, endpoint, methods=METHODS) for t in templates]
    routes.append(Route("/{rest:path}", endpoint, methods=METHODS))
    inner = Starlette(routes=routes)
    inner.router.redirect_slashes = False  # "/v2/orders/" must reach the App, not a 307

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})["coinguard.abort"] = lambda: _abort(send)
        await inner(scope, receive, send)

    return outer


class UvicornShell:
    """One uvicorn ``Server`` per ``(port, App)``, all on one loop in a daemon thread."""

    def __init__(self, apps: Sequence[App], *, starlette: bool, host: str = "127.0.0.1") -> None:
        self.sockets, self.servers = [], []
        for app in apps:
            # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on the accepted sockets and
            # uvicorn's two writes (head, body) meet Nagle + delayed ACK: 40 ms per request
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, app.config.port))
            sock.listen(1024)
            self.sockets.append(sock)
            config = uvicorn.Config(
                (starlette_asgi if starlette else bare_asgi)(app),
                http="h11",  # what plain `pip install uvicorn` gets (httptools is an extra)
                lifespan="off",
                log_config=None,  # never reconfigure the host process's logging
                access_log=False,
                server_header=False,
                timeout_keep_alive=60,
                h11_max_incomplete_event_size=32_768,
            )
            self.servers.append(uvicorn.Server(config))
        self.ports = [s.getsockname()[1] for s in self.sockets]
        self._thread: threading.Thread | None = None

    def start(self) -> UvicornShell:
        async def serve_all() -> None:
            pairs = zip(self.servers, self.sockets, strict=True)
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in pairs))

        self._thread = threading.Thread(target=asyncio.run, args=(serve_all(),), daemon=True)
        self._thread.start()
        while not all(s.started for s in self.servers):
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


if __name__ == "__main__":
    import sys

    from _stack_common import serve_main

    use_starlette = "--starlette" in sys.argv
    if use_starlette:
        sys.argv.remove("--starlette")
    serve_main(lambda apps: UvicornShell(apps, starlette=use_starlette).start())
