"""Per-request cost of signing: a signed coinguard request against an unsigned one.

Both clients send the same GET over one ``httpx.MockTransport`` and decode the same JSON body;
the signed ones use a ``SignedKey`` style (``X-MBX-APIKEY`` plus Binance's ``timestamp``,
``recvWindow`` and ``signature``), with an HMAC secret or an Ed25519 private key. The server
clock is measured once before timing (it is re-measured only every 300 s), so the difference
is the signing itself: building the signing input, the signature, the new query string, and
keeping the signature redactable.

    python benchmarks/signing_overhead.py [--calls 20000] [--rounds 5]

Prints the best per-call time of each variant and its ratio to the unsigned client, measured
in the same process, interleaved round by round so machine noise hits every variant alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import coinguard

BASE = "https://api.example.com"
BODY = b'{"symbol": "BTCUSDT", "price": "1.0"}'
HMAC_SECRET = "bench-hmac-secret-0123456789abcdef0123456789abcdef0123456789abcd"


def _transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/time":
            return httpx.Response(200, json={"serverTime": int(time.time() * 1000)})
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def _client(
    auth: coinguard.HeaderKey | coinguard.SignedKey, secret: str | None
) -> coinguard.Client:
    provider = coinguard.Provider(
        name="bench",
        base_url=BASE,
        auth=auth,
        server_time=coinguard.ServerTime("/time", "serverTime")
        if isinstance(auth, coinguard.SignedKey)
        else None,
    )
    return coinguard.Client(
        provider=provider,
        read_key="bench-read-key-0123456789",
        read_secret=secret,
        http_client=httpx.Client(transport=_transport()),
        quota=None,
    )


def unsigned() -> Callable[[], object]:
    client = _client(coinguard.HeaderKey("X-MBX-APIKEY"), None)
    return lambda: client.get("/api/v3/account", params={"symbol": "BTCUSDT"})


def signed(secret: str) -> Callable[[], object]:
    style = coinguard.SignedKey("X-MBX-APIKEY", coinguard.BinanceSigner())
    client = _client(style, secret)
    return lambda: client.get("/api/v3/account", params={"symbol": "BTCUSDT"})


def _ed25519_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _time(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    variants = {
        "unsigned (header key)": unsigned(),
        "signed, HMAC-SHA256": signed(HMAC_SECRET),
        "signed, Ed25519": signed(_ed25519_pem()),
    }
    for call in variants.values():
        _time(call, 500)  # warm-up, and the one server-time request of each signed client
    best = {name: float("inf") for name in variants}
    for _ in range(args.rounds):
        for name, call in variants.items():
            best[name] = min(best[name], _time(call, args.calls))
    base = best["unsigned (header key)"]
    print(f"calls per round: {args.calls}, rounds: {args.rounds} (best round reported)")
    for name, seconds in best.items():
        print(f"{name:<24} {seconds * 1e6:8.1f} us/call   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
