"""The Kraken profile: API-Sign per the published vector, nonces drawn per attempt, fields in
the signed body, HTTP-200 error arrays on the error tree, the lockout shared, key checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import KrakenSigner, Scope, SigningInput, get_provider, kraken_signature
from coinguard.providers import kraken

BASE = "https://api.kraken.com"
READ_KEY = "kraken-read-key-0123456789"
TRADE_KEY = "kraken-trade-key-0123456789"
READ_SECRET = base64.b64encode(b"kraken-read-secret-0123456789-0123456789").decode()
TRADE_SECRET = base64.b64encode(b"kraken-trade-secret-0123456789-012345678").decode()
SECRETS = {READ_KEY: READ_SECRET, TRADE_KEY: TRADE_SECRET}

# Kraken's published example (docs.kraken.com, spot REST authentication)
VECTOR_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
VECTOR_NONCE = 1616492376594
VECTOR_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
VECTOR_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_signature_matches_the_published_vector() -> None:
    """kraken_signature gives Kraken's documented API-Sign for its AddOrder example."""
    got = kraken_signature(VECTOR_SECRET, "/0/private/AddOrder", VECTOR_NONCE, VECTOR_BODY)
    assert got == VECTOR_SIGN


def test_signer_puts_the_nonce_first_and_signs_the_exact_body() -> None:
    """The fields move from the query into the body after the nonce; API-Sign is the vector's."""
    query = "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    attempt = SigningInput("POST", "/0/private/AddOrder", query, b"", 0, nonce=VECTOR_NONCE)
    signed = KrakenSigner()(attempt, VECTOR_SECRET)
    assert signed.body == VECTOR_BODY.encode()
    assert signed.query == ""
    assert signed.headers["API-Sign"] == VECTOR_SIGN
    assert signed.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_signer_refuses_to_sign_without_a_nonce_or_with_a_non_base64_secret() -> None:
    """No nonce, or a secret that is not base64: a ConfigurationError, not a bad signature."""
    with pytest.raises(coinguard.ConfigurationError, match="nonce"):
        KrakenSigner()(SigningInput("POST", "/0/private/Balance", "", b"", 0), VECTOR_SECRET)
    with pytest.raises(coinguard.ConfigurationError, match="base64"):
        kraken_signature("not base64 at all!!", "/0/private/Balance", 1, "nonce=1")


def test_routes_reads_and_trades() -> None:
    """Private reads use the read key; AddOrder, CancelOrder and Withdraw are trades."""
    p = get_provider("kraken")
    for method in kraken.READS:
        assert p.scope_of("POST", f"/0/private/{method}") is Scope.READ, method
    for method in ("AddOrder", "CancelOrder", "Withdraw", "GetWebSocketsToken", "NewThing"):
        assert p.scope_of("POST", f"/0/private/{method}") is Scope.TRADE, method
    assert p.counter is not None
    assert (p.counter.limit, p.counter.rate) == (15, 0.33)
    assert p.counter.cost("POST", "/0/private/Ledgers") == 2
    assert p.counter.cost("POST", "/0/private/Balance") == 1
    assert p.counter.cost("POST", "/0/private/AddOrder") == 0
    assert p.counter.cost("GET", "/0/public/Time") == 0


class Kraken:
    """A mock Kraken: checks API-Sign and strictly increasing nonces, answers from a queue."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.nonces: list[int] = []
        self.answers: dict[str, list[httpx.Response]] = {}
        self.last: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if path.startswith("/0/private/"):
            key = request.headers["API-Key"]
            body = request.content.decode()
            nonce = int(dict(urllib.parse.parse_qsl(body))["nonce"])
            self.nonces.append(nonce)
            digest = hashlib.sha256(f"{nonce}{body}".encode()).digest()
            mac = hmac.new(base64.b64decode(SECRETS[key]), path.encode() + digest, hashlib.sha512)
            if base64.b64encode(mac.digest()).decode() != request.headers["API-Sign"]:
                return httpx.Response(200, json={"error": ["EAPI:Invalid signature"]})
            if nonce <= self.last.get(key, 0):
                return httpx.Response(200, json={"error": ["EAPI:Invalid nonce"]})
            self.last[key] = nonce
        queued = self.answers.get(path)
        if queued:
            return queued.pop(0)
        return httpx.Response(200, json={"error": [], "result": {"path": path}})


def _client(exchange: Kraken, clock: FakeClock, **kwargs: Any) -> coinguard.Client:
    kwargs.setdefault("provider", "kraken")
    return coinguard.Client(
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        http_client=httpx.Client(transport=httpx.MockTransport(exchange)),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
        **kwargs,
    )


def test_private_read_is_signed_with_fields_in_the_body_only() -> None:
    """params= go into the signed form body after the nonce, none in the URL; the answer's
    ``result`` comes back whole; the request coinguard keeps carries no key or signature."""
    clock = FakeClock()
    exchange = Kraken()
    with _client(exchange, clock, quota_store=coinguard.MemoryStore()) as client:
        body = client.post("/0/private/Balance", params={"asset": "XBT"}, raw=True)
    sent = exchange.seen[0]
    assert sent.url.query == b""
    assert sent.content.decode() == f"nonce={exchange.nonces[0]}&asset=XBT"
    assert exchange.nonces[0] >= int(clock() * 1000)
    assert body.body == {"error": [], "result": {"path": "/0/private/Balance"}}


def test_every_request_of_a_key_has_a_larger_nonce_and_a_retry_a_new_one() -> None:
    """Nonces grow call after call, and a 502 retried goes out with a fresh nonce."""
    clock = FakeClock()
    exchange = Kraken()
    exchange.answers["/0/private/Balance"] = [httpx.Response(502)]
    with _client(exchange, clock, quota_store=coinguard.MemoryStore()) as client:
        client.post("/0/private/Balance")
        client.post("/0/private/TradeBalance")
    assert len(exchange.nonces) == 3
    assert exchange.nonces == sorted(set(exchange.nonces))


def test_a_request_refused_for_its_nonce_is_signed_again() -> None:
    """EAPI:Invalid nonce (overtaken by another client of the key): re-sent with a new nonce,
    and the caller never sees the error; a key far ahead runs out of resends and is told."""
    clock = FakeClock()
    exchange = Kraken()
    store = coinguard.MemoryStore()
    key = f"kraken:nonce:{coinguard.fingerprint(READ_KEY)}"
    with _client(exchange, clock, quota_store=store) as client:
        exchange.last[READ_KEY] = store.next_nonce(key, int(clock() * 1000)) + 1
        assert client.post("/0/private/Balance") == {
            "error": [],
            "result": {"path": "/0/private/Balance"},
        }
        assert len(exchange.seen) == 2
        assert exchange.nonces[1] > exchange.nonces[0]
        exchange.seen.clear()
        exchange.last[READ_KEY] = 10**15  # another machine, far ahead without the store
        with pytest.raises(coinguard.APIStatusError, match="EAPI:Invalid nonce"):
            client.post("/0/private/Balance")
    assert kraken.PROFILE.nonce is not None
    assert len(exchange.seen) == 1 + kraken.PROFILE.nonce.resends


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        ("EAPI:Invalid key", coinguard.AuthenticationError),
        ("EAPI:Invalid signature", coinguard.AuthenticationError),
        ("EGeneral:Permission denied", coinguard.PermissionDeniedError),
        ("EAPI:Rate limit exceeded", coinguard.RateLimitError),
        ("EService: Throttled: 1800000100", coinguard.RateLimitError),
        ("EGeneral:Invalid arguments", coinguard.APIStatusError),
        ("EQuery:Unknown asset pair", coinguard.APIStatusError),
    ],
)
def test_http_200_error_arrays_map_onto_the_error_tree(error: str, raised: type[Exception]) -> None:
    """{"error": [...]} on HTTP 200 raises the matching coinguard error, naming the code."""
    clock = FakeClock()
    exchange = Kraken()
    exchange.answers["/0/private/Balance"] = [httpx.Response(200, json={"error": [error]})] * 10
    store = coinguard.MemoryStore()
    with (
        _client(exchange, clock, max_retries=0, quota_store=store) as c,
        pytest.raises(raised) as info,
    ):
        c.post("/0/private/Balance")
    assert error.split(":")[0] in str(info.value)


def test_service_unavailable_on_an_order_is_an_unknown_outcome() -> None:
    """EService:Unavailable answering AddOrder: the order may exist, never a plain failure;
    it is looked up (found nowhere here), not sent again."""
    clock = FakeClock()
    exchange = Kraken()
    exchange.answers["/0/private/AddOrder"] = [
        httpx.Response(200, json={"error": ["EService:Unavailable"]})
    ]
    with (
        _client(
            exchange,
            clock,
            trade_key=TRADE_KEY,
            trade_secret=TRADE_SECRET,
            allow_trading=True,
            quota_store=coinguard.MemoryStore(),
        ) as client,
        pytest.raises(coinguard.OrderOutcomeUnknownError),
    ):
        client.post("/0/private/AddOrder", params={"pair": "XBTUSD", "type": "buy"})
    sent = [r.url.path.removeprefix("/0/private/") for r in exchange.seen]
    assert sent.count("AddOrder") == 1  # not re-sent blindly
    assert set(sent[1:]) == {"OpenOrders", "ClosedOrders"}


def test_temporary_lockout_holds_every_client_of_the_key() -> None:
    """EGeneral:Temporary lockout: the caller is told to wait 15 minutes, and another client
    sharing the store sends nothing meanwhile."""
    clock = FakeClock()
    exchange = Kraken()
    exchange.answers["/0/private/Balance"] = [
        httpx.Response(200, json={"error": ["EGeneral:Temporary lockout"]})
    ]
    store = coinguard.MemoryStore()
    with (
        _client(exchange, clock, quota_store=store, on_quota="raise") as first,
        pytest.raises(coinguard.RateLimitError) as info,
    ):
        first.post("/0/private/Balance")
    assert info.value.retry_after == pytest.approx(kraken.LOCKOUT_SECONDS)
    sent = len(exchange.seen)
    with (
        _client(exchange, clock, quota_store=store, on_quota="raise") as second,
        pytest.raises(coinguard.QuotaExceededError),
    ):
        second.post("/0/private/TradeBalance")
    assert len(exchange.seen) == sent
    clock.now += kraken.LOCKOUT_SECONDS + 1
    with _client(exchange, clock, quota_store=store, on_quota="raise") as third:
        third.post("/0/private/TradeBalance")
    assert len(exchange.seen) == sent + 1


def test_a_read_only_client_refuses_add_order_before_any_byte() -> None:
    """AddOrder from a client without trading: ScopeError, nothing sent, no nonce drawn."""
    clock = FakeClock()
    exchange = Kraken()
    store = coinguard.MemoryStore()
    with _client(exchange, clock, quota_store=store) as client, pytest.raises(coinguard.ScopeError):
        client.post("/0/private/AddOrder", params={"pair": "XBTUSD"})
    assert exchange.seen == []
    key = f"kraken:nonce:{coinguard.fingerprint(READ_KEY)}"
    assert store.next_nonce(key, 1) == 1


@pytest.mark.parametrize(
    ("permissions", "scope", "findings"),
    [
        (["query-funds", "query-open-trades"], "read", ()),
        (["query-funds", "withdraw-funds"], "read", ("the read key can withdraw",)),
        (["query-funds", "modify-trades"], "read", ("the read key can trade",)),
        (
            ["query-funds", "modify-trades", "withdraw-funds"],
            "trade",
            ("the trade key can withdraw",),
        ),
    ],
)
def test_api_key_info_findings(
    permissions: list[str], scope: str, findings: tuple[str, ...]
) -> None:
    """GetApiKeyInfo: withdraw or trade permissions on a read key are findings; validUntil
    and createdTime become the key's expiry and age."""
    from datetime import datetime, timedelta, timezone

    from coinguard._verify import report

    body = {
        "error": [],
        "result": {
            "permissions": permissions,
            "createdTime": "1772542900",
            "validUntil": "1800000000",
            "ipAllowlist": ["203.0.113.7"],
        },
    }
    perms = coinguard.kraken_api_key_info(body)
    assert perms.expires_at == datetime.fromtimestamp(1_800_000_000, timezone.utc)
    assert perms.created_at == datetime.fromtimestamp(1_772_542_900, timezone.utc)
    assert perms.ip_restricted is True
    now = datetime.fromtimestamp(1_799_990_000, timezone.utc)
    verdict = report(scope, "fp:x", perms, max_age=timedelta(days=3650), now=now)
    assert verdict.findings == findings
    assert any("expire" in f for f in verdict.age_findings)


def test_the_rest_counter_paces_calls_on_the_fake_clock() -> None:
    """Starter tier: 14 private reads go at once (15 kept 0.33 below), the 15th after 1 s,
    then one per 1/0.33 s as the counter drains; a ledger call costs 2; nothing sleeps."""
    clock = FakeClock()
    exchange = Kraken()
    sent_at: list[float] = []
    inner = exchange.__call__

    def timed(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock())
        return inner(request)

    with coinguard.Client(
        provider="kraken",
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        http_client=httpx.Client(transport=httpx.MockTransport(timed)),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
        quota_store=coinguard.MemoryStore(),
    ) as client:
        for _ in range(16):
            client.post("/0/private/Balance")
        client.post("/0/private/Ledgers")
    start = sent_at[0]
    assert sent_at[:14] == [start] * 14
    assert sent_at[14] - start == pytest.approx(1.0)
    assert sent_at[15] - sent_at[14] == pytest.approx(1 / 0.33)
    assert sent_at[16] - sent_at[15] == pytest.approx(2 / 0.33)


def test_rate_limit_exceeded_fills_the_counter_for_every_client() -> None:
    """EAPI:Rate limit exceeded: the counter is taken as full, so the next call (from another
    client on the same store) waits for it to drain below the ceiling."""
    clock = FakeClock()
    exchange = Kraken()
    exchange.answers["/0/private/Balance"] = [
        httpx.Response(200, json={"error": ["EAPI:Rate limit exceeded"]})
    ]
    store = coinguard.MemoryStore()
    with (
        _client(exchange, clock, quota_store=store, max_retries=0) as first,
        pytest.raises(coinguard.RateLimitError),
    ):
        first.post("/0/private/Balance")
    before = clock()
    with _client(exchange, clock, quota_store=store) as second:
        second.post("/0/private/TradeBalance")
    assert clock() - before == pytest.approx((15 - (15 - 0.33) + 1) / 0.33, abs=0.5)


def test_a_json_body_is_refused_with_the_way_to_send_fields() -> None:
    """json= on a private call: ConfigurationError saying to use params=, nothing sent."""
    clock = FakeClock()
    exchange = Kraken()
    with (
        _client(exchange, clock, quota_store=coinguard.MemoryStore()) as client,
        pytest.raises(coinguard.ConfigurationError, match="params="),
    ):
        client.post("/0/private/Balance", json={"asset": "XBT"})
    assert exchange.seen == []
