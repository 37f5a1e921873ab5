"""The Coinbase Advanced Trade profile: a JWT per request that verifies with the public key
and carries the right claims (ES256 and EdDSA), failed orders answered with HTTP 200 raised,
key permissions judged."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import coinguard
from coinguard import CoinbaseSigner, Scope, SigningInput, get_provider

HOST = "api.coinbase.com"
READ_NAME = "organizations/org-0123/apiKeys/read-key-0123456789"
TRADE_NAME = "organizations/org-0123/apiKeys/trade-key-0123456789"
NOW_MS = 1_800_000_000_000


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COINBASE_API_KEY", "COINBASE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _ec_pair() -> tuple[str, Any]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    return pem.decode(), private.public_key()


def _ed_pair(length: int = 32) -> tuple[str, Any]:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    if length == 64:
        raw += private.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return base64.b64encode(raw).decode(), private.public_key()


def _token(signature: coinguard.Signature) -> str:
    scheme, _, token = signature.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


@pytest.mark.parametrize(
    ("pair", "algorithm"),
    [(_ec_pair, "ES256"), (_ed_pair, "EdDSA"), (lambda: _ed_pair(64), "EdDSA")],
    ids=["es256-pem", "eddsa-32", "eddsa-64"],
)
def test_jwt_verifies_with_the_public_key_and_carries_the_claims(pair: Any, algorithm: str) -> None:
    """Sign then verify: the algorithm follows the key; sub/kid the key name, iss cdp, nbf
    now, exp now + 120, uri METHOD host/path without the query, a random nonce header."""
    secret, public = pair()
    attempt = SigningInput(
        "GET", "/api/v3/brokerage/orders/historical/batch", "limit=5", b"", NOW_MS,
        host=HOST, key=READ_NAME,
    )  # fmt: skip
    token = _token(CoinbaseSigner()(attempt, secret))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm
    assert header["kid"] == READ_NAME
    assert len(header["nonce"]) == 64
    claims = jwt.decode(
        token, public, algorithms=[algorithm], options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims == {
        "sub": READ_NAME,
        "iss": "cdp",
        "nbf": NOW_MS // 1000,
        "exp": NOW_MS // 1000 + 120,
        "uri": f"GET {HOST}/api/v3/brokerage/orders/historical/batch",
    }
    other = jwt.get_unverified_header(_token(CoinbaseSigner()(attempt, secret)))
    assert other["nonce"] != header["nonce"]


def test_a_token_signed_by_another_key_does_not_verify() -> None:
    """The verification is real: a different key's public half rejects the token."""
    secret, _ = _ec_pair()
    _, stranger = _ec_pair()
    attempt = SigningInput("GET", "/api/v3/brokerage/accounts", "", b"", NOW_MS, HOST, READ_NAME)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            _token(CoinbaseSigner()(attempt, secret)),
            stranger,
            algorithms=["ES256"],
            options={"verify_exp": False, "verify_nbf": False},
        )


def test_unreadable_secrets_are_configuration_errors() -> None:
    """Neither PEM EC nor base64 Ed25519: a clear ConfigurationError, no key in it."""
    attempt = SigningInput("GET", "/x", "", b"", NOW_MS, HOST, READ_NAME)
    for bad in ("not-a-key-at-all-0123456789", base64.b64encode(b"x" * 20).decode()):
        with pytest.raises(coinguard.ConfigurationError, match="Coinbase secret") as info:
            CoinbaseSigner()(attempt, bad)
        assert bad not in str(info.value)


class Coinbase:
    """A mock Coinbase: verifies each request's JWT with the key's public half."""

    def __init__(self, publics: dict[str, Any]) -> None:
        self.publics = publics
        self.seen: list[httpx.Request] = []
        self.claims: list[dict[str, Any]] = []
        self.answers: dict[str, list[httpx.Response | Exception]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        token = request.headers["Authorization"].removeprefix("Bearer ")
        name = jwt.get_unverified_header(token)["kid"]
        try:
            claims = jwt.decode(
                token, self.publics[name], algorithms=["ES256", "EdDSA"],
                options={"verify_exp": False, "verify_nbf": False},
            )  # fmt: skip
        except (KeyError, jwt.InvalidTokenError):
            return httpx.Response(401, json={"error": "unauthorized"})
        self.claims.append(claims)
        queued = self.answers.get(request.url.path)
        if queued:
            answer = queued.pop(0)
            if isinstance(answer, Exception):  # the order reached the server, its answer not
                raise answer
            return answer
        return httpx.Response(200, json={"path": request.url.path})


def _client(exchange: Coinbase, read: str, trade: str | None = None, **kw: Any) -> Any:
    extra: dict[str, Any] = {}
    if trade is not None:
        extra = {"trade_key": TRADE_NAME, "trade_secret": trade, "allow_trading": True}
    return coinguard.Client(
        provider="coinbase",
        read_key=READ_NAME,
        read_secret=read,
        http_client=httpx.Client(transport=httpx.MockTransport(exchange)),
        quota_store=coinguard.MemoryStore(),
        **extra,
        **kw,
    )


def test_each_request_carries_its_own_verified_jwt() -> None:
    """Through the client: every request has a fresh JWT the server verifies, its uri the
    request's method, host and path; the request coinguard keeps has no Authorization."""
    read, public = _ec_pair()
    exchange = Coinbase({READ_NAME: public})
    with _client(exchange, read) as client:
        answer = client.get("/api/v3/brokerage/accounts", params={"limit": 5}, raw=True)
        client.get("/api/v3/brokerage/accounts")
    assert [c["uri"] for c in exchange.claims] == [f"GET {HOST}/api/v3/brokerage/accounts"] * 2
    tokens = [r.headers["Authorization"] for r in exchange.seen]
    assert tokens[0] != tokens[1]
    assert answer.status_code == 200


def test_a_failed_order_answered_200_is_an_error() -> None:
    """success: false with error_response on HTTP 200: EnvelopeError naming the failure
    reason, sent once (a refused order is not retried)."""
    read, read_public = _ec_pair()
    trade, trade_public = _ed_pair()
    exchange = Coinbase({READ_NAME: read_public, TRADE_NAME: trade_public})
    exchange.answers["/api/v3/brokerage/orders"] = [
        httpx.Response(
            200,
            json={
                "success": False,
                "error_response": {
                    "error": "INSUFFICIENT_FUND",
                    "message": "Insufficient balance in source account",
                },
            },
        )
    ]
    order = {"client_order_id": "cg-1", "product_id": "BTC-USD", "side": "BUY"}
    with _client(exchange, read, trade) as client, pytest.raises(coinguard.EnvelopeError) as info:
        client.post("/api/v3/brokerage/orders", json=order)
    assert "INSUFFICIENT_FUND: Insufficient balance" in str(info.value)
    assert len(exchange.seen) == 1
    assert exchange.claims[0]["sub"] == TRADE_NAME  # the trade pair signed it


def test_read_only_client_refuses_orders_before_any_byte() -> None:
    """No trade pair: POST orders raises ScopeError and nothing is sent."""
    read, public = _ec_pair()
    exchange = Coinbase({READ_NAME: public})
    with _client(exchange, read) as client, pytest.raises(coinguard.ScopeError):
        client.post("/api/v3/brokerage/orders", json={"product_id": "BTC-USD"})
    assert exchange.seen == []


def test_key_permissions_findings() -> None:
    """key_permissions: a read key that can trade or transfer is a finding."""
    read, public = _ec_pair()
    exchange = Coinbase({READ_NAME: public})
    exchange.answers["/api/v3/brokerage/key_permissions"] = [
        httpx.Response(200, json={"can_view": True, "can_trade": True, "can_transfer": True})
    ]
    with _client(exchange, read) as client:
        (verdict,) = client.verify_key(on_finding="ignore")
    assert set(verdict.findings) == {"the read key can trade", "the read key can withdraw"}
    assert get_provider("coinbase").scope_of("GET", "/api/v3/brokerage/accounts") is Scope.READ


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW_MS / 1000
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


ORDERS = "/api/v3/brokerage/orders"
ORDER = {"product_id": "BTC-USD", "side": "BUY", "order_configuration": {"market_market_ioc": {}}}


def _trader(exchange: Coinbase, clock: FakeClock) -> tuple[Any, str]:
    read, read_public = _ec_pair()
    trade, trade_public = _ec_pair()
    exchange.publics.update({READ_NAME: read_public, TRADE_NAME: trade_public})
    client = _client(exchange, read, trade, clock=clock, sleep=clock.sleep, jitter=lambda: 0.0)
    return client, read


def _placed(client_order_id: str, order_id: str = "o-1") -> httpx.Response:
    body = {"order_id": order_id, "product_id": "BTC-USD", "client_order_id": client_order_id}
    return httpx.Response(200, json={"success": True, "success_response": body})


def _sent_ids(exchange: Coinbase) -> list[str]:
    import json

    return [json.loads(r.content)["client_order_id"] for r in exchange.seen if r.method == "POST"]


def test_orders_get_a_client_order_id_in_the_json_body() -> None:
    """coinguard puts a fresh client_order_id in each order's body; the caller's is kept;
    one used before, or an empty one, is refused before anything is sent."""
    exchange, clock = Coinbase({}), FakeClock()
    client, _ = _trader(exchange, clock)
    with client:
        client.post(ORDERS, json=ORDER)
        client.post(ORDERS, json=ORDER)
        client.post(ORDERS, json={**ORDER, "client_order_id": "mine-1"})
        sent = len(exchange.seen)
        for bad in ("mine-1", ""):
            with pytest.raises(coinguard.ConfigurationError, match="client_order_id"):
                client.post(ORDERS, json={**ORDER, "client_order_id": bad})
    ids = _sent_ids(exchange)
    assert len(set(ids)) == 3
    assert ids[2] == "mine-1"
    spec = get_provider("coinbase").client_order_id
    assert spec is not None
    assert all(spec.valid(i) for i in ids)
    assert len(exchange.seen) == sent


def test_lost_answer_is_resent_with_the_same_id_and_gives_the_first_order(
    log_capture: Any,
) -> None:
    """The order's answer times out: coinguard sends it again with the same client_order_id
    (Coinbase's duplicate guard), says so in the log, and returns what that answer says, the
    order placed first."""
    exchange, clock = Coinbase({}), FakeClock()
    client, _ = _trader(exchange, clock)
    exchange.answers[ORDERS] = [httpx.ReadTimeout("lost"), httpx.ReadTimeout("lost again")]
    with client:
        exchange.answers[ORDERS].append(_placed("later"))  # the id is checked below
        result = client.post(ORDERS, json=ORDER)
    ids = _sent_ids(exchange)
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert result["success_response"]["order_id"] == "o-1"
    said = [r.getMessage() for r in log_capture.records if r.name == "coinguard.orders"]
    assert len([m for m in said if "lost its answer; sending it again" in m]) == 2


def test_resends_stop_at_max_sends_and_the_outcome_stays_unknown() -> None:
    """Every answer lost: 4 sends in all with one id, then OrderOutcomeUnknownError naming
    the id and what was tried."""
    exchange, clock = Coinbase({}), FakeClock()
    client, _ = _trader(exchange, clock)
    exchange.answers[ORDERS] = [httpx.ReadTimeout("lost") for _ in range(10)]
    with client, pytest.raises(coinguard.OrderOutcomeUnknownError) as info:
        client.post(ORDERS, json=ORDER)
    ids = _sent_ids(exchange)
    assert len(ids) == 4
    assert len(set(ids)) == 1
    assert info.value.client_order_id == ids[0]
    assert ids[0] in str(info.value)
    assert "re-sent with the same client order id" in str(info.value)


def _throttled() -> httpx.Response:
    headers = {"x-ratelimit-limit": "30", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"}
    return httpx.Response(401, text="Unauthorized", headers=headers)


def test_throttling_401_is_backed_off_never_a_key_reload_or_bad_key() -> None:
    """A 401 whose rate headers say nothing remains is throttling: the read is retried after
    a wait, the key (from a reloadable source) is not loaded again, and the answer returned."""
    read, public = _ec_pair()
    exchange, clock = Coinbase({READ_NAME: public}), FakeClock()
    exchange.answers["/api/v3/brokerage/accounts"] = [_throttled(), _throttled()]
    loads: list[int] = []

    def key() -> str:
        loads.append(1)
        return READ_NAME

    with coinguard.Client(
        provider="coinbase",
        read_key=key,  # a reloadable source: a 401 from a bad key would load it again
        read_secret=read,
        http_client=httpx.Client(transport=httpx.MockTransport(exchange)),
        quota_store=coinguard.MemoryStore(),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
    ) as client:
        result = client.get("/api/v3/brokerage/accounts")
    assert result == {"path": "/api/v3/brokerage/accounts"}
    assert len(exchange.seen) == 3
    assert len(loads) == 1
    assert sum(clock.slept) >= 2.0  # waited at least the window's reset each time


def test_a_401_without_throttling_signs_is_still_an_authentication_error() -> None:
    """A bad key's 401 (no rate headers) stays AuthenticationError, sent once; one with
    nothing remaining becomes RateLimitError when every retry is throttled too."""
    read, public = _ec_pair()
    exchange, clock = Coinbase({READ_NAME: public}), FakeClock()
    exchange.answers["/api/v3/brokerage/accounts"] = [httpx.Response(401, text="Unauthorized")]
    with _client(exchange, read, clock=clock, sleep=clock.sleep, jitter=lambda: 0.0) as client:
        with pytest.raises(coinguard.AuthenticationError):
            client.get("/api/v3/brokerage/accounts")
        exchange.answers["/api/v3/brokerage/accounts"] = [_throttled() for _ in range(20)]
        with pytest.raises(coinguard.RateLimitError, match="throttled") as info:
            client.get("/api/v3/brokerage/accounts")
    assert not isinstance(info.value, coinguard.AuthenticationError)
    assert info.value.status_code == 401


def test_rate_headers_are_synced_into_the_quota() -> None:
    """x-ratelimit-remaining lowers the local window to what the server says is left."""
    read, public = _ec_pair()
    exchange, clock = Coinbase({READ_NAME: public}), FakeClock()
    headers = {"x-ratelimit-limit": "30", "x-ratelimit-remaining": "3", "x-ratelimit-reset": "1"}
    exchange.answers["/api/v3/brokerage/accounts"] = [httpx.Response(200, json={}, headers=headers)]
    with _client(exchange, read, clock=clock, sleep=clock.sleep, jitter=lambda: 0.0) as client:
        client.get("/api/v3/brokerage/accounts")
        (window,) = client.quota.windows
    assert window.remaining == 3


def test_async_client_resends_a_lost_order_with_the_same_id() -> None:
    """AsyncClient reconciles the same way: a lost answer, one re-send with the same id."""
    import asyncio

    trade, trade_public = _ec_pair()
    read, read_public = _ec_pair()
    exchange = Coinbase({READ_NAME: read_public, TRADE_NAME: trade_public})
    exchange.answers[ORDERS] = [httpx.ReadTimeout("lost"), _placed("x", "o-9")]

    async def handler(request: httpx.Request) -> httpx.Response:
        return exchange(request)

    async def run() -> Any:
        async with coinguard.AsyncClient(
            provider="coinbase",
            read_key=READ_NAME,
            read_secret=read,
            trade_key=TRADE_NAME,
            trade_secret=trade,
            allow_trading=True,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            quota_store=coinguard.MemoryStore(),
        ) as client:
            return await client.post(ORDERS, json=ORDER)

    result = asyncio.run(run())
    ids = _sent_ids(exchange)
    assert len(ids) == 2
    assert ids[0] == ids[1]
    assert result["success_response"]["order_id"] == "o-9"
