"""Tracing and metrics: spans by the HTTP client conventions, Prometheus samples, real scrapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import prometheus_client
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import coinguard

BASE = "https://api.traced.test/v2"
KEY = "traced-read-key-0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_795_780_800.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def _provider(**changes: Any) -> coinguard.Provider:
    values: dict[str, Any] = {
        "name": "traced",
        "base_url": BASE,
        "auth": coinguard.QueryKey("api_key"),
        "quota": coinguard.QuotaPolicy([coinguard.Window.per_minute(100)]),
    }
    values.update(changes)
    return coinguard.Provider(**values)


def _answers(clock: FakeClock, statuses: list[int]) -> httpx.MockTransport:
    left = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        clock.now += 0.5
        status = next(left, 200)
        return httpx.Response(status, json={}, headers={"retry-after": "0"})

    return httpx.MockTransport(handle)


def test_one_client_span_per_attempt_by_the_http_conventions(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A 429 then a 200: two CLIENT spans, the first an error with error.type 429, the second
    with resend_count 1; url.full holds no key, url.template the route."""
    tracer_provider, memory = exporter
    clock = FakeClock()
    http = httpx.Client(transport=_answers(clock, [429, 200]))
    with coinguard.Client(
        provider=_provider(),
        read_key=KEY,
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        observers=[coinguard.Tracing(tracer_provider)],
    ) as client:
        client.get("/orders-book/123", params={"symbol": "BTC"})
    spans: list[ReadableSpan] = list(memory.get_finished_spans())
    assert [s.name for s in spans] == ["GET /orders-book/{id}"] * 2
    first, second = spans
    assert first.kind is SpanKind.CLIENT
    attrs = dict(first.attributes or {})
    assert attrs["http.request.method"] == "GET"
    assert attrs["server.address"] == "api.traced.test"
    assert attrs["server.port"] == 443
    assert attrs["url.template"] == "/orders-book/{id}"
    assert attrs["url.full"] == (
        "https://api.traced.test/v2/orders-book/123?symbol=BTC&api_key=REDACTED"
    )
    assert attrs["http.response.status_code"] == 429
    assert attrs["error.type"] == "429"
    assert attrs["coinguard.key.fingerprint"] == coinguard.fingerprint(KEY)
    assert attrs["coinguard.scope"] == "read"
    assert "http.request.resend_count" not in attrs
    assert first.status.status_code is StatusCode.ERROR
    second_attrs = dict(second.attributes or {})
    assert second_attrs["http.request.resend_count"] == 1
    assert "error.type" not in second_attrs
    assert second.status.status_code is StatusCode.UNSET
    assert first.end_time is not None
    assert first.start_time is not None
    assert first.end_time - first.start_time == 500_000_000  # the fake clock's half second


@pytest.mark.anyio
async def test_the_async_client_traces_alike(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """AsyncClient spans carry the same attributes; a connection failure's error.type is the
    error's class."""
    tracer_provider, memory = exporter

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    async with coinguard.AsyncClient(
        provider=_provider(),
        read_key=KEY,
        http_client=http,
        max_retries=0,
        observers=[coinguard.Tracing(tracer_provider)],
    ) as client:
        with pytest.raises(coinguard.APIConnectionError):
            await client.get("/price")
    (span,) = memory.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in attrs
    assert span.status.status_code is StatusCode.ERROR


@pytest.fixture
def registry() -> prometheus_client.CollectorRegistry:
    return prometheus_client.CollectorRegistry()


def _sample(registry: prometheus_client.CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_metrics_count_calls_waits_retries_and_limits(
    registry: prometheus_client.CollectorRegistry,
) -> None:
    """Requests by provider/scope/route/status/outcome, retries, 429s, credits, quota waits."""
    clock = FakeClock()
    http = httpx.Client(transport=_answers(clock, [429, 200, 200]))
    with coinguard.Client(
        provider=_provider(),
        read_key=KEY,
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        observers=[coinguard.Metrics(registry)],
    ) as client:
        client.get("/price")
        client.get("/price")
        where = {"provider": "traced", "scope": "read"}
        ok = {**where, "route": "/price", "status": "200", "outcome": "ok"}
        limited = {**where, "route": "/price", "status": "429", "outcome": "rate_limited"}
        assert _sample(registry, "coinguard_requests_total", **ok) == 2
        assert _sample(registry, "coinguard_requests_total", **limited) == 1
        assert _sample(registry, "coinguard_retries_total", **where) == 1
        assert (
            _sample(registry, "coinguard_rate_limited_total", provider="traced", status="429") == 1
        )
        assert _sample(registry, "coinguard_credits_total", **where) == 3
        assert _sample(registry, "coinguard_quota_wait_seconds_count", **where) == 3
        assert _sample(registry, "coinguard_request_duration_seconds_sum", **where) == 1.5
        ratio = _sample(
            registry,
            "coinguard_quota_remaining_ratio",
            provider="traced",
            scope="read",
            window="100/min",
        )
        assert 0.9 <= ratio < 1.0  # three of a hundred spent (the 429 holds the key too)


def test_route_labels_are_bounded(registry: prometheus_client.CollectorRegistry) -> None:
    """Past max_routes distinct templates, routes are counted as ``other``."""
    metrics = coinguard.Metrics(registry, max_routes=2)
    for route in ("/a", "/b", "/c", "/d"):
        metrics.attempt(coinguard.Attempt.example(route=route, provider="bounded"))
    routes = {
        s.labels["route"]
        for family in registry.collect()
        if family.name == "coinguard_requests"
        for s in family.samples
        if s.labels.get("provider") == "bounded"
    }
    assert routes == {"/a", "/b", "other"}


def test_metrics_are_scraped_over_real_http(registry: prometheus_client.CollectorRegistry) -> None:
    """prometheus_client's own exposition server on 127.0.0.1 serves the coinguard_ families."""
    metrics = coinguard.Metrics(registry)
    metrics.attempt(coinguard.Attempt.example(status=429, outcome="rate_limited", attempt=2))
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert (
        'coinguard_requests_total{outcome="rate_limited",provider="sandbox",route="/price",'
        'scope="read",status="429"} 1.0' in text
    )
    assert 'coinguard_rate_limited_total{provider="sandbox",status="429"} 1.0' in text
    assert 'coinguard_retries_total{provider="sandbox",scope="read"} 1.0' in text
    assert "coinguard_quota_wait_seconds_bucket" in text
    assert "fp:" not in text  # no fingerprint label


def test_two_metrics_on_one_registry_share_the_families(
    registry: prometheus_client.CollectorRegistry,
) -> None:
    """A second Metrics on the same registry does not fail with a duplicate registration."""
    coinguard.Metrics(registry).attempt(coinguard.Attempt.example(provider="twice"))
    coinguard.Metrics(registry).attempt(coinguard.Attempt.example(provider="twice"))
    labels = {"provider": "twice", "scope": "read", "route": "/price", "status": "200"}
    assert _sample(registry, "coinguard_requests_total", **labels, outcome="ok") == 2
