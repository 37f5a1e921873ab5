"""Prometheus metrics of every attempt; needs ``pip install 'coinguard[prometheus]'``.

Names follow Prometheus' conventions: the ``coinguard_`` prefix, base units (seconds), counters
ending in ``_total``. No label holds a key or a fingerprint, and every label has a bounded set
of values: provider, scope, outcome and status are small by nature, and routes beyond
``max_routes`` distinct templates are counted as ``other``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from ._observe import Attempt
from ._otel import require

__all__ = ["Metrics"]

_WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LOCK = threading.Lock()
# per registry (a metric can be registered once); weak, so a registry's id is never reused
_FAMILIES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _families(prom: Any, registry: Any) -> dict[str, Any]:
    with _LOCK:
        found = _FAMILIES.get(registry)
        if found is not None:
            return found
        made = {
            "requests": prom.Counter(
                "coinguard_requests",
                "Attempts sent by coinguard clients",
                ["provider", "scope", "route", "status", "outcome"],
                registry=registry,
            ),
            "duration": prom.Histogram(
                "coinguard_request_duration_seconds",
                "Seconds from sending an attempt to its answer",
                ["provider", "scope"],
                registry=registry,
            ),
            "wait": prom.Histogram(
                "coinguard_quota_wait_seconds",
                "Seconds an attempt waited for its quota",
                ["provider", "scope"],
                buckets=_WAIT_BUCKETS,
                registry=registry,
            ),
            "retries": prom.Counter(
                "coinguard_retries",
                "Attempts after the first of a call",
                ["provider", "scope"],
                registry=registry,
            ),
            "limited": prom.Counter(
                "coinguard_rate_limited",
                "Answers saying the rate limit was hit (429, 418)",
                ["provider", "status"],
                registry=registry,
            ),
            "credits": prom.Counter(
                "coinguard_credits",
                "Quota credits spent",
                ["provider", "scope"],
                registry=registry,
            ),
            "findings": prom.Counter(
                "coinguard_key_findings",
                "What verify_key() found wrong with a key (privilege or age)",
                ["provider", "scope", "finding"],
                registry=registry,
            ),
            "quotas": _QuotaCollector(prom),
        }
        registry.register(made["quotas"])
        _FAMILIES[registry] = made
        return made


class _QuotaCollector:
    """``coinguard_quota_remaining_ratio{provider,scope,window}``, read from each bound
    client's quota when scraped."""

    def __init__(self, prom: Any) -> None:
        self._prom = prom
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, client: Any) -> None:
        self._clients.add(client)

    def describe(self) -> list[Any]:
        return []  # nothing fixed to describe: families come and go with clients

    def collect(self) -> Iterator[Any]:
        gauge = self._prom.metrics_core.GaugeMetricFamily(
            "coinguard_quota_remaining_ratio",
            "Share of each quota window still available",
            labels=["provider", "scope", "window"],
        )
        for client in list(self._clients):
            quotas = dict(getattr(client, "_quotas", {}))
            for scope, quota in quotas.items():
                try:
                    status = quota.status()
                except Exception:  # noqa: S112 - a store that cannot be read gives no reading
                    continue
                for window in status.windows:
                    ratio = window.remaining / window.limit if window.limit else 0.0
                    gauge.add_metric([client.provider.name, scope, window.name], ratio)
        yield gauge


class Metrics:
    """An observer that counts every attempt in a Prometheus registry (the default one unless
    ``registry`` is given). Clients it observes also report their remaining quota on scrape.

    >>> client = Client(provider="tokenmetrics", observers=[Metrics()])  # doctest: +SKIP
    """

    blocking = False

    def __init__(self, registry: Any = None, *, max_routes: int = 50) -> None:
        prom = require("prometheus_client", "prometheus")
        require("prometheus_client.metrics_core", "prometheus")
        self.registry = registry if registry is not None else prom.REGISTRY
        self._m = _families(prom, self.registry)
        self._max_routes = max_routes
        self._routes: set[str] = set()
        self._requests: dict[tuple[str, ...], Any] = {}
        self._per: dict[tuple[str, str], tuple[Any, ...]] = {}

    def bind(self, client: Any) -> None:
        """Report this client's remaining quota on every scrape (held weakly)."""
        self._m["quotas"].add(client)

    def key_findings(self, provider: str, reports: Sequence[Any]) -> None:
        """Count what ``verify_key()`` found: ``can_trade``, ``can_withdraw`` or ``age``."""
        counter = self._m["findings"]
        for report in reports:
            for text in report.findings:
                kind = "can_withdraw" if "withdraw" in text else "can_trade"
                counter.labels(provider, report.scope, kind).inc()
            for _ in report.age_findings:
                counter.labels(provider, report.scope, "age").inc()

    def _route(self, route: str) -> str:
        if route in self._routes:
            return route
        if len(self._routes) >= self._max_routes:
            return "other"
        self._routes.add(route)
        return route

    def attempt(self, record: Attempt) -> None:
        """Count one attempt."""
        m = self._m
        status = str(record.status) if record.status is not None else "none"
        where = (record.provider, record.scope)
        labels = (*where, self._route(record.route), status, record.outcome)
        requests = self._requests.get(labels)
        if requests is None:  # labels() costs more than the increment: children are kept
            requests = self._requests[labels] = m["requests"].labels(*labels)
        requests.inc()
        per = self._per.get(where)
        if per is None:
            per = self._per[where] = tuple(
                m[name].labels(*where) for name in ("wait", "duration", "retries", "credits")
            )
        wait, duration, retries, credits = per
        wait.observe(record.quota_wait)
        if record.latency is not None:
            duration.observe(record.latency)
        if record.attempt > 1:
            retries.inc()
        if record.status in (429, 418):
            m["limited"].labels(record.provider, status).inc()
        if record.cost:
            credits.inc(record.cost)
