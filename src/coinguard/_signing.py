"""Request signing as pure functions: what a signed auth style computes for one attempt.

A :class:`SignedKey` auth style (``_provider``) names a *signer*: a callable that turns a
:class:`SigningInput` (method, path, query, body, the time to sign with) and the secret into a
:class:`Signature` (the query string to send, headers to add). It does no I/O and keeps no
state, so it is tested against a provider's published vectors; the auth flow (``_auth``) calls
it on every attempt, so a retry carries a fresh timestamp and signature.

Binance's and Kraken's schemes are here. Binance: HMAC-SHA256 (hex) for HMAC secrets, Ed25519
or RSA (base64) for a private key given as PEM or as the base64 of its DER (PKCS#8).
Asymmetric keys need the ``cryptography`` package (``pip install coinguard[signing]``).
Kraken: the fields go in a form body led by a ``nonce`` the client draws from its quota
store (strictly increasing per key across every process sharing the store), signed with
HMAC-SHA512 under the base64-decoded secret over the URI path and the SHA-256 of nonce + body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ._exceptions import ConfigurationError

__all__ = [
    "BinanceSigner",
    "CoinbaseSigner",
    "KrakenSigner",
    "Signature",
    "SigningInput",
    "binance_payload",
    "binance_signature",
    "hmac_sha256_hex",
    "kraken_signature",
]

#: Binance refuses a larger receive window.
MAX_RECV_WINDOW = 60_000
# What Binance leaves as it is when it percent-encodes a payload before signing: printable ASCII.
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class SigningInput:
    """One attempt as a signer sees it: the query string already percent-encoded, and for a
    provider that declares a :class:`coinguard.Nonce`, the nonce drawn for this attempt."""

    method: str
    path: str
    query: str
    body: bytes
    now_ms: int
    nonce: int | None = None
    host: str = ""
    # the API key itself, for schemes that sign it into the request (Coinbase's JWT ``sub``)
    key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Signature:
    """What a signer adds: the query string and body to send instead of the request's (None:
    unchanged), and headers."""

    query: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


def hmac_sha256_hex(secret: str, payload: str) -> str:
    """HMAC-SHA256 of ``payload`` under ``secret``, as lowercase hex.

    >>> hmac_sha256_hex("k", "p")[:16]
    'd17ee4f692918802'
    """
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def binance_payload(query: str, body: str = "") -> str:
    """What Binance signs: the query string and the body with nothing between them, any
    non-ASCII character percent-encoded (as UTF-8) first; ASCII is left as sent.

    >>> binance_payload("symbol=\\uff11\\uff12", "side=BUY")
    'symbol=%EF%BC%91%EF%BC%92side=BUY'
    """
    return quote(query, safe=_PRINTABLE) + quote(body, safe=_PRINTABLE)


_KEYS: dict[str, Any] = {}  # secret fingerprint -> parsed private key (or None for HMAC)
_KEYS_LOCK = threading.Lock()


def _private_key(secret: str) -> Any:
    """The asymmetric private key ``secret`` holds (PEM, or base64 of PKCS#8 DER), or None
    when it is an HMAC secret. Parsed once per secret."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    if digest in _KEYS:
        return _KEYS[digest]
    der: bytes | None = None
    if secret.startswith("-----BEGIN"):
        body = "".join(line for line in secret.splitlines() if not line.startswith("-----"))
        der = base64.b64decode(body)
    else:
        try:
            raw = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        # a DER private key starts with a SEQUENCE: an HMAC secret almost never decodes so
        der = raw if raw[:1] == b"\x30" and len(raw) >= 48 else None
    key = _load_der(der) if der is not None else None
    with _KEYS_LOCK:
        _KEYS[digest] = key
    return key


def _load_der(der: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.serialization import load_der_private_key
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the signing secret is a private key (Ed25519 or RSA); install the extra: "
            "pip install 'coinguard[signing]'"
        ) from None
    try:
        return load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        return None  # not a key after all: treated as an HMAC secret


def binance_signature(secret: str, payload: str) -> str:
    """Sign a Binance payload: hex HMAC-SHA256 for an HMAC secret, base64 for an Ed25519 or
    RSA (PKCS#1 v1.5, SHA-256) private key.

    >>> binance_signature("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ...                   "symbol=LTCBTC&timestamp=1499827319559")[:12]
    '8d2a71dec795'
    """
    key = _private_key(secret)
    if key is None:
        return hmac_sha256_hex(secret, payload)
    data = payload.encode("ascii")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return base64.b64encode(key.sign(data)).decode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        signed = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signed).decode("ascii")
    raise ConfigurationError(
        f"a {type(key).__name__} cannot sign Binance requests; use HMAC, Ed25519 or RSA"
    )


@dataclass(frozen=True)
class BinanceSigner:
    """Binance's SIGNED requests: ``timestamp`` and ``recvWindow`` appended to the query,
    then ``signature`` over query + body.

    >>> signer = BinanceSigner(recv_window=5000)
    >>> sig = signer(SigningInput("GET", "/api/v3/account", "", b"", 1499827319559), "s" * 64)
    >>> sig.query.split("&signature=")[0]
    'timestamp=1499827319559&recvWindow=5000'
    """

    recv_window: int = 5000

    def __post_init__(self) -> None:
        window = self.recv_window
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"recv_window must be a positive int (ms), got {window!r}")
        if window > MAX_RECV_WINDOW:
            raise ConfigurationError(
                f"recv_window {window} ms is above Binance's maximum of {MAX_RECV_WINDOW} ms"
            )

    def __call__(self, request: SigningInput, secret: str) -> Signature:
        timing = f"timestamp={request.now_ms}&recvWindow={self.recv_window}"
        query = f"{request.query}&{timing}" if request.query else timing
        body = request.body.decode("utf-8", errors="strict") if request.body else ""
        signature = binance_signature(secret, binance_payload(query, body))
        return Signature(query=f"{query}&signature={quote(signature, safe='')}")


def kraken_signature(secret: str, path: str, nonce: int | str, body: str) -> str:
    """Kraken's ``API-Sign``: base64 of HMAC-SHA512, keyed with the base64-decoded secret,
    over ``path`` followed by the SHA-256 digest of ``nonce`` + ``body`` (the exact body sent).

    >>> kraken_signature(base64.b64encode(b"s" * 64).decode(), "/0/private/Balance", 1,
    ...                  "nonce=1")[:12]
    'Z1mFV57VwEqF'
    """
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "the Kraken signing secret is not base64 (copy the private key as Kraken shows it)"
        ) from None
    digest = hashlib.sha256(f"{nonce}{body}".encode()).digest()
    mac = hmac.new(key, path.encode("utf-8") + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True)
class KrakenSigner:
    """Kraken's private requests: the fields (sent as ``params=``) move into a form body led
    by the attempt's ``nonce``, and ``API-Sign`` signs that body.

    >>> secret = base64.b64encode(b"s" * 64).decode()
    >>> attempt = SigningInput("POST", "/0/private/Balance", "asset=XBT", b"", 0, nonce=7)
    >>> KrakenSigner()(attempt, secret).body
    b'nonce=7&asset=XBT'
    """

    def __call__(self, request: SigningInput, secret: str) -> Signature:
        if request.nonce is None:
            raise ConfigurationError("Kraken signs with a nonce; the profile must declare Nonce()")
        form = request.body.decode("utf-8", errors="replace")
        if form.lstrip()[:1] in ("{", "["):
            raise ConfigurationError(
                "Kraken private calls take their fields as params= (sent in the signed form "
                "body), not json="
            )
        fields = [f"nonce={request.nonce}"]
        fields += [part for part in (request.query, form) if part]
        body = "&".join(fields)
        signature = kraken_signature(secret, request.path, request.nonce, body)
        headers = {"API-Sign": signature, "Content-Type": "application/x-www-form-urlencoded"}
        return Signature(query="", headers=headers, body=body.encode("utf-8"))


def _coinbase_key(secret: str) -> tuple[Any, str]:
    """The private key of a CDP secret and its JWT algorithm: a PEM EC key signs ES256, the
    base64 of a raw Ed25519 key (32 bytes, or 64: seed then public key) EdDSA."""
    if secret.lstrip().startswith("-----BEGIN"):
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(secret.strip().encode(), password=None)
        except (ValueError, TypeError):
            raise ConfigurationError("the Coinbase secret is not a readable PEM key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("a PEM Coinbase secret must be an EC (P-256) private key")
        return key, "ES256"
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) not in (32, 64):
        raise ConfigurationError(
            "the Coinbase secret is neither a PEM EC key nor the base64 of an Ed25519 key"
        )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(raw[:32]), "EdDSA"


@dataclass(frozen=True)
class CoinbaseSigner:
    """Coinbase Advanced Trade (CDP keys): ``Authorization: Bearer <JWT>``, a JWT signed per
    request with the key's private key (ES256 or EdDSA), claims ``sub`` and header ``kid``
    the key name, ``iss`` "cdp", ``nbf`` now, ``exp`` now + ``lifetime`` s, ``uri`` the method,
    host and path (never the query), and a random ``nonce`` header. Needs PyJWT and
    cryptography: ``pip install 'coinguard[signing]'``.

    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> from cryptography.hazmat.primitives import serialization as ser
    >>> raw = Ed25519PrivateKey.generate().private_bytes(
    ...     ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    >>> attempt = SigningInput("GET", "/api/v3/brokerage/accounts", "", b"", 1_800_000_000_000,
    ...                        host="api.coinbase.com", key="organizations/o/apiKeys/k")
    >>> CoinbaseSigner()(attempt, base64.b64encode(raw).decode()).headers["Authorization"][:7]
    'Bearer '
    """

    lifetime: int = 120

    def __call__(self, request: SigningInput, secret: str) -> Signature:
        try:
            import jwt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "Coinbase signs JWTs; install the extra: pip install 'coinguard[signing]'"
            ) from None
        key, algorithm = _coinbase_key(secret)
        now = request.now_ms // 1000
        claims = {
            "sub": request.key,
            "iss": "cdp",
            "nbf": now,
            "exp": now + self.lifetime,
            "uri": f"{request.method} {request.host}{request.path}",
        }
        headers = {"kid": request.key, "nonce": secrets.token_hex()}
        token = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
        return Signature(headers={"Authorization": f"Bearer {token}"})
