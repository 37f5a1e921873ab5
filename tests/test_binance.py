"""The Binance spot profile: security types, weights, error codes, the server clock, key checks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import QuotaPolicy, Scope, Window, get_provider
from coinguard.providers import binance

BASE = "https://api.binance.com"
READ_KEY = "binance-read-key-0123456789"
READ_SECRET = "binance-read-secret-0123456789"
TRADE_KEY = "binance-trade-key-0123456789"
TRADE_SECRET = "binance-trade-secret-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_routes_follow_their_security_types() -> None:
    """TRADE routes need the trade key; USER_DATA reads are signed; market data is not."""
    p = get_provider("binance")
    assert isinstance(p.auth, coinguard.SignedKey)
    for route, (security, _) in binance.ROUTES.items():
        method, path = route.split(" ")
        assert (p.scope_of(method, path) is Scope.TRADE) == (security == "TRADE"), route
        assert p.auth.signs(method, path) == (security in ("USER_DATA", "TRADE")), route


def test_weights_and_windows() -> None:
    """REQUEST_WEIGHT 6000 per aligned minute, per-route weights; ORDERS 50/10 s and 160k/day."""
    p = get_provider("binance")
    assert p.quota is not None
    assert p.order_quota is not None
    assert [(w.limit, w.seconds, w.calendar) for w in p.quota.windows] == [(6000, 60.0, True)]
    assert p.quota.cost("GET", "/api/v3/exchangeInfo") == 20
    assert p.quota.cost("GET", "/api/v3/account") == 20
    assert p.quota.cost("GET", "/api/v3/order") == 4
    assert p.quota.cost("GET", "/sapi/v1/account/apiRestrictions") == 0
    assert [(w.limit, w.seconds) for w in p.order_quota.windows] == [(50, 10.0), (160_000, 86400.0)]
    assert p.order_quota.cost("DELETE", "/api/v3/order") == 0
    assert p.quota_per == "ip"


def test_recv_window_is_configurable_up_to_60000() -> None:
    """profile(recv_window=...) signs with it; above 60000 is refused."""
    assert binance.profile(recv_window=60_000).auth.sign.recv_window == 60_000  # type: ignore[union-attr]
    with pytest.raises(coinguard.ConfigurationError, match="60000"):
        binance.profile(recv_window=60_001)


class Binance:
    """A mock Binance: verifies HMAC signatures, answers per path from ``answers``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seen: list[httpx.Request] = []
        self.answers: dict[str, list[httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": int(self.clock() * 1000)})
        if "signature" in request.url.params:
            payload = request.url.query.decode().partition("&signature=")[0]
            secret = {READ_KEY: READ_SECRET, TRADE_KEY: TRADE_SECRET}[
                request.headers["X-MBX-APIKEY"]
            ]
            good = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if good != request.url.params["signature"]:
                return httpx.Response(400, json={"code": -1022, "msg": "Signature invalid."})
        queued = self.answers.get(path)
        if queued:
            return queued.pop(0)
        return httpx.Response(200, json={"path": path}, headers={"X-MBX-USED-WEIGHT-1M": "100"})


def _client(exchange: Binance, clock: FakeClock, **kwargs: Any) -> coinguard.Client:
    kwargs.setdefault("provider", "binance")
    return coinguard.Client(
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        http_client=httpx.Client(transport=httpx.MockTransport(exchange)),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
        **kwargs,
    )


def test_weight_header_syncs_the_quota() -> None:
    """X-MBX-USED-WEIGHT-1M raises our count of the minute to what Binance counted."""
    clock = FakeClock()
    exchange = Binance(clock)
    with _client(exchange, clock) as client:
        client.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
        status = client.quota
    assert status is not None
    assert status.windows[0].used >= 100


def test_418_ban_holds_the_ip_until_the_time_in_the_message() -> None:
    """A 418 with no Retry-After: the epoch ms in "IP banned until ..." sets the wait."""
    clock = FakeClock()
    exchange = Binance(clock)
    until = int((clock() + 120) * 1000)
    exchange.answers["/api/v3/depth"] = [
        httpx.Response(
            418,
            json={
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until}.",
            },
        )
    ]
    with _client(exchange, clock, on_quota="raise") as client:
        with pytest.raises(coinguard.RateLimitError) as info:
            client.get("/api/v3/depth")
        assert info.value.retry_after == pytest.approx(120, abs=1)
        sent = len(exchange.seen)
        with pytest.raises(coinguard.QuotaExceededError):
            client.get("/api/v3/ping")  # the IP is in the penalty box: nothing is sent
        assert len(exchange.seen) == sent


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, -2013, coinguard.NotFoundError),
        (401, -2015, coinguard.PermissionDeniedError),
        (400, -2014, coinguard.AuthenticationError),
        (400, -1022, coinguard.AuthenticationError),
        (429, -1003, coinguard.RateLimitError),
    ],
)
def test_error_codes_map_onto_the_error_tree(
    status: int, code: int, error: type[Exception]
) -> None:
    """Binance's {code, msg} bodies become the matching coinguard error, code in the message."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/api/v3/account"] = [
        httpx.Response(status, json={"code": code, "msg": "no"})
    ] * 5
    with _client(exchange, clock, max_retries=0) as client, pytest.raises(error) as info:
        client.get("/api/v3/account")
    assert str(code) in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(400, json={"code": -1007, "msg": "Timeout waiting for response."}),
        httpx.Response(503, json={"code": -1001, "msg": "Internal error."}),
    ],
    ids=["-1007", "503"],
)
def test_unknown_execution_status_is_looked_up_not_failed(answer: httpx.Response) -> None:
    """-1007 and 5XX on an order are never a failure: the order is looked up by its client id
    (not re-sent), and the order the lookup finds is the call's result."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/api/v3/order"] = [answer]
    with _client(
        exchange, clock, trade_key=TRADE_KEY, trade_secret=TRADE_SECRET, allow_trading=True
    ) as client:
        result = client.post("/api/v3/order", params={"symbol": "BTCUSDT", "side": "BUY"})
    sent = [(r.method, r.url.path) for r in exchange.seen if r.url.path == "/api/v3/order"]
    assert sent == [("POST", "/api/v3/order"), ("GET", "/api/v3/order")]
    lookup = next(r for r in exchange.seen if r.method == "GET" and r.url.path == "/api/v3/order")
    post = next(r for r in exchange.seen if r.method == "POST")
    assert lookup.url.params["origClientOrderId"] == post.url.params["newClientOrderId"]
    assert lookup.url.params["symbol"] == "BTCUSDT"
    assert lookup.headers["X-MBX-APIKEY"] == READ_KEY  # a USER_DATA read: the read pair
    assert result == {"path": "/api/v3/order"}


def test_order_without_reconciliation_stays_unknown() -> None:
    """A provider that declares no ClientOrderId: a 503 order is OrderOutcomeUnknownError."""
    import dataclasses

    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/api/v3/order"] = [httpx.Response(503, json={"code": -1001, "msg": "x"})]
    provider = dataclasses.replace(binance.PROFILE, client_order_id=None)
    with (
        _client(
            exchange,
            clock,
            provider=provider,
            trade_key=TRADE_KEY,
            trade_secret=TRADE_SECRET,
            allow_trading=True,
        ) as client,
        pytest.raises(coinguard.OrderOutcomeUnknownError),
    ):
        client.post("/api/v3/order", params={"symbol": "BTCUSDT"})
    assert [r.method for r in exchange.seen if r.url.path == "/api/v3/order"] == ["POST"]


def test_read_only_client_refuses_an_order_before_any_byte() -> None:
    """No trade pair: POST /api/v3/order raises ScopeError and nothing is sent."""
    clock = FakeClock()
    exchange = Binance(clock)
    with _client(exchange, clock) as client, pytest.raises(coinguard.ScopeError):
        client.post("/api/v3/order", params={"symbol": "BTCUSDT"})
    assert exchange.seen == []


def _restrictions(**flags: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ipRestrict": True,
        "createTime": 1_790_000_000_000,
        "enableReading": True,
        "enableWithdrawals": False,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": True,
        "enableSpotAndMarginTrading": False,
        "enablePortfolioMarginTrading": False,
    }
    body.update(flags)
    return body


@pytest.mark.parametrize(
    ("scope", "flags", "finding"),
    [
        ("read", {"enableSpotAndMarginTrading": True}, "the read key can trade"),
        ("read", {"enableFixApiTrade": True}, "the read key can trade"),
        ("read", {"permitsUniversalTransfer": True}, "the read key can withdraw"),
        ("trade", {"enableSpotAndMarginTrading": True, "ipRestrict": False}, "not restricted"),
        ("trade", {"enableSpotAndMarginTrading": True, "enableWithdrawals": True}, "withdraw"),
    ],
)
def test_api_restrictions_findings(scope: str, flags: dict[str, Any], finding: str) -> None:
    """apiRestrictions flags become findings for the key's scope."""
    perms = coinguard.binance_api_restrictions(_restrictions(**flags))
    from coinguard._verify import findings_for

    assert any(finding in f for f in findings_for(scope, perms))


def test_api_restrictions_dates() -> None:
    """createTime feeds the key-age check; tradingAuthorityExpirationTime is the expiry."""
    perms = coinguard.binance_api_restrictions(
        _restrictions(tradingAuthorityExpirationTime=1_800_000_000_000)
    )
    assert perms.created_at is not None
    assert perms.created_at.year == 2026
    assert perms.expires_at is not None
    assert perms.expires_at.year == 2027


def test_verify_key_asks_api_restrictions_signed() -> None:
    """verify_key() sends a signed GET /sapi/v1/account/apiRestrictions with the read pair."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/sapi/v1/account/apiRestrictions"] = [
        httpx.Response(200, json=_restrictions(createTime=int(clock() * 1000)))
    ]
    with _client(exchange, clock) as client:
        reports = client.verify_key()
    assert reports[0].ok
    sent = [r for r in exchange.seen if r.url.path.startswith("/sapi")]
    assert len(sent) == 1
    assert "signature" in sent[0].url.params


@pytest.mark.anyio
async def test_async_reconciles_a_duplicate_resend_to_the_first_order() -> None:
    """AsyncClient, with re-sends allowed: the order's answer is a 503, lookups say -2013,
    the re-send is refused as a duplicate (it was there after all), and a last lookup
    returns the real order."""
    clock = FakeClock()
    exchange = Binance(clock)
    placed = {"orderId": 7, "clientOrderId": "", "status": "NEW"}
    not_found = httpx.Response(400, json={"code": -2013, "msg": "Order does not exist."})
    exchange.answers["/api/v3/order"] = [
        httpx.Response(503, json={"code": -1001, "msg": "Internal error."}),
        *[not_found] * 4,
        httpx.Response(400, json={"code": -2010, "msg": "Duplicate order sent."}),
    ]

    def found(request: httpx.Request) -> httpx.Response:
        placed["clientOrderId"] = request.url.params["origClientOrderId"]
        return httpx.Response(200, json=placed)

    inner = exchange.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        queued = exchange.answers["/api/v3/order"]
        if request.url.path == "/api/v3/order" and not queued and request.method == "GET":
            exchange.seen.append(request)
            return found(request)
        return inner(request)

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    spec = binance.PROFILE.client_order_id
    assert spec is not None
    # an exchange that refuses a used id for good may have an order sent again
    resending = dataclasses.replace(
        binance.PROFILE, client_order_id=dataclasses.replace(spec, max_sends=3)
    )
    async with coinguard.AsyncClient(
        provider=resending,
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        clock=clock,
        sleep=sleep,
        jitter=lambda: 0.0,
    ) as client:
        order = await client.post("/api/v3/order", params={"symbol": "BTCUSDT", "side": "BUY"})
    posts = [r for r in exchange.seen if r.method == "POST"]
    assert len(posts) == 2
    ids = {r.url.params["newClientOrderId"] for r in posts}
    assert ids == {order["clientOrderId"]}  # the re-send carried the same id
    assert order["orderId"] == 7


def test_order_count_headers_sync_the_orders_quota() -> None:
    """X-MBX-ORDER-COUNT-10S on an order's answer raises the ORDERS window to Binance's count:
    with 49 of 50 counted, the next order fits and the one after waits (here: raises)."""
    clock = FakeClock()
    exchange = Binance(clock)
    placed = httpx.Response(
        200,
        json={"orderId": 1, "status": "NEW"},
        headers={"X-MBX-ORDER-COUNT-10S": "49", "X-MBX-ORDER-COUNT-1D": "49"},
    )
    exchange.answers["/api/v3/order"] = [placed, placed]
    with _client(
        exchange,
        clock,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        on_quota="raise",
    ) as client:
        client.post("/api/v3/order", params={"symbol": "BTCUSDT"})
        client.post("/api/v3/order", params={"symbol": "BTCUSDT"})
        weight = client.quota
        with pytest.raises(coinguard.QuotaExceededError, match="ORDERS 50/10s"):
            client.post("/api/v3/order", params={"symbol": "BTCUSDT"})
        # the refused order gave back the request weight it had reserved
        assert client.quota is not None
        assert weight is not None
        assert client.quota.windows[0].used == weight.windows[0].used
    assert len([r for r in exchange.seen if r.method == "POST"]) == 2


def test_a_failed_clock_sync_before_an_order_is_not_an_unknown_order() -> None:
    """The order's clock sync cannot connect: the order never left, so the call fails as
    that connection failure, not as "the order may have executed", and nothing is looked up."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v3/time":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"orderId": 1})

    with (
        coinguard.Client(
            provider="binance",
            read_key=READ_KEY,
            read_secret=READ_SECRET,
            trade_key=TRADE_KEY,
            trade_secret=TRADE_SECRET,
            allow_trading=True,
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
            max_retries=0,
        ) as client,
        pytest.raises(coinguard.APIConnectionError) as info,
    ):
        client.post("/api/v3/order", params={"symbol": "BTCUSDT", "side": "BUY"})
    assert not isinstance(info.value, coinguard.OrderOutcomeUnknownError)
    assert "/api/v3/time" in str(info.value)
    assert {r.url.path for r in seen} == {"/api/v3/time"}


def test_sapi_routes_have_limiters_of_their_own() -> None:
    """Each SAPI endpoint counts on its own IP (12,000/min) or UID (180,000/min) limiter at its
    own weight, and weighs nothing on REQUEST_WEIGHT; RAW_REQUESTS counts every /api call."""
    p = get_provider("binance")
    assert p.quota is not None
    by_name = {q.name: q for q in p.route_quotas}
    ip, uid = by_name["SAPI IP"], by_name["SAPI UID"]
    assert (ip.per, ip.each, ip.separate) == ("ip", True, True)
    assert (uid.per, uid.each, uid.separate) == ("key", True, True)
    assert [(w.limit, w.seconds, w.calendar) for w in ip.quota.windows] == [(12_000, 60.0, True)]
    assert [w.limit for w in uid.quota.windows] == [180_000]
    assert ip.quota.cost("GET", "/sapi/v1/capital/config/getall") == 10
    assert ip.route_of("GET", "/sapi/v1/account/apiRestrictions") is not None
    assert uid.route_of("POST", "/sapi/v1/margin/order") == "POST /sapi/v1/margin/order"
    assert uid.quota.cost("POST", "/sapi/v1/margin/order") == 6
    for route in binance.SAPI:
        method, path = route.split(" ")
        assert p.quota.cost(method, path) == 0, route
    raw = by_name["RAW_REQUESTS"]
    assert raw.route_of("GET", "/api/v3/ping")
    assert not raw.route_of("GET", "/sapi/v1/system/status")
    assert [(w.limit, w.seconds) for w in raw.quota.windows] == [(300_000, 300.0)]


def test_a_sapi_endpoint_header_syncs_only_its_own_limiter() -> None:
    """X-SAPI-USED-IP-WEIGHT-1M saying one endpoint's minute is spent stops that endpoint
    before any byte is sent; another SAPI endpoint and REQUEST_WEIGHT are untouched."""
    clock = FakeClock()
    exchange = Binance(clock)
    spent = httpx.Response(200, json={}, headers={"X-SAPI-USED-IP-WEIGHT-1M": "12000"})
    exchange.answers["/sapi/v1/account/apiRestrictions"] = [spent]
    exchange.answers["/sapi/v1/system/status"] = [
        httpx.Response(200, json={}, headers={"X-SAPI-USED-IP-WEIGHT-1M": "1"})
    ]
    with _client(exchange, clock, on_quota="raise") as client:
        client.get("/sapi/v1/account/apiRestrictions")
        weight = client.quota
        with pytest.raises(coinguard.QuotaExceededError, match="SAPI IP 12000/min"):
            client.get("/sapi/v1/account/apiRestrictions")
        client.get("/sapi/v1/system/status")
        limiters = client.route_quotas("GET", "/sapi/v1/system/status")
        assert client.quota == weight
    assert weight is not None
    assert [w.used for w in weight.windows] == [1]  # the clock sync's /api/v3/time only
    assert [s.windows[0].used for s in limiters] == [1]
    paths = [r.url.path for r in exchange.seen]
    assert paths.count("/sapi/v1/account/apiRestrictions") == 1


def test_a_sapi_429_holds_only_that_endpoint() -> None:
    """A 429 on one SAPI endpoint holds that endpoint for its Retry-After; another SAPI
    endpoint and the /api routes still go at once."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/sapi/v1/account/apiRestrictions"] = [
        httpx.Response(
            429, json={"code": -1003, "msg": "Too much request weight used"},
            headers={"Retry-After": "30"},
        )
    ]  # fmt: skip
    with _client(exchange, clock, on_quota="raise", max_retries=0) as client:
        with pytest.raises(coinguard.RateLimitError):
            client.get("/sapi/v1/account/apiRestrictions")
        with pytest.raises(coinguard.QuotaExceededError):
            client.get("/sapi/v1/account/apiRestrictions")
        client.get("/sapi/v1/system/status")
        client.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
        status = client.quota
    assert status is not None
    assert status.blocked_until is None


def test_raw_requests_count_every_api_call_whatever_its_weight() -> None:
    """RAW_REQUESTS counts each /api call as 1 (a weight-20 exchangeInfo too) over the
    clock-aligned 5 minutes, SAPI calls not at all; a full window waits for the next."""
    clock = FakeClock()
    clock.now = 1_800_000_290.0  # 10 s before a 5-minute boundary
    exchange = Binance(clock)
    small = dataclasses.replace(
        binance.RAW_REQUESTS,
        quota=QuotaPolicy([Window(3, 300.0, calendar=True, name="RAW_REQUESTS 3/5min")]),
    )
    provider = dataclasses.replace(binance.PROFILE, route_quotas=(*binance.sapi_quotas(), small))
    with _client(exchange, clock, provider=provider, max_wait=600) as client:
        client.get("/api/v3/exchangeInfo")
        client.get("/api/v3/ping")
        client.get("/sapi/v1/system/status")
        client.get("/api/v3/ping")
        assert clock.now == 1_800_000_290.0
        client.get("/api/v3/ping")
        raw = client.route_quotas("GET", "/api/v3/ping")
    assert clock.now >= 1_800_000_300.0
    assert [s.windows[0].used for s in raw] == [1]


def _trader(exchange: Binance, clock: FakeClock, **kwargs: Any) -> coinguard.Client:
    return _client(
        exchange, clock, trade_key=TRADE_KEY, trade_secret=TRADE_SECRET, allow_trading=True,
        **kwargs,
    )  # fmt: skip


def test_order_weight_is_a_credit_settled_by_the_answer() -> None:
    """REQUEST_WEIGHT is reserved at the route's weight and settled by the answer: a placed
    order or a cancel bills 0, a refused one (and any other call, failed or not) its weight."""
    p = get_provider("binance")
    assert p.quota is not None
    assert [w.credits for w in p.quota.windows] == [True]
    for route in ("POST /api/v3/order", "DELETE /api/v3/order", "DELETE /api/v3/openOrders"):
        method, path = route.split(" ")
        assert p.quota.billed(method, path, ok=True) == 0, route
        assert p.quota.billed(method, path, ok=False) == p.quota.cost(method, path), route
    assert p.quota.billed("GET", "/api/v3/account", ok=True) == 20
    assert p.quota.billed("GET", "/api/v3/account", ok=False) == 20
    plain = QuotaPolicy([Window.per_month(100, credits=True)])
    assert plain.billed("GET", "/x", ok=True) is None  # the answer's own word, as before


def test_a_placed_order_refunds_its_weight_a_refused_one_keeps_it() -> None:
    """On a fake clock: two placed orders leave REQUEST_WEIGHT as it was; a rejected order
    (-2010) and a failed GET keep their weight."""
    clock = FakeClock()
    exchange = Binance(clock)
    placed = httpx.Response(200, json={"orderId": 1, "status": "NEW"})
    rejected = httpx.Response(400, json={"code": -2010, "msg": "Account has insufficient balance"})
    exchange.answers["/api/v3/order"] = [placed, placed, rejected]
    exchange.answers["/api/v3/depth"] = [httpx.Response(400, json={"code": -1121, "msg": "x"})]
    order = {"symbol": "BTCUSDT", "side": "BUY"}
    with _trader(exchange, clock) as client:
        client.get("/api/v3/ping")  # the clock is synced by the first signed call, not this
        before = client.quota
        client.post("/api/v3/order", params=order)
        client.post("/api/v3/order", params=order)
        after_placed = client.quota
        with pytest.raises(coinguard.APIStatusError):
            client.post("/api/v3/order", params=order)
        after_rejected = client.quota
        with pytest.raises(coinguard.APIStatusError):
            client.get("/api/v3/depth", params={"symbol": "NOPE"})
        after_failed_read = client.quota
    assert before is not None
    assert after_placed is not None
    assert after_rejected is not None
    assert after_failed_read is not None
    used = before.windows[0].used
    assert after_placed.windows[0].used == used + 1  # the clock sync only
    assert after_rejected.windows[0].used == used + 2
    assert after_failed_read.windows[0].used == used + 7


def test_the_weight_header_after_a_placed_order_is_not_undercounted() -> None:
    """Binance's X-MBX-USED-WEIGHT-1M on a placed order's answer does not include the order:
    the refund is settled before the header is taken in, so the count is the header's, not
    one below it."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/api/v3/order"] = [
        httpx.Response(200, json={"orderId": 1}, headers={"X-MBX-USED-WEIGHT-1M": "500"})
    ]
    with _trader(exchange, clock) as client:
        client.post("/api/v3/order", params={"symbol": "BTCUSDT", "side": "BUY"})
        status = client.quota
    assert status is not None
    assert status.windows[0].used == 500


class RotatingPair:
    """A key pair rotated at the source: ``key()`` and ``secret()`` read whichever is
    current; the exchange knows only the new pair once ``rotate()`` ran."""

    OLD = ("binance-old-key-0123456789", "binance-old-secret-0123456789")
    NEW = ("binance-new-key-0123456789", "binance-new-secret-0123456789")

    def __init__(self) -> None:
        self.current = self.OLD
        self.loads = {"key": 0, "secret": 0}

    def rotate(self) -> None:
        self.current = self.NEW

    def key(self) -> str:
        self.loads["key"] += 1
        return self.current[0]

    def secret(self) -> str:
        self.loads["secret"] += 1
        return self.current[1]


def _rotating_exchange(pair: RotatingPair, clock: FakeClock, refusal: tuple[int, int]) -> Any:
    """Binance knowing only the pair current at the source; any other key is refused with
    ``refusal`` (HTTP status, Binance code), a bad signature with -1022."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": int(clock() * 1000)})
        key, secret = pair.current
        if request.headers["X-MBX-APIKEY"] != key:
            status, code = refusal
            return httpx.Response(status, json={"code": code, "msg": "Invalid API-key."})
        payload = request.url.query.decode().partition("&signature=")[0]
        good = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if good != request.url.params["signature"]:
            return httpx.Response(400, json={"code": -1022, "msg": "Signature invalid."})
        return httpx.Response(200, json={"balances": []})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize("refusal", [(401, -2015), (400, -2014), (401, -2014)])
def test_a_refused_key_reloads_its_signing_secret_too(refusal: tuple[int, int]) -> None:
    """The pair is rotated at its source: the refusal (a 401, -2014 or -2015) reloads the key
    and the secret of the same pair once, and the call goes again signed with the new one."""
    clock = FakeClock()
    pair = RotatingPair()
    handler = _rotating_exchange(pair, clock, refusal)
    with coinguard.Client(
        provider="binance",
        read_key=pair.key,
        read_secret=pair.secret,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.0,
    ) as client:
        client.get("/api/v3/account")
        pair.rotate()
        assert client.get("/api/v3/account") == {"balances": []}
    signed = [r for r in handler.seen if r.url.path == "/api/v3/account"]
    assert [r.headers["X-MBX-APIKEY"] for r in signed] == [
        RotatingPair.OLD[0], RotatingPair.OLD[0], RotatingPair.NEW[0]
    ]  # fmt: skip
    assert pair.loads == {"key": 2, "secret": 2}


def test_a_refused_key_is_reloaded_once_only() -> None:
    """A pair still refused after its reload: the call fails, with one reload, not a loop."""
    clock = FakeClock()
    pair = RotatingPair()
    handler = _rotating_exchange(pair, clock, (401, -2015))
    pair.current = ("binance-other-key-0123456789", "binance-other-secret-0123456789")
    with (
        coinguard.Client(
            provider="binance",
            read_key=lambda: RotatingPair.OLD[0],
            read_secret=lambda: RotatingPair.OLD[1],
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
            clock=clock,
            sleep=clock.sleep,
            jitter=lambda: 0.0,
        ) as client,
        pytest.raises(coinguard.APIStatusError) as info,
    ):
        client.get("/api/v3/account")
    assert "-2015" in str(info.value)
    assert len([r for r in handler.seen if r.url.path == "/api/v3/account"]) == 2


@pytest.mark.anyio
async def test_async_sapi_limiter_and_order_refund_with_a_sqlite_store(tmp_path: Any) -> None:
    """AsyncClient over a SQLite store (blocking steps): a spent SAPI endpoint is refused
    before any byte is sent while another goes, and a placed order's weight is refunded."""
    clock = FakeClock()
    exchange = Binance(clock)
    exchange.answers["/sapi/v1/account/apiRestrictions"] = [
        httpx.Response(200, json={}, headers={"X-SAPI-USED-IP-WEIGHT-1M": "12000"})
    ]
    exchange.answers["/api/v3/order"] = [httpx.Response(200, json={"orderId": 1})]

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    async with coinguard.AsyncClient(
        provider="binance",
        read_key=READ_KEY,
        read_secret=READ_SECRET,
        trade_key=TRADE_KEY,
        trade_secret=TRADE_SECRET,
        allow_trading=True,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(exchange)),
        quota_store=f"sqlite:///{tmp_path / 'quota.db'}",
        on_quota="raise",
        clock=clock,
        sleep=sleep,
        jitter=lambda: 0.0,
    ) as client:
        await client.get("/sapi/v1/account/apiRestrictions")
        with pytest.raises(coinguard.QuotaExceededError, match="SAPI IP"):
            await client.get("/sapi/v1/account/apiRestrictions")
        await client.get("/sapi/v1/system/status")
        await client.post("/api/v3/order", params={"symbol": "BTCUSDT", "side": "BUY"})
        weight = client.quota
    assert weight is not None
    assert [w.used for w in weight.windows] == [1]  # the clock sync's /api/v3/time only
    paths = [r.url.path for r in exchange.seen]
    assert paths.count("/sapi/v1/account/apiRestrictions") == 1
