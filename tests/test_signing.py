"""Signing: Binance's published HMAC vectors, Ed25519/RSA sign-then-verify, the signed auth flow."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

import coinguard
from coinguard import BinanceSigner, Secret, SignedKey, SigningInput, binance_signature
from coinguard._auth import SignedKeyAuth
from coinguard._signing import binance_payload

# the symbol of Binance's non-ASCII example: full-width digits one to six
# Published in Binance's spot API docs (rest-api.md, "SIGNED endpoint examples").
VECTOR_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
VECTOR_TAIL = "side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
VECTOR_PAYLOAD = f"symbol=LTCBTC&{VECTOR_TAIL}&timestamp=1499827319559"
VECTOR_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
NON_ASCII_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
ORIGIN = ("https", "api.binance.com", 443)
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


def test_hmac_matches_the_published_vector() -> None:
    """The plain HMAC-SHA256 example signs to Binance's published hex."""
    assert binance_signature(VECTOR_SECRET, VECTOR_PAYLOAD) == VECTOR_SIGNATURE


def test_non_ascii_is_percent_encoded_before_signing() -> None:
    """A full-width symbol is percent-encoded as UTF-8 first, giving the published signature."""
    symbol = "\uff11\uff12\uff13\uff14\uff15\uff16"
    payload = binance_payload(f"symbol={symbol}&{VECTOR_TAIL}&timestamp=1499827319559")
    assert payload.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    assert binance_signature(VECTOR_SECRET, payload) == NON_ASCII_SIGNATURE


def test_query_and_body_join_without_separator() -> None:
    """The payload is query then body, nothing between them (the docs' mixed example)."""
    assert binance_payload("symbol=LTCBTC&side=BUY", "quantity=1") == (
        "symbol=LTCBTC&side=BUYquantity=1"
    )


def _pem(key: Any) -> str:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_ed25519_signature_verifies_with_the_public_key() -> None:
    """An Ed25519 PEM secret gives a base64 signature of 64 bytes that its public key verifies."""
    key = ed25519.Ed25519PrivateKey.generate()
    signature = binance_signature(_pem(key), VECTOR_PAYLOAD)
    raw = base64.b64decode(signature)
    assert len(raw) == 64
    key.public_key().verify(raw, VECTOR_PAYLOAD.encode())  # raises if wrong


def test_ed25519_as_one_line_base64_der() -> None:
    """The same key given as the base64 of its DER (no line breaks) signs the same way."""
    key = ed25519.Ed25519PrivateKey.generate()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signature = binance_signature(base64.b64encode(der).decode(), "a=1")
    key.public_key().verify(base64.b64decode(signature), b"a=1")


def test_rsa_signature_verifies_with_the_public_key() -> None:
    """An RSA PEM secret signs RSASSA-PKCS1-v1_5 over SHA-256, verified by its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = binance_signature(_pem(key), VECTOR_PAYLOAD)
    key.public_key().verify(
        base64.b64decode(signature), VECTOR_PAYLOAD.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.mark.parametrize("window", [0, -5, 60_001, 1.5, True])
def test_recv_window_out_of_range_is_refused(window: Any) -> None:
    """recvWindow must be a positive int no larger than Binance's 60000 ms."""
    with pytest.raises(coinguard.ConfigurationError, match="recv_window"):
        BinanceSigner(recv_window=window)


def test_signer_appends_timing_then_signature() -> None:
    """The signer adds timestamp and recvWindow, then signs exactly the query it sends."""
    signer = BinanceSigner(recv_window=7000)
    out = signer(SigningInput("POST", "/api/v3/order", "symbol=LTCBTC", b"", 1000), VECTOR_SECRET)
    assert out.query is not None
    query, _, signature = out.query.partition("&signature=")
    assert query == "symbol=LTCBTC&timestamp=1000&recvWindow=7000"
    assert signature == binance_signature(VECTOR_SECRET, query)


def _auth(now: list[int], routes: tuple[str, ...] = ("* /*",)) -> SignedKeyAuth:
    style = SignedKey("X-MBX-APIKEY", BinanceSigner(), signed_routes=routes)
    return SignedKeyAuth(Secret(KEY), Secret(VECTOR_SECRET), style, ORIGIN, "", lambda: now[0])


def test_every_attempt_is_signed_afresh() -> None:
    """Two attempts of one request carry their own timestamp and signature: never a replay."""
    now = [1499827319559]
    auth = _auth(now)
    request = httpx.Request("GET", "https://api.binance.com/api/v3/account")
    flows = [auth.sync_auth_flow(request), auth.sync_auth_flow(request)]
    first = next(flows[0])
    now[0] += 1500
    second = next(flows[1])
    assert first.url.params["timestamp"] == "1499827319559"
    assert second.url.params["timestamp"] == "1499827321059"
    assert first.url.params["signature"] != second.url.params["signature"]
    assert "signature" not in request.url.params  # the request coinguard keeps stays clean
    assert "X-MBX-APIKEY" not in request.headers


def test_unsigned_route_carries_only_the_key() -> None:
    """A route outside signed_routes gets the key header and no timestamp or signature."""
    auth = _auth([1], routes=("GET /api/v3/account",))
    flow = auth.sync_auth_flow(httpx.Request("GET", "https://api.binance.com/api/v3/time"))
    sent = next(flow)
    assert sent.headers["X-MBX-APIKEY"] == KEY
    assert "signature" not in sent.url.params


def test_signature_is_stripped_after_a_failed_send() -> None:
    """When the send fails, the copy that was sent loses its key and signature too."""
    auth = _auth([1])
    flow = auth.sync_auth_flow(httpx.Request("GET", "https://api.binance.com/api/v3/account"))
    sent = next(flow)
    flow.close()  # what httpx does when the send raised
    assert "signature" not in sent.url.params
    assert "X-MBX-APIKEY" not in sent.headers


def test_signed_auth_refuses_another_origin() -> None:
    """The signed flow pins the origin like every other style."""
    auth = _auth([1])
    with pytest.raises(coinguard.InsecureTransportError):
        next(auth.sync_auth_flow(httpx.Request("GET", "https://evil.example/api/v3/account")))
