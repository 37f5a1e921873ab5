"""A signed provider through the client: key pairs per scope, fresh signatures, the server clock."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import BinanceSigner, ErrorCode, ServerTime, SignedKey

BASE = "https://api.signed.test"
READ_KEY = "read-key-0123456789abcdef"
TRADE_KEY = "trade-key-0123456789abcdef"
READ_SECRET = "read-secret-0123456789abcdef"
TRADE_SECRET = "trade-secret-0123456789abcdef"
STYLE = SignedKey("X-MBX-APIKEY", BinanceSigner(), signed_routes=["* /account", "* /order"])
PROVIDER = coinguard.Provider(
    name="signed",
    base_url=BASE,
    auth=STYLE,
    read_routes=["GET /account", "GET /order"],
    trade_routes=["POST /order"],
    server_time=ServerTime("/time", "serverTime", resync_codes=frozenset({"-1021"})),
    error_code_at=(("code",),),
    error_codes={"-1021": ErrorCode("invalid", hint="timestamp outside recvWindow")},
    success_codes=frozenset(),
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for scope in ("READ", "TRADE"):
        for suffix in ("KEY", "KEY_FILE", "KEY_REF", "SECRET", "SECRET_FILE", "SECRET_REF"):
            monkeypatch.delenv(f"COINGUARD_{scope}_{suffix}", raising=False)


class FakeClock:
    """Wall clock in seconds; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Exchange:
    """A mock exchange that checks signatures with known secrets, its clock ``skew_ms`` ahead."""

    def __init__(self, clock: FakeClock, skew_ms: int = 0) -> None:
        self.clock = clock
        self.skew_ms = skew_ms
        self.seen: list[httpx.Request] = []
        self.fail_next: list[httpx.Response] = []
        self.secrets = {READ_KEY: READ_SECRET, TRADE_KEY: TRADE_SECRET}

    def server_ms(self) -> int:
        return int(self.clock() * 1000) + self.skew_ms

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        self.clock.now += 0.01  # each answer takes 10 ms
        if request.url.path == "/time":
            return httpx.Response(200, json={"serverTime": self.server_ms()})
        if self.fail_next:
            return self.fail_next.pop(0)
        query = request.url.query.decode()
        payload, _, signature = query.partition("&signature=")
        secret = self.secrets[request.headers["X-MBX-APIKEY"]]
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if signature != expected:
            return httpx.Response(400, json={"code": -1022, "msg": "Signature is not valid."})
        sent = int(request.url.params["timestamp"])
        if not (sent < self.server_ms() + 1000 and self.server_ms() - sent <= 5000):
            return httpx.Response(400, json={"code": -1021, "msg": "Timestamp outside window."})
        return httpx.Response(200, json={"ok": True, "timestamp": sent})


def _client(exchange: Exchange, clock: FakeClock, **kwargs: Any) -> coinguard.Client:
    args: dict[str, Any] = {
        "provider": PROVIDER,
        "read_key": READ_KEY,
        "read_secret": READ_SECRET,
        "http_client": httpx.Client(transport=httpx.MockTransport(exchange)),
        "clock": clock,
        "sleep": clock.sleep,
        "jitter": lambda: 0.0,
        "quota": None,
    }
    args.update(kwargs)
    return coinguard.Client(**args)


def test_signed_read_carries_a_valid_signature_and_server_time() -> None:
    """The first signed call measures the server clock; its timestamp is on the server's clock."""
    clock = FakeClock()
    exchange = Exchange(clock, skew_ms=7_000)  # our clock is 7 s behind: unsigned math fails
    with _client(exchange, clock) as client:
        answer = client.get("/account")
    assert answer["ok"] is True
    assert [r.url.path for r in exchange.seen] == ["/time", "/account"]
    # within one answer's latency (10 ms) of the server's clock, 7 s away from ours
    assert abs(answer["timestamp"] - exchange.server_ms()) <= 10


def test_trade_uses_the_trade_pair_and_read_uses_the_read_pair() -> None:
    """Each scope signs with its own secret, under its own key."""
    clock = FakeClock()
    exchange = Exchange(clock)
    with _client(
        exchange, clock, trade_key=TRADE_KEY, trade_secret=TRADE_SECRET, allow_trading=True
    ) as client:
        client.get("/account")
        client.post("/order", params={"symbol": "BTCUSDT"})
    keys = [r.headers["X-MBX-APIKEY"] for r in exchange.seen if r.url.path != "/time"]
    assert keys == [READ_KEY, TRADE_KEY]


def test_read_only_client_never_loads_the_trade_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A trade secret file that does not exist is never looked at by a read-only client."""
    monkeypatch.setenv("COINGUARD_TRADE_SECRET_FILE", str(tmp_path / "missing"))
    clock = FakeClock()
    with _client(Exchange(clock), clock) as client:
        assert client.get("/account")["ok"] is True
        with pytest.raises(coinguard.ScopeError):
            client.post("/order")


def test_secrets_come_from_the_same_sources_as_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """COINGUARD_READ_SECRET and COINGUARD_TRADE_SECRET_FILE feed the two pairs."""
    monkeypatch.setenv("COINGUARD_READ_SECRET", READ_SECRET)
    secret_file = tmp_path / "trade-secret"
    secret_file.write_text(TRADE_SECRET + "\n")
    monkeypatch.setenv("COINGUARD_TRADE_SECRET_FILE", str(secret_file))
    clock = FakeClock()
    exchange = Exchange(clock)
    with _client(
        exchange, clock, read_secret=None, trade_key=TRADE_KEY, allow_trading=True
    ) as client:
        assert client.get("/account")["ok"] is True
        assert client.post("/order")["ok"] is True


def test_missing_secret_names_every_place_looked() -> None:
    """No read secret anywhere: the error lists the argument and the variables, no value."""
    with pytest.raises(coinguard.MissingKeyError) as info:
        coinguard.Client(provider=PROVIDER, read_key=READ_KEY)
    message = str(info.value)
    assert "read_secret argument" in message
    assert "COINGUARD_READ_SECRET_FILE" in message
    assert READ_KEY not in message


def test_secret_for_an_unsigned_provider_is_refused() -> None:
    """read_secret= on a provider that does not sign is a configuration error."""
    provider = coinguard.Provider(name="plain", base_url=BASE)
    with pytest.raises(coinguard.ConfigurationError, match="does not sign"):
        coinguard.Client(provider=provider, read_key=READ_KEY, read_secret=READ_SECRET)


def test_same_secret_for_both_scopes_is_refused() -> None:
    """Read and trade pairs are separate: one secret for both is refused."""
    with pytest.raises(coinguard.ConfigurationError, match="two different secrets"):
        coinguard.Client(
            provider=PROVIDER,
            read_key=READ_KEY,
            read_secret=READ_SECRET,
            trade_key=TRADE_KEY,
            trade_secret=READ_SECRET,
            allow_trading=True,
        )


def test_pem_block_is_refused_as_an_api_key() -> None:
    """A PEM private key passed where the API key goes is refused, without its text."""
    body = "MC4CAQAwBQYDK2VwBCIEIabcdefabcdefabcdef"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    with pytest.raises(coinguard.ConfigurationError, match="PEM") as info:
        coinguard.Client(provider=PROVIDER, read_key=pem, read_secret=READ_SECRET)
    assert "MC4CAQ" not in str(info.value)


def test_a_retry_is_signed_again_with_a_fresh_timestamp() -> None:
    """A 503 then a success: the second attempt carries its own timestamp and signature."""
    clock = FakeClock()
    exchange = Exchange(clock)
    exchange.fail_next.append(httpx.Response(503, json={"code": -1001, "msg": "busy"}))
    with _client(exchange, clock) as client:
        assert client.get("/account")["ok"] is True
    sent = [r for r in exchange.seen if r.url.path == "/account"]
    assert len(sent) == 2
    assert sent[0].url.params["timestamp"] != sent[1].url.params["timestamp"]
    assert sent[0].url.params["signature"] != sent[1].url.params["signature"]


def test_timestamp_refusal_resyncs_the_clock_and_retries_once() -> None:
    """-1021 (the server clock moved): measure it again, re-sign, send once more; it succeeds."""
    clock = FakeClock()
    exchange = Exchange(clock)
    with _client(exchange, clock) as client:
        client.get("/account")
        exchange.skew_ms = 30_000  # the server's clock jumps ahead
        assert client.get("/account")["ok"] is True
    paths = [r.url.path for r in exchange.seen]
    assert paths == ["/time", "/account", "/account", "/time", "/account"]


def test_a_second_timestamp_refusal_is_raised() -> None:
    """Refused again after a re-sync: the error goes to the caller, no loop of -1021."""
    clock = FakeClock()
    exchange = Exchange(clock)
    refusal = httpx.Response(400, json={"code": -1021, "msg": "Timestamp outside window."})
    exchange.fail_next += [refusal, refusal, refusal]
    with _client(exchange, clock) as client, pytest.raises(coinguard.APIStatusError) as info:
        client.get("/account")
    assert "-1021" in str(info.value)
    assert [r.url.path for r in exchange.seen] == ["/time", "/account", "/time", "/account"]


def test_clock_is_measured_again_after_the_period() -> None:
    """After ServerTime.every seconds the offset is measured again before a signed call."""
    clock = FakeClock()
    exchange = Exchange(clock)
    with _client(exchange, clock) as client:
        client.get("/account")
        clock.now += 301
        client.get("/account")
    assert [r.url.path for r in exchange.seen] == ["/time", "/account", "/time", "/account"]


@pytest.mark.anyio
async def test_async_client_signs_and_syncs_too() -> None:
    """AsyncClient goes through the same steps: server time, then a valid signed read."""
    clock = FakeClock()
    exchange = Exchange(clock, skew_ms=-9_000)

    async def no_sleep(seconds: float) -> None:
        clock.now += seconds

    async with coinguard.AsyncClient(
        provider=PROVIDER,
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(exchange)),
        clock=clock,
        sleep=no_sleep,
        quota=None,
    ) as client:
        assert (await client.get("/account"))["ok"] is True
