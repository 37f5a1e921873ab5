"""The transport shell: lifecycle, keep-alive, malformed HTTP and body limits."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from coinguard.sandbox import Sandbox, SandboxConfig


def _raw(sb: Sandbox, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_start_and_stop_are_fast_and_use_a_free_port() -> None:
    """start() and stop() each take well under a second, and port 0 binds a free port."""
    began = time.perf_counter()
    sb = Sandbox().start()
    started = time.perf_counter() - began
    try:
        assert sb.port > 0
        assert sb.base_url == f"http://127.0.0.1:{sb.port}/v2"
    finally:
        began = time.perf_counter()
        sb.stop()
    assert started < 1.0
    assert time.perf_counter() - began < 1.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(sb.base_url + "/tokens", timeout=2)


def test_two_sandboxes_get_different_ports_and_keys() -> None:
    """Each sandbox binds its own port and provisions its own random keys."""
    with Sandbox() as a, Sandbox() as b:
        assert a.port != b.port
        assert a.keys.read != b.keys.read


def test_a_sandbox_runs_once_and_stop_is_idempotent() -> None:
    """stop() twice is fine; start() after stop() is refused."""
    sb = Sandbox().start()
    sb.stop()
    sb.stop()
    with pytest.raises(RuntimeError):
        sb.start()


def test_keep_alive_reuses_one_connection(coinguard_sandbox: Sandbox, http) -> None:
    """Many requests on one httpx client reuse one TCP connection."""
    client = http(coinguard_sandbox, coinguard_sandbox.keys.read)
    peers = set()
    for _ in range(5):
        with client.stream("GET", "/price", params={"symbol": "BTC"}) as r:
            r.read()
            peers.add(r.extensions["network_stream"].get_extra_info("client_addr"))
            assert r.status_code == 200
    assert len(peers) == 1


def test_every_response_has_a_request_id(coinguard_sandbox: Sandbox, http) -> None:
    """x-request-id is set on success, errors and unknown paths, and is unique."""
    client = http(coinguard_sandbox, coinguard_sandbox.keys.read)
    ids = {client.get(path).headers["x-request-id"] for path in ("/tokens", "/nope", "/orders")}
    assert len(ids) == 3


def test_malformed_http_gets_400_and_close(coinguard_sandbox: Sandbox) -> None:
    """Garbage on the socket is answered 400 with a JSON envelope, then closed."""
    answer = _raw(coinguard_sandbox, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"success":false' in answer


def test_half_sent_request_does_not_hang_the_server(coinguard_sandbox: Sandbox, http) -> None:
    """A client that disconnects mid-request leaves the server serving others."""
    with socket.create_connection(("127.0.0.1", coinguard_sandbox.port), timeout=5) as sock:
        sock.sendall(b"POST /v2/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert http(coinguard_sandbox, coinguard_sandbox.keys.read).get("/tokens").status_code == 200


def test_unknown_path_and_wrong_method(coinguard_sandbox: Sandbox, http) -> None:
    """Unknown paths are 404 and wrong methods 405 with Allow, both as envelopes."""
    client = http(coinguard_sandbox, coinguard_sandbox.keys.read)
    missing = client.get("/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    wrong = client.put("/price")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert client.get(f"{coinguard_sandbox.origin}/").status_code == 404


def test_body_over_max_body_is_413(coinguard_sandbox_factory, http) -> None:
    """A body larger than max_body is refused with 413 before it is read, then closed."""
    sb = coinguard_sandbox_factory(SandboxConfig(max_body=100))
    r = http(sb, sb.keys.trade).post("/orders", content=b"x" * 1000)
    assert r.status_code == 413
    assert r.headers["connection"] == "close"
    chunked = http(sb, sb.keys.trade).post("/orders", content=iter([b"x" * 80, b"y" * 80]))
    assert chunked.status_code == 413


@pytest.mark.parametrize(
    "host",
    ["192.0.2.1", "0.0.0.0", "127.evil.example", "api.localhost", "example.com", "::"],  # noqa: S104
)
def test_a_non_loopback_host_is_refused_unless_asked_for(host: str) -> None:
    """The sandbox holds keys: it binds only a literal loopback address unless told otherwise."""
    with pytest.raises(ValueError, match="not a loopback address"):
        SandboxConfig(host=host)
    assert SandboxConfig(host=host, allow_remote=True).host == host
    for loopback in ("127.0.0.1", "::1", "localhost", "127.3.2.1"):
        assert SandboxConfig(host=loopback).host == loopback


def test_many_concurrent_connections(coinguard_sandbox_factory, http) -> None:
    """Twenty clients in parallel threads all get answers, and the ledger sees every request."""
    import threading

    from coinguard.sandbox import Window

    sb = coinguard_sandbox_factory(SandboxConfig(windows=(Window(1000, 1.0),)))
    key = sb.issue_key(("read",))
    statuses: list[int] = []
    clients = [http(sb, key) for _ in range(20)]

    def run(client: httpx.Client) -> None:
        statuses.extend(client.get("/tokens", params={"limit": 1}).status_code for _ in range(5))

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert statuses == [200] * 100
    assert sb.ledger.count(account=sb.account_of(key)) == 100


CANARY = "CANARY-shell-0123456789abcdef"


@pytest.mark.parametrize(
    "payload",
    [
        # a header line without a colon, a space before the colon, a non-number length
        b"GET /v2/tokens?k=" + CANARY.encode() + b" HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        b"GET /v2/tokens HTTP/1.1\r\nHost: x\r\nx-api-key : " + CANARY.encode() + b"\r\n\r\n",
        b"GET /v2/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
        # both framings at once (request smuggling), a chunk size that is not hex
        b"POST /v2/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /v2/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["no-colon", "space-before-colon", "bad-length", "both-framings", "bad-chunk"],
)
def test_malformed_framing_is_a_json_400_that_quotes_nothing(
    coinguard_sandbox: Sandbox, payload: bytes
) -> None:
    """What h11 refused, the shell refuses too: 400, a JSON envelope, no echo of the request
    (whose line or headers may carry a key), and the connection closed."""
    answer = _raw(coinguard_sandbox, payload)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()
    assert body == b'{"success":false,"message":"Malformed HTTP request","length":0,"data":null}'
    assert CANARY.encode() not in answer


def test_an_oversized_request_line_is_refused_without_an_echo(coinguard_sandbox: Sandbox) -> None:
    target = b"/v2/tokens?k=" + CANARY.encode() + b"x" * 70_000
    answer = _raw(coinguard_sandbox, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414")
    assert CANARY.encode() not in answer


def test_stop_cuts_idle_keep_alive_connections(coinguard_sandbox_factory) -> None:
    """A client idling on a keep-alive connection sees it closed by stop(), at once."""
    sb = coinguard_sandbox_factory()
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as sock:
        sock.sendall(b"GET /v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:  # the whole answer, which may come in pieces
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 ")
        started = time.monotonic()
        sb.stop()
        assert sock.recv(65536) == b""
        assert time.monotonic() - started < 5


def test_a_client_that_went_away_prints_nothing(
    coinguard_sandbox: Sandbox, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """socketserver prints a traceback to stderr for any handler error; a broken pipe is a
    client's timeout, not an error, and other errors are logged by type only."""
    server = coinguard_sandbox._server
    assert server is not None
    for exc in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(), ValueError(CANARY)):
        try:
            raise exc
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
    out, err = capfd.readouterr()
    assert out == err == ""
    assert [r.getMessage() for r in caplog.records] == ["sandbox connection failed: ValueError"]
