"""OpenTelemetry: a CLIENT span per attempt; redaction for the httpx instrumentation's spans.

Needs ``pip install 'coinguard[otel]'``; imported only when used. The spans follow the HTTP
client semantic conventions (``http.request.method``, ``server.address``, ``server.port``,
``url.full`` with keys and signatures replaced by ``REDACTED``, ``url.template``,
``http.response.status_code``, ``http.request.resend_count``, ``error.type``) plus coinguard's
own (``coinguard.provider``, ``coinguard.scope``, ``coinguard.key.fingerprint``,
``coinguard.quota.wait``, ``coinguard.cost``, ``coinguard.outcome``, ``coinguard.call_id``).

``opentelemetry-instrumentation-httpx`` records the whole URL, query string included, when its
span starts: a query key or a ``signature`` lands in ``url.full`` (or ``http.url``).
:class:`RedactingSpanProcessor`, added to the tracer provider before any exporting processor,
rewrites those attributes as the span starts, before any other processor sees it;
:func:`httpx_request_hook` does the same from the instrumentation's own hook, for a tracer
provider you cannot add a processor to.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import httpx

from . import _redact
from ._exceptions import ConfigurationError
from ._observe import Attempt, redacted_url

__all__ = ["RedactingSpanProcessor", "Tracing", "httpx_async_request_hook", "httpx_request_hook"]

_URL_ATTRIBUTES = ("url.full", "http.url")
_QUERY_ATTRIBUTES = ("url.query", "http.target")


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{module} is not installed: pip install 'coinguard[{extra}]'"
        ) from None


class Tracing:
    """An observer that records one OpenTelemetry CLIENT span per attempt.

    ``tracer_provider`` defaults to the global one. The span is built when the attempt is over,
    with the attempt's own start and end times, under the caller's current span.

    >>> client = Client(provider="tokenmetrics", observers=[Tracing()])  # doctest: +SKIP
    """

    blocking = False

    def __init__(self, tracer_provider: Any = None) -> None:
        trace = require("opentelemetry.trace", "otel")
        from . import __version__

        self._trace = trace
        self._tracer = trace.get_tracer("coinguard", __version__, tracer_provider=tracer_provider)

    def attempt(self, record: Attempt) -> None:
        """Record the attempt's span."""
        trace = self._trace
        start = int((record.started + record.quota_wait) * 1e9)
        end = start + int((record.latency or 0.0) * 1e9)
        failed = record.error is not None or (record.status or 0) >= 400
        attributes: dict[str, Any] = {
            "http.request.method": record.method,
            "server.address": record.host,
            "url.full": record.url,
            "url.template": record.route,
            "coinguard.provider": record.provider,
            "coinguard.scope": record.scope,
            "coinguard.outcome": record.outcome,
            "coinguard.call_id": record.call_id,
            "coinguard.quota.wait": record.quota_wait,
        }
        optional = {
            "server.port": record.port,
            "http.response.status_code": record.status,
            "http.request.resend_count": record.attempt - 1 if record.attempt > 1 else None,
            "coinguard.key.fingerprint": record.key_fp,
            "coinguard.cost": record.cost,
            "coinguard.request_id": record.request_id,
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        if failed:
            attributes["error.type"] = (
                str(record.status) if (record.status or 0) >= 400 else record.error or "_OTHER"
            )
        span = self._tracer.start_span(
            f"{record.method} {record.route}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if failed:
            span.set_status(trace.Status(trace.StatusCode.ERROR, record.outcome))
        span.end(end_time=end)


def _clean(name: str, value: Any, extra: Iterable[str]) -> Any:
    if not isinstance(value, str):
        return value
    if name in _URL_ATTRIBUTES:
        try:
            return redacted_url(httpx.URL(value), extra)
        except Exception:  # not a URL httpx can read: show none of it
            return "REDACTED"
    if name in _QUERY_ATTRIBUTES:
        path, sep, query = value.rpartition("?") if "?" in value else ("", "", value)
        url = httpx.URL("http://x/" + ("?" + query if query else ""))
        shown = redacted_url(url, extra).partition("?")[2]
        if name == "http.target":
            return _redact.redact(f"{path}{sep}{shown}") if sep else _redact.redact(value)
        return shown
    return _redact.redact(value)


class RedactingSpanProcessor:
    """A span processor that scrubs keys and signatures from every span as it starts.

    URL attributes (``url.full``, ``http.url``, ``url.query``, ``http.target``) lose the values
    of sensitive query parameters (coinguard's list, and ``params``); any attribute holding a
    key coinguard knows is redacted. Add it to the tracer provider *first*, so the processors
    that export see the span after it.

    >>> provider.add_span_processor(RedactingSpanProcessor())  # doctest: +SKIP
    """

    def __init__(self, params: Iterable[str] = ()) -> None:
        self._params = tuple(params)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Rewrite the attributes the span started with."""
        attributes = getattr(span, "attributes", None) or {}
        for name, value in list(attributes.items()):
            clean = _clean(name, value, self._params)
            if clean != value:
                span.set_attribute(name, clean)

    def _on_ending(self, span: Any) -> None:
        """Nothing (the SDK calls it on every processor as a span ends)."""

    def on_end(self, span: Any) -> None:
        """Nothing: an ended span cannot change."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True


def httpx_request_hook(span: Any, request: Any) -> None:
    """A ``request_hook`` for ``opentelemetry-instrumentation-httpx``: the span's URL
    attributes without keys or signatures.

    >>> HTTPXClientInstrumentor().instrument(request_hook=httpx_request_hook)  # doctest: +SKIP
    """
    if span is None or not span.is_recording():
        return
    url = getattr(request, "url", None)
    if url is None:
        return
    clean = redacted_url(httpx.URL(str(url)))
    attributes = getattr(span, "attributes", None)
    names = [n for n in _URL_ATTRIBUTES if attributes is None or n in attributes]
    for name in names or ["url.full"]:
        span.set_attribute(name, clean)


async def httpx_async_request_hook(span: Any, request: Any) -> None:
    """The ``async_request_hook`` twin of :func:`httpx_request_hook`."""
    httpx_request_hook(span, request)
