"""The I/O shell: asyncio + h11 on a loopback socket, in a background thread.

h11 gives us the HTTP/1.1 state machine (keep-alive, chunked bodies, pipelining rules) while
we keep the raw transport, which the faults need: a reset is ``SO_LINGER 0`` + ``abort()``
(the peer sees RST), and "drop after order" aborts after the order exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import http
import logging
import random
import socket
import struct
import threading
from collections.abc import Sequence
from types import TracebackType

import h11

from ._accounts import Keys
from ._app import App, Reply, Request, envelope
from ._config import Faults, Profile, SandboxConfig
from ._ledger import Ledger
from ._orders import Order

__all__ = ["Sandbox"]

log = logging.getLogger("coinguard.sandbox")

_IDLE_TIMEOUT = 60.0
_READ_CHUNK = 65_536


def _abort(writer: asyncio.StreamWriter) -> None:
    """Cut the connection with a TCP RST rather than an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Protocol:
    """Serves HTTP/1.1 connections for one :class:`App`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.jitter = random.Random(f"{app.config.seed}:arrival")  # apart from the fault draws
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        self.writers.add(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=32_768)
        try:
            await self._serve(conn, reader, writer)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Only stop() cancels us. Ending normally keeps asyncio.streams' done-callback
            # (which calls task.exception()) from logging a CancelledError traceback.
            pass
        except Exception:
            log.exception("sandbox connection handler failed")
            await self._last_words(conn, writer, 500, "Internal server error")
        finally:
            self.writers.discard(writer)
            if task is not None:
                self.tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                request = await self._read_request(conn, reader, writer)
            except h11.RemoteProtocolError:
                # h11's text quotes the offending line, which may be a key header: no echo
                await self._last_words(conn, writer, 400, "Malformed HTTP request")
                return
            if request is None:
                return
            low, high = self.app.faults.arrival_jitter
            if high > 0:
                await asyncio.sleep(self.jitter.uniform(low, high))
            reply = self.app.handle(request)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.action != "respond":
                _abort(writer)
                return
            must_close = request.oversized or conn.their_state is not h11.DONE
            await self._send(conn, writer, reply, close=must_close)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _next_event(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            # A timer handle is far cheaper than wait_for (which spawns a task per read).
            loop = asyncio.get_running_loop()
            watchdog = loop.call_later(_IDLE_TIMEOUT, writer.transport.abort)
            try:
                data = await reader.read(_READ_CHUNK)
            finally:
                watchdog.cancel()
            conn.receive_data(data)

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        event = await self._next_event(conn, reader, writer)
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):
            raise h11.RemoteProtocolError("expected a request")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        method, target = event.method.decode("ascii"), event.target.decode("latin-1")
        limit = self.app.config.max_body
        declared = headers.get("content-length")
        if declared is not None and int(declared) > limit:
            return Request(method, target, headers, oversized=True)
        body = bytearray()
        while True:
            event = await self._next_event(conn, reader, writer)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    return Request(method, target, headers, oversized=True)
            elif isinstance(event, h11.EndOfMessage):
                return Request(method, target, headers, bytes(body))
            else:
                raise h11.RemoteProtocolError("connection closed inside a request")

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, *, close: bool
    ) -> None:
        headers = [
            *reply.headers,
            ("content-length", str(len(reply.body))),
            ("server", "coinguard-sandbox"),
        ]
        if close:
            headers.append(("connection", "close"))
        reason = http.HTTPStatus(reply.status).phrase.encode()
        data = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason))
        writer.write((data or b"") + (conn.send(h11.Data(data=reply.body)) or b""))
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    async def _last_words(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str
    ) -> None:
        """Answer ``status`` and close, if the connection can still carry an answer."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = envelope(False, message[:200])
        headers = [("content-type", "application/json")]
        with contextlib.suppress(Exception):
            await self._send(conn, writer, Reply(status, headers, body), close=True)

    async def shutdown(self) -> None:
        """Abort every open connection and wait for their handlers to finish."""
        for writer in list(self.writers):
            writer.transport.abort()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._protocol = _Protocol(self._app)
        self._port: int | None = None
        self._used = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind the socket and serve in a daemon thread; returns once it accepts connections."""
        if self._used:
            raise RuntimeError("a Sandbox runs once; create a new one to start again")
        self._used = True
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name="coinguard-sandbox", daemon=True
        )
        self._thread.start()
        self._port = ready.result(timeout=10)
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[int]) -> None:
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._protocol.connection, self.config.host, self.config.port, backlog=1024
                )
            )
            ready.set_result(self._server.sockets[0].getsockname()[1])
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._protocol.shutdown()
        if self._server is not None:
            await self._server.wait_closed()

    def stop(self) -> None:
        """Close every connection and the listening socket, and join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
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
        Demo root ``/api/v3`` for ``coingecko``, the bare origin for ``coinmarketcap``."""
        if self.config.profile == "coingecko":
            return self.origin + "/api/v3"
        if self.config.profile == "coinmarketcap":
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
