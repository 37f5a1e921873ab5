"""Client and AsyncClient over httpx.MockTransport with a fake clock (no real sleeping)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import coinguard
from coinguard import (
    APIConnectionError,
    AuthenticationError,
    EnvelopeError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    RetryDetails,
    RetryPolicy,
    ScopeError,
    ServerError,
)

BASE = "https://api.example.com/v2"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """A clock whose sleep advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _seq(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    it: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = next(it)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def _ok(data: Any = None) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "message": "", "length": 1, "data": data})


def _read_quota(
    policy: coinguard.QuotaPolicy, store: coinguard.QuotaStore, clock: FakeClock
) -> coinguard._quota.Quota:
    """The quota the Runner's read key uses in ``store``, to read what the client counted."""
    return coinguard._quota.Quota(
        policy,
        store=store,
        key_id=f"sandbox:{coinguard.fingerprint('read-key-1-abcdefgh')}",
        clock=clock.time,
        persist=None,
    )


class Runner:
    """Runs the same scenario through Client or AsyncClient, so both shells are held to one spec."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def call(self, handler: Handler, method: str, path: str, clock: FakeClock, **kw: Any) -> Any:
        request_kw = {
            k: kw.pop(k) for k in ("json", "params", "headers", "idempotency_key") if k in kw
        }
        kw.setdefault("provider", "sandbox")
        kw.setdefault("base_url", BASE)
        kw.setdefault("read_key", "read-key-1-abcdefgh")
        kw.setdefault("jitter", lambda: 1.0)
        kw.setdefault("quota", None)  # quota behaviour has its own tests; keep retries isolated
        if self.mode == "sync":
            with coinguard.Client(
                http_client=httpx.Client(transport=httpx.MockTransport(handler)),
                clock=clock.time,
                sleep=clock.sleep,
                **kw,
            ) as client:
                return client.request(method, path, **request_kw)

        async def main() -> Any:
            async with coinguard.AsyncClient(
                http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                clock=clock.time,
                sleep=clock.asleep,
                **kw,
            ) as client:
                return await client.request(method, path, **request_kw)

        return anyio.run(main)


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


TRADE = {"trade_key": "trade-key-1-abcdefgh", "allow_trading": True}


def test_get_returns_decoded_json(run: Runner, clock: FakeClock) -> None:
    """A read returns the decoded body and sends the read key only."""
    handler, seen = _seq(_ok([1, 2]))
    assert run.call(handler, "GET", "/price", clock, params={"symbol": "BTC"})["data"] == [1, 2]
    assert seen[0].headers["x-api-key"] == "read-key-1-abcdefgh"
    assert seen[0].url.params["symbol"] == "BTC"
    assert "coinguard" in seen[0].headers["user-agent"]


def test_trade_uses_only_trade_key(run: Runner, clock: FakeClock) -> None:
    """A trade request carries the trade key, never the read key, plus an idempotency key."""
    handler, seen = _seq(httpx.Response(201, json={"success": True, "data": {"id": "o1"}}))
    run.call(handler, "POST", "/orders", clock, json={"symbol": "BTC"}, **TRADE)
    assert seen[0].headers["x-api-key"] == "trade-key-1-abcdefgh"
    assert "read-key-1-abcdefgh" not in str(seen[0].headers) + str(seen[0].url)
    assert len(seen[0].headers["idempotency-key"]) >= 16


def test_read_only_client_refuses_trade_before_io(run: Runner, clock: FakeClock) -> None:
    """ScopeError is raised and nothing reaches the transport."""
    handler, seen = _seq()
    with pytest.raises(ScopeError, match="allow_trading"):
        run.call(handler, "POST", "/orders", clock, json={})
    with pytest.raises(ScopeError):
        run.call(handler, "GET", "/orders/1", clock)
    assert seen == []


def test_foreign_absolute_url_refused_before_io(run: Runner, clock: FakeClock) -> None:
    """An absolute URL to another origin never gets a request, let alone the key."""
    handler, seen = _seq()
    with pytest.raises(coinguard.InsecureTransportError):
        run.call(handler, "GET", "https://evil.example.com/v2/price", clock)
    assert seen == []


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (400, coinguard.APIStatusError),
    ],
)
def test_status_errors_map_to_classes(
    run: Runner, clock: FakeClock, status: int, exc: type
) -> None:
    """Each status has its class, with status_code, request_id and parsed body."""
    body = {"success": False, "message": "nope here"}
    handler, _ = _seq(httpx.Response(status, json=body, headers={"x-request-id": "req-9"}))
    with pytest.raises(exc) as info:
        run.call(handler, "GET", "/price", clock)
    err = info.value
    assert type(err) is exc
    assert err.status_code == status
    assert err.request_id == "req-9"
    assert err.body == body
    assert "nope here" in str(err)


def test_envelope_failure_in_200_is_an_error(run: Runner, clock: FakeClock) -> None:
    """success:false in a 200 is an EnvelopeError (an APIStatusError), not a silent success."""
    handler, _ = _seq(
        httpx.Response(200, json={"success": False, "message": "Plan limit", "data": []})
    )
    with pytest.raises(EnvelopeError, match="Plan limit") as info:
        run.call(handler, "GET", "/price", clock)
    assert isinstance(info.value, coinguard.APIStatusError)


def test_html_200_is_a_decode_error(run: Runner, clock: FakeClock) -> None:
    """A captive-portal page gives ResponseDecodeError naming content type and status only."""
    html = "<html><body>Sign in to Wi-Fi secret-portal-text</body></html>"
    handler, _ = _seq(httpx.Response(200, text=html, headers={"content-type": "text/html"}))
    with pytest.raises(ResponseDecodeError) as info:
        run.call(handler, "GET", "/price", clock)
    assert "text/html" in str(info.value)
    assert "200" in str(info.value)
    assert "secret-portal-text" not in str(info.value)
    assert info.value.__cause__ is None


def test_reads_retry_5xx_with_backoff(run: Runner, clock: FakeClock) -> None:
    """500, 503 then 200: two retries, backoff 0.5 s then 1 s (jitter fixed at 1)."""
    handler, seen = _seq(httpx.Response(500), httpx.Response(503), _ok("x"))
    details: list[RetryDetails] = []
    assert run.call(handler, "GET", "/price", clock, on_retry=details.append)["data"] == "x"
    assert len(seen) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert [d.reason for d in details] == ["HTTP 500", "HTTP 503"]
    assert details[0].key_fingerprint == coinguard.fingerprint("read-key-1-abcdefgh")


def test_retry_after_wins_when_longer(run: Runner, clock: FakeClock) -> None:
    """The wait is the larger of backoff and Retry-After."""
    handler, _ = _seq(httpx.Response(429, headers={"Retry-After": "3"}), _ok())
    run.call(handler, "GET", "/price", clock)
    assert clock.sleeps == [3.0]


def test_retry_after_beyond_deadline_gives_up(run: Runner, clock: FakeClock) -> None:
    """Retry-After past the deadline: RateLimitError with retry_after, and no sleeping."""
    handler, seen = _seq(httpx.Response(429, headers={"Retry-After": "600"}))
    with pytest.raises(RateLimitError) as info:
        run.call(handler, "GET", "/price", clock, retry=RetryPolicy(deadline=30))
    assert info.value.retry_after == 600
    assert clock.sleeps == []
    assert len(seen) == 1


def test_ip_ban_raises_immediately(run: Runner, clock: FakeClock) -> None:
    """418 is not retried; its retry_after is reported."""
    handler, seen = _seq(httpx.Response(418, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimitError) as info:
        run.call(handler, "GET", "/price", clock)
    assert info.value.status_code == 418
    assert info.value.retry_after == 120
    assert len(seen) == 1


def test_max_retries_is_respected(run: Runner, clock: FakeClock) -> None:
    """max_retries=2 means three attempts, then the last error."""
    handler, seen = _seq(*[httpx.Response(502)] * 5)
    with pytest.raises(ServerError):
        run.call(handler, "GET", "/price", clock, max_retries=2)
    assert len(seen) == 3


def test_connect_error_retried_even_for_trades(run: Runner, clock: FakeClock) -> None:
    """A refused connection never reached the server: safe to retry an order."""
    handler, seen = _seq(httpx.ConnectError("refused"), httpx.Response(201, json={"success": True}))
    run.call(handler, "POST", "/orders", clock, json={}, **TRADE)
    assert len(seen) == 2


def test_lost_order_without_idempotency_is_not_resent(run: Runner, clock: FakeClock) -> None:
    """No idempotency support: a connection dropped after sending is reported once, not re-sent."""
    provider = coinguard.Provider(name="noidem", base_url=BASE)
    handler, seen = _seq(httpx.RemoteProtocolError("dropped"), _ok())
    with pytest.raises(OrderOutcomeUnknownError) as info:
        run.call(handler, "POST", "/orders", clock, json={}, provider=provider, **TRADE)
    assert len(seen) == 1
    assert info.value.idempotency_key is None
    assert isinstance(info.value, APIConnectionError)


def test_lost_order_with_idempotency_resent_with_same_key(run: Runner, clock: FakeClock) -> None:
    """With an idempotency key the retry re-uses the same key, so the server de-duplicates."""
    handler, seen = _seq(httpx.ReadError("reset"), httpx.Response(201, json={"success": True}))
    run.call(handler, "POST", "/orders", clock, json={"q": 1}, **TRADE)
    assert len(seen) == 2
    assert seen[0].headers["idempotency-key"] == seen[1].headers["idempotency-key"]


@pytest.mark.parametrize(
    ("provider", "route", "first", "why"),
    [
        (
            None,
            "POST /orders",
            httpx.ReadError("reset"),
            "the same Idempotency-Key goes with it, so the provider keeps one order",
        ),
        (
            coinguard.Provider(name="idem", base_url=BASE, idempotent_routes=["PUT /orders/*"]),
            "PUT /orders/7",
            httpx.ReadError("reset"),
            "the provider declares this route idempotent",
        ),
        (
            coinguard.Provider(name="plain", base_url=BASE),
            "POST /orders",
            httpx.ConnectError("refused"),
            "the provider did not process the failed attempt",
        ),
    ],
)
def test_a_trade_retry_says_why_it_is_safe(
    run: Runner,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    provider: coinguard.Provider | None,
    route: str,
    first: Exception,
    why: str,
) -> None:
    """The retry log line of a trade names what makes re-sending it repeat nothing."""
    handler, seen = _seq(first, httpx.Response(200, json={"success": True}))
    kw: dict[str, Any] = {"provider": provider} if provider is not None else {}
    method, path = route.split()
    with caplog.at_level("INFO", logger="coinguard.retry"):
        run.call(handler, method, path, clock, json={}, **TRADE, **kw)
    assert len(seen) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.name == "coinguard.retry"]
    assert line.endswith(f"; safe to re-send: {why}")


def test_a_read_retry_carries_no_note(
    run: Runner, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Reads are always safe to re-send: their retry line has no trade note."""
    handler, _ = _seq(httpx.Response(502), _ok())
    with caplog.at_level("INFO", logger="coinguard.retry"):
        run.call(handler, "GET", "/price", clock)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "coinguard.retry"]
    assert "safe to re-send" not in line


def test_lost_order_exhausted_reports_key(run: Runner, clock: FakeClock) -> None:
    """When retries run out, the caller gets the idempotency key to reconcile with."""
    handler, seen = _seq(*[httpx.ReadError("reset")] * 3)
    with pytest.raises(OrderOutcomeUnknownError) as info:
        run.call(
            handler,
            "POST",
            "/orders",
            clock,
            json={},
            idempotency_key="idem-1",
            max_retries=2,
            **TRADE,
        )
    assert info.value.idempotency_key == "idem-1"
    assert {r.headers["idempotency-key"] for r in seen} == {"idem-1"}


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_trade_answered_outcome_unknown_is_not_retried(
    run: Runner, clock: FakeClock, status: int
) -> None:
    """An order answered 408 or 5xx may have executed: OrderOutcomeUnknownError, not re-sent."""
    provider = coinguard.Provider(name="noidem", base_url=BASE)
    handler, seen = _seq(httpx.Response(status, json={"msg": "timeout"}), _ok())
    with pytest.raises(OrderOutcomeUnknownError) as info:
        run.call(handler, "POST", "/orders", clock, json={}, provider=provider, **TRADE)
    assert len(seen) == 1
    assert info.value.status_code == status
    assert info.value.body == {"msg": "timeout"}


def test_trade_429_resent_only_where_the_provider_says_it_was_not_executed(
    run: Runner, clock: FakeClock
) -> None:
    """A throttled order is re-sent only if the provider documents 429 as "not executed"."""
    plain = coinguard.Provider(name="noidem", base_url=BASE)
    handler, seen = _seq(httpx.Response(429), _ok("placed"))
    with pytest.raises(RateLimitError):
        run.call(handler, "POST", "/orders", clock, json={}, provider=plain, **TRADE)
    assert len(seen) == 1
    proven = coinguard.Provider(
        name="noidem", base_url=BASE, not_executed_statuses=frozenset({429})
    )
    handler, seen = _seq(httpx.Response(429), _ok("placed"))
    assert (
        run.call(handler, "POST", "/orders", clock, json={}, provider=proven, **TRADE)["data"]
        == "placed"
    )
    assert len(seen) == 2


def test_get_on_a_trade_route_is_idempotent(run: Runner, clock: FakeClock) -> None:
    """Scope is which key, idempotency whether it may go twice: a GET order query is retried."""
    inner, _ = _seq(httpx.ReadTimeout("slow"), httpx.Response(503), _ok("order"))
    keys: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("x-api-key"))  # read now: a failed send is stripped
        return inner(request)

    assert run.call(handler, "GET", "/orders/ord_1", clock, **TRADE)["data"] == "order"
    assert keys == ["trade-key-1-abcdefgh"] * 3


def test_401_reloads_a_rotated_key_once(run: Runner, clock: FakeClock) -> None:
    """A reloadable key is fetched again after a 401 and the call retried once."""
    keys = iter(["old-key-1-abcdefgh", "new-key-2-abcdefgh", "newer-key-3-abcdefgh"])
    handler, seen = _seq(httpx.Response(401), _ok("ok"))
    assert run.call(handler, "GET", "/price", clock, read_key=lambda: next(keys))["data"] == "ok"
    assert [r.headers["x-api-key"] for r in seen] == ["old-key-1-abcdefgh", "new-key-2-abcdefgh"]


def test_second_401_raises(run: Runner, clock: FakeClock) -> None:
    """After one reload, a second 401 is final."""
    keys = iter(["old-key-1-abcdefgh", "new-key-2-abcdefgh", "newer-key-3-abcdefgh"])
    handler, seen = _seq(httpx.Response(401), httpx.Response(401), _ok())
    with pytest.raises(AuthenticationError):
        run.call(handler, "GET", "/price", clock, read_key=lambda: next(keys))
    assert len(seen) == 2


def test_static_key_401_not_retried(run: Runner, clock: FakeClock) -> None:
    """A fixed string key cannot change, so a 401 is raised at once."""
    handler, seen = _seq(httpx.Response(401), _ok())
    with pytest.raises(AuthenticationError):
        run.call(handler, "GET", "/price", clock)
    assert len(seen) == 1


def test_redirect_not_followed_by_default(run: Runner, clock: FakeClock) -> None:
    """A 302 is an error by default; nothing is sent to the Location."""
    handler, seen = _seq(httpx.Response(302, headers={"location": "https://elsewhere.example/x"}))
    with pytest.raises(coinguard.APIStatusError) as info:
        run.call(handler, "GET", "/price", clock)
    assert info.value.status_code == 302
    assert len(seen) == 1


def test_cross_origin_redirect_drops_the_key(run: Runner, clock: FakeClock) -> None:
    """With follow_redirects=True, a hop to another origin goes without the key."""
    handler, seen = _seq(
        httpx.Response(302, headers={"location": "https://cdn.example.net/p"}),
        _ok("cdn"),
    )
    run.call(handler, "GET", "/price", clock, follow_redirects=True)
    assert seen[0].headers["x-api-key"] == "read-key-1-abcdefgh"
    assert "x-api-key" not in seen[1].headers


def test_same_origin_redirect_keeps_the_key(run: Runner, clock: FakeClock) -> None:
    """A same-origin hop keeps the key."""
    handler, seen = _seq(httpx.Response(307, headers={"location": "/v2/price2"}), _ok())
    run.call(handler, "GET", "/price", clock, follow_redirects=True)
    assert seen[1].headers["x-api-key"] == "read-key-1-abcdefgh"


def test_client_pickling_refused() -> None:
    """Pickling a client is refused (it would carry keys)."""
    import pickle

    c = coinguard.Client(provider="sandbox", base_url=BASE, read_key="read-key-1-abcdefgh")
    with pytest.raises(TypeError):
        pickle.dumps(c)
    c.close()


def test_user_http_client_is_not_closed() -> None:
    """A caller-supplied httpx.Client stays open after our client closes."""
    http = httpx.Client(transport=httpx.MockTransport(lambda r: _ok()))
    with coinguard.Client(
        provider="sandbox", base_url=BASE, read_key="read-key-k1-abcdefgh", http_client=http
    ):
        pass
    assert not http.is_closed
    http.close()


def test_put_order_of_unknown_outcome_is_not_resent(run: Runner, clock: FakeClock) -> None:
    """A PUT that places an order is a trade like any other: no idempotency key, no re-send."""
    provider = coinguard.Provider(name="noidem", base_url=BASE)
    handler, seen = _seq(httpx.ReadError("dropped"), _ok(), _ok())
    with pytest.raises(OrderOutcomeUnknownError):
        run.call(handler, "PUT", "/orders/9", clock, json={}, provider=provider, **TRADE)
    handler, seen2 = _seq(httpx.Response(502), _ok(), _ok())
    with pytest.raises(OrderOutcomeUnknownError):
        run.call(handler, "PUT", "/orders/9", clock, json={}, provider=provider, **TRADE)
    assert len(seen) == 1
    assert len(seen2) == 1


def test_idempotency_key_without_a_header_is_refused(run: Runner, clock: FakeClock) -> None:
    """Passing idempotency_key= to a provider that cannot carry it fails before any I/O."""
    provider = coinguard.Provider(name="noidem", base_url=BASE)
    handler, seen = _seq()
    with pytest.raises(coinguard.ConfigurationError, match="idempotency"):
        run.call(
            handler, "POST", "/orders", clock, json={}, idempotency_key="k-1", provider=provider,
            **TRADE,
        )  # fmt: skip
    assert seen == []


@pytest.mark.parametrize(
    "path", ["/search/../orders", "/x/../orders", "/x/%2e%2e/orders", "/../admin", "/a\\b"]
)
def test_dot_segments_cannot_smuggle_a_trade(run: Runner, clock: FakeClock, path: str) -> None:
    """A read-only client refuses paths a server would resolve to another route; nothing is sent."""
    provider = coinguard.Provider(
        name="p", base_url=BASE, read_routes=["POST /search*"], trade_routes=["GET /orders*"]
    )
    handler, seen = _seq()
    with pytest.raises(ScopeError):
        run.call(handler, "POST" if "search" in path else "GET", path, clock, provider=provider)
    assert seen == []


def test_percent_encoded_route_is_classified_as_sent(run: Runner, clock: FakeClock) -> None:
    """'/%6frders' is routed as /orders by the server, so it needs the trade key."""
    provider = coinguard.Provider(name="p", base_url=BASE, trade_routes=["GET /orders*"])
    handler, seen = _seq()
    with pytest.raises(ScopeError):
        run.call(handler, "GET", "/%6frders", clock, provider=provider)
    assert seen == []


def test_query_in_path_is_a_clear_error(run: Runner, clock: FakeClock) -> None:
    """A query string in the path says to use params=, instead of an httpx error."""
    handler, seen = _seq()
    with pytest.raises(coinguard.ConfigurationError, match="params="):
        run.call(handler, "GET", "/search?next=https://elsewhere.example/x", clock)
    assert seen == []


def test_redirect_hops_take_quota_and_foreign_429_is_not_believed(
    run: Runner, clock: FakeClock
) -> None:
    """A same-origin hop is another request (quota); a foreign host cannot penalise our key."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(100)])
    store = coinguard.MemoryStore()
    handler, seen = _seq(
        httpx.Response(307, headers={"location": "/v2/price2"}),
        httpx.Response(302, headers={"location": "https://cdn.example.net/p"}),
        httpx.Response(429, headers={"Retry-After": "3000"}),
        _ok(),
    )
    with pytest.raises(RateLimitError):
        run.call(
            handler, "GET", "/price", clock, follow_redirects=True, quota=policy,
            quota_store=store, max_retries=0,
        )  # fmt: skip
    quota = _read_quota(policy, store, clock)
    assert seen[0].headers["x-api-key"] == "read-key-1-abcdefgh"
    assert quota.status().windows[0].used == 2  # the call and its same-origin hop
    assert quota.reserve("GET", "/price").wait == 0  # no penalty from the foreign 429


def test_a_late_answer_or_failure_holds_the_quota_until_a_window_after_it(
    run: Runner, clock: FakeClock
) -> None:
    """The server may stamp a call as late as its answer: the next call under a 1/s limit waits
    until 1 s after that answer, also when the send failed after 0.5 s."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(1)], margin=0.01)
    store = coinguard.MemoryStore()

    def slow(seconds: float, then: httpx.Response | Exception) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            clock.now += seconds
            if isinstance(then, Exception):
                raise then
            return then

        return handler

    kw: dict[str, Any] = {"quota": policy, "quota_store": store, "max_retries": 0}
    start = clock.now
    run.call(slow(0.3, _ok()), "GET", "/price", clock, **kw)
    run.call(slow(0.0, _ok()), "GET", "/price", clock, **kw)
    assert clock.sleeps == [pytest.approx(1.0)]  # until 0.3 + 1, not 0.01 + 1
    with pytest.raises(APIConnectionError):
        run.call(slow(0.5, httpx.ConnectError("reset")), "GET", "/price", clock, **kw)
    run.call(slow(0.0, _ok()), "GET", "/price", clock, **kw)
    # the second call (on time) leaves at 1.31; the third fails 0.5 s after it left
    assert clock.sleeps[1:] == [pytest.approx(1.01), pytest.approx(1.0)]
    assert clock.now - start == pytest.approx(1.3 + 1.01 + 0.5 + 1.0)


class _RecountFails:
    """A store whose recount of late answers fails, as a Redis going down with the provider."""

    def __init__(self) -> None:
        self.inner = coinguard.MemoryStore()

    @property
    def blocking(self) -> bool:
        return False

    def bind(self, key_id: str, specs: Any) -> Any:
        bucket = self.inner.bind(key_id, specs)

        class Bucket:
            reserve, settle = bucket.reserve, bucket.settle
            sync, snapshot = bucket.sync, bucket.snapshot

            def correct(self, *args: object) -> None:
                raise ConnectionError("quota store down")

        return Bucket()

    def close(self) -> None:
        pass


def test_a_failing_recount_never_hides_the_calls_own_outcome(
    run: Runner, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An order whose send failed late stays OrderOutcomeUnknownError, and a late success stays
    a success, when the quota store fails to record the answer; the failure is logged."""
    provider = coinguard.Provider(name="noidem", base_url=BASE)
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(5)])
    store = _RecountFails()

    def late(then: httpx.Response | Exception) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            clock.now += 0.5
            if isinstance(then, Exception):
                raise then
            return then

        return handler

    kw: dict[str, Any] = {"provider": provider, "quota": policy, "quota_store": store}
    with pytest.raises(OrderOutcomeUnknownError):
        run.call(late(httpx.RemoteProtocolError("dropped")), "POST", "/orders", clock, json={},
                 **kw, **TRADE)  # fmt: skip
    assert run.call(late(_ok(7)), "GET", "/price", clock, **kw)["data"] == 7  # no envelope
    recounts = [r for r in caplog.records if "could not recount" in r.getMessage()]
    assert len(recounts) == 2
    assert all(r.name == "coinguard.quota" for r in recounts)


def test_a_hop_to_another_origin_does_not_recount_the_providers_call(
    run: Runner, clock: FakeClock
) -> None:
    """The provider's 302 is the provider's answer; the other origin's late answer is not."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_second(5)], margin=0.01)
    store = coinguard.MemoryStore()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.now += 0.3
        if request.url.host == "cdn.example.net":
            return _ok(1)
        return httpx.Response(302, headers={"location": "https://cdn.example.net/p"})

    run.call(handler, "GET", "/price", clock, follow_redirects=True, quota=policy,
             quota_store=store)  # fmt: skip
    quota = _read_quota(policy, store, clock)
    assert quota.status().windows[0].used == 1


def test_credits_the_body_reports_are_debited(run: Runner, clock: FakeClock) -> None:
    """CoinMarketCap reports in the body what a call cost: 3 credits, where 1 was reserved."""
    policy = coinguard.QuotaPolicy([coinguard.Window.per_minute(10)])
    store = coinguard.MemoryStore()
    body = {"status": {"error_code": 0, "credit_count": 3}, "data": {"BTC": 1}}
    handler, _ = _seq(httpx.Response(200, json=body))
    run.call(handler, "GET", "/quotes", clock, quota=policy, quota_store=store)
    quota = _read_quota(policy, store, clock)
    assert quota.status().windows[0].used == 3
