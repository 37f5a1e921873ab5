"""Kraken's and Coinbase's signed styles leak nothing: the API key, the signing secret, the
API-Sign and the JWT of every request stay out of logs (ours, httpx's, httpcore's), errors,
tracebacks, captured locals and reprs, over a real loopback server that echoes them back."""

from __future__ import annotations

import base64
import dataclasses
import json
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import coinguard
from test_leaks import Needle, _client_texts, _exception_texts, _foreign_links, _leaks

if TYPE_CHECKING:
    from conftest import Canary, CapturedLogs, LoopbackServer, Route, Seen

ECHOED = ("api-key", "api-sign", "authorization")


def _echo_route(seen: Seen) -> dict[str, Any]:
    """A careless exchange: an error that quotes every credential header it got."""
    echo = " ".join(v for k, v in seen.headers if k.lower() in ECHOED)
    body = {"error": [f"EAPI:Invalid key {echo}"], "success": False, "message": f"bad {echo}"}
    headers = {"X-Echo": echo.replace("\n", " ")[:4000]}
    return {"status": 200, "body": json.dumps(body).encode(), "headers": headers}


def _kraken(origin: str) -> coinguard.Provider:
    return dataclasses.replace(coinguard.get_provider("kraken"), base_url=origin)


def _coinbase(origin: str) -> coinguard.Provider:
    return dataclasses.replace(coinguard.get_provider("coinbase"), base_url=origin)


def _ed25519_secret() -> str:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("provider", "path", "secret"),
    [
        (_kraken, "/0/private/Balance", lambda: base64.b64encode(b"k" * 64).decode()),
        (_coinbase, "/api/v3/brokerage/accounts", _ed25519_secret),
    ],
    ids=["kraken", "coinbase"],
)
def test_echoed_credentials_never_reach_any_text(
    provider: Callable[[str], coinguard.Provider],
    path: str,
    secret: Callable[[], str],
    make_canary: Callable[[str], Canary],
    http_server: Callable[[Route], LoopbackServer],
    log_capture: CapturedLogs,
) -> None:
    """The server echoes key, signature and token in its body and a header; the error the
    caller gets, the logs and the client's reprs hold none of them, nor the secret."""
    server = http_server(_echo_route)
    key = make_canary("KEY")
    signing = secret()
    exc: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = coinguard.Client(
            provider=provider(server.origin),
            read_key=key.value,
            read_secret=signing,
            quota_store=coinguard.MemoryStore(),
            max_retries=0,
        )
        with client:
            try:
                client.post(path) if "kraken" in repr(client.provider.name) else client.get(path)
            except coinguard.CoinguardError as err:
                exc = err
    assert exc is not None
    assert server.seen, "the server never got the request"
    sent = [v for s in server.seen for k, v in s.headers if k.lower() in ("api-sign",)]
    sent += [
        v.removeprefix("Bearer ")
        for s in server.seen
        for k, v in s.headers
        if k.lower() == "authorization"
    ]
    assert sent, "no signature or token was sent"
    needles: list[Canary | Needle] = [key, Needle(signing), *(Needle(v) for v in sent)]
    texts = [
        ("logs", log_capture.text),
        *_client_texts(client),
        *_exception_texts(exc),
        *((f"warning {w.category.__name__}", str(w.message)) for w in caught),
    ]
    assert _leaks(needles, texts) == []
    assert _foreign_links(exc) == []
    assert any(r.name.startswith("httpcore") for r in log_capture.records)
    for seen in server.seen:  # the secret itself never goes on the wire
        assert signing not in repr(seen.headers) + seen.body.decode("utf-8", "replace")
