"""Can each candidate stack carry the sandbox's fault actions and its raw view of requests?

Checked on real loopback sockets, in one process, for four shells around the same sans-I/O
``App``: the sandbox as shipped (the stdlib shell since the port; its sketch is gone), and the
uvicorn sketch bare and with Starlette routing (``shell_uvicorn.py``):

1. reset: ``reset_rate=1``; the client must see a connection reset (RST, not FIN);
2. drop: ``drop_after_order_rate=1``; the order exists, the client gets no answer;
3. delay: ``latency=0.3``; two delayed requests on two connections overlap;
4. raw view: odd request targets and header lines sent byte for byte; what the client got
   back and what the ledger recorded, compared with today's sandbox;
5. profiles: two Apps (header auth and query auth) on two ports from one process;
6. lifecycle: start() and stop() (with an idle keep-alive connection open) each under 1 s.

Usage::

    python benchmarks/sandbox_stack_faults.py
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from coinguard.sandbox import Faults, Sandbox, SandboxConfig
from coinguard.sandbox._app import App

ORDER = b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1}'


class _Today:
    """The shipped sandbox behind the sketches' interface (one ``Sandbox`` per App config)."""

    def __init__(self, apps: Sequence[App]) -> None:
        self.boxes = [Sandbox(app.config) for app in apps]

    def start(self) -> _Today:
        for box in self.boxes:
            box.start()
        self.apps = [box._app for box in self.boxes]
        self.ports = [box.port for box in self.boxes]
        return self

    def stop(self) -> None:
        for box in self.boxes:
            box.stop()


STACKS: dict[str, Callable[[Sequence[App]], Any]] = {
    "sandbox": _Today,
}


@contextlib.contextmanager
def serving(stack: str, *configs: SandboxConfig) -> Iterator[tuple[list[App], list[int]]]:
    apps = [App(c) for c in configs]
    shell = STACKS[stack](apps).start()
    apps = getattr(shell, "apps", apps)
    try:
        yield apps, shell.ports
    finally:
        shell.stop()


def raw(port: int, payload: bytes, timeout: float = 3.0) -> tuple[bytes, str]:
    """Send bytes, read to the end; return (answer, how the connection ended)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            end = "FIN"
        except ConnectionResetError:
            end = "RST"
        except TimeoutError:
            end = "timeout"
    return b"".join(chunks), end


def status_of(answer: bytes) -> str:
    line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    return line.split(" ", 2)[1] if line.startswith("HTTP/") else "-"


def check_reset(stack: str) -> str:
    config = SandboxConfig(faults=Faults(reset_rate=1.0))
    with serving(stack, config) as (apps, ports):
        key = apps[0].keys.read
        url = f"http://127.0.0.1:{ports[0]}/v2/price?symbol=BTC"
        try:
            httpx.get(url, headers={"x-api-key": key}, timeout=3)
            seen = "answered (FAIL)"
        except httpx.HTTPError as exc:
            seen = type(exc).__name__
        req = f"GET /v2/price HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n\r\n".encode()
        answer, end = raw(ports[0], req)
        counted = apps[0].ledger.count(outcome="reset")
    ok = end == "RST" and not answer and counted == 2
    return f"{'yes' if ok else 'NO'}: httpx {seen}; socket sees {end}; ledger counts {counted}/2"


def check_drop(stack: str) -> str:
    config = SandboxConfig(faults=Faults(drop_after_order_rate=1.0))
    with serving(stack, config) as (apps, ports):
        key = apps[0].keys.trade
        head = f"POST /v2/orders HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n"
        req = f"{head}content-type: application/json\r\ncontent-length: {len(ORDER)}\r\n\r\n"
        answer, end = raw(ports[0], req.encode() + ORDER)
        orders = len(apps[0].orders())
    ok = not answer and end in ("RST", "FIN") and orders == 1
    return f"{'yes' if ok else 'NO'}: no answer={not answer}, socket sees {end}, orders={orders}"


def check_delay(stack: str) -> str:
    config = SandboxConfig(faults=Faults(latency=0.3))
    with serving(stack, config) as (apps, ports):
        key = apps[0].keys.read
        url = f"http://127.0.0.1:{ports[0]}/v2/price?symbol=BTC"
        statuses: list[int] = []

        def one() -> None:
            statuses.append(httpx.get(url, headers={"x-api-key": key}, timeout=5).status_code)

        began = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - began
    ok = statuses == [200, 200] and 0.3 <= took < 0.55
    return f"{'yes' if ok else 'NO'}: two 0.3 s answers in {took:.2f} s, statuses {statuses}"


TARGETS = [
    "/v2/price?symbol=BTC",
    "//v2/price?symbol=BTC",
    "/x/../v2/price?symbol=BTC",
    "/v2/./price?symbol=BTC",
    "/v2/%70rice?symbol=BTC",
    "/v2/price/?symbol=BTC",
    "/v2/price;x=1?symbol=BTC",
    "/v2/price?",
    "http://127.0.0.1/v2/price?symbol=BTC",
    "*",
]


def header_cases(key: str) -> list[tuple[str, bytes]]:
    """(label, header block after the request line) for odd header spellings."""
    return [
        ("plain", f"x-api-key: {key}\r\n".encode()),
        ("Mixed-Case name", f"X-API-Key: {key}\r\n".encode()),
        ("valid, then wrong duplicate", f"x-api-key: {key}\r\nx-api-key: bad\r\n".encode()),
        ("space before colon", f"x-api-key : {key}\r\n".encode()),
        ("line without colon", f"garbage\r\nx-api-key: {key}\r\n".encode()),
        ("obs-fold continuation", f"x-api-key: {key}\r\nx-note: a\r\n b\r\n".encode()),
        ("underscore name x_api_key", f"x_api_key: {key}\r\n".encode()),
        ("obs-text byte in a value", f"x-api-key: {key}\r\nx-note: caf\xe9\r\n".encode("latin-1")),
        ("bare LF line ends", f"x-api-key: {key}\n".encode()),
    ]


def check_raw_view(stack: str) -> list[tuple[str, str]]:
    """Return (case, 'status / ledger path or outcome') for every odd target and header."""
    rows = []
    with serving(stack, SandboxConfig()) as (apps, ports):
        app, port = apps[0], ports[0]
        key = app.keys.read

        def send(request_line: bytes, headers: bytes, lf: bool = False) -> str:
            before = len(app.ledger.entries())
            eol = b"\n" if lf else b"\r\n"
            answer, _ = raw(
                port,
                request_line + eol + b"host: x" + eol + headers + b"connection: close" + eol + eol,
            )
            entries = app.ledger.entries()[before:]
            seen = f"ledger {entries[0].path!r}" if entries else "not in ledger"
            body = answer.split(b"\r\n\r\n", 1)[-1][:40].decode("latin-1")
            if entries and entries[0].outcome not in ("ok",):
                seen += f" ({entries[0].outcome})"
            elif not entries:
                seen += f", body {body!r}"
            return f"{status_of(answer)}, {seen}"

        for target in TARGETS:
            line = f"GET {target} HTTP/1.1".encode()
            rows.append((f"target {target}", send(line, f"x-api-key: {key}\r\n".encode())))
        for label, block in header_cases(key):
            rows.append(
                (
                    f"header {label}",
                    send(
                        b"GET /v2/price?symbol=BTC HTTP/1.1", block, lf=label.startswith("bare LF")
                    ),
                )
            )
        answer, _ = raw(port, b"NOT HTTP AT ALL\r\n\r\n")
        rows.append(("garbage request line", f"{status_of(answer)}, body {answer[-60:]!r}"))
    return rows


def check_lifecycle(stack: str) -> str:
    """start(), then stop() with an idle keep-alive connection open: both fast, port closed."""
    app = App(SandboxConfig())
    began = time.perf_counter()
    shell = STACKS[stack]([app]).start()
    started = time.perf_counter() - began
    app = getattr(shell, "apps", [app])[0]
    url = f"http://127.0.0.1:{shell.ports[0]}/v2/price?symbol=BTC"
    with httpx.Client(headers={"x-api-key": app.keys.read}, timeout=3) as client:
        client.get(url)  # leaves one idle keep-alive connection
        began = time.perf_counter()
        shell.stop()
        stopped = time.perf_counter() - began
        try:
            httpx.get(url, timeout=2)
            closed = False
        except httpx.ConnectError:
            closed = True
    ok = started < 1 and stopped < 1 and closed
    timing = f"start {started * 1000:.0f} ms, stop {stopped * 1000:.0f} ms"
    return f"{'yes' if ok else 'NO'}: {timing}, port closed={closed}"


def check_profiles(stack: str) -> str:
    header, query = SandboxConfig(seed=1), SandboxConfig(seed=2, auth="query")
    with serving(stack, header, query) as (apps, ports):
        a = httpx.get(
            f"http://127.0.0.1:{ports[0]}/v2/price",
            params={"symbol": "BTC"},
            headers={"x-api-key": apps[0].keys.read},
        )
        b = httpx.get(
            f"http://127.0.0.1:{ports[1]}/v2/price",
            params={"symbol": "BTC", "api_key": apps[1].keys.read},
        )
        crossed = httpx.get(
            f"http://127.0.0.1:{ports[1]}/v2/price",
            params={"symbol": "BTC"},
            headers={"x-api-key": apps[0].keys.read},
        )
        threads = threading.active_count()
    ok = (a.status_code, b.status_code, crossed.status_code) == (200, 200, 401)
    return (
        f"{'yes' if ok else 'NO'}: ports {ports[0]}/{ports[1]} answer 200/200, crossed key "
        f"{crossed.status_code}; {threads} threads while serving"
    )


def starlette_routes_decoded_paths() -> str:
    """Starlette matches routes on uvicorn's percent-decoded ``scope["path"]``."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def matched(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"matched /v2/price; raw_path={request.scope['raw_path']!r}")

    spa = Starlette(routes=[Route("/v2/price", matched)])
    with warnings.catch_warnings():  # Starlette 1.x deprecates httpx in its test client
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        client = TestClient(spa, follow_redirects=False)
        answers = {path: client.get(path) for path in ("/v2/%70rice", "/v2/price/")}
    rows = [
        f"{p} -> {r.status_code} {r.headers.get('location') or r.text}" for p, r in answers.items()
    ]
    return "; ".join(rows)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    if importlib.util.find_spec("uvicorn") and importlib.util.find_spec("starlette"):
        from shell_uvicorn import UvicornShell

        STACKS["uvicorn bare ASGI"] = lambda apps: UvicornShell(apps, starlette=False)
        STACKS["starlette+uvicorn"] = lambda apps: UvicornShell(apps, starlette=True)
    else:
        print("(uvicorn and starlette are not installed: checking the sandbox only)")
    raw_views: dict[str, list[tuple[str, str]]] = {}
    for stack in STACKS:
        print(f"== {stack}")
        for name, check in (
            ("reset", check_reset),
            ("drop", check_drop),
            ("delay", check_delay),
            ("profiles", check_profiles),
            ("lifecycle", check_lifecycle),
        ):
            try:
                print(f"  {name:<9} {check(stack)}")
            except Exception as exc:
                print(f"  {name:<9} ERROR {type(exc).__name__}: {exc}")
        raw_views[stack] = check_raw_view(stack)
    today = dict(raw_views["sandbox"])
    print("\n== raw view: status, what the ledger recorded (differences from today marked *)")
    for stack, rows in raw_views.items():
        print(f"-- {stack}")
        for case, seen in rows:
            mark = " " if seen == today[case] else "*"
            print(f" {mark} {case:<48} {seen}")
    if "starlette+uvicorn" not in STACKS:
        return 0
    print("\n== Starlette's own routing, default settings (in-process test client)")
    print(f"  {starlette_routes_decoded_paths()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
