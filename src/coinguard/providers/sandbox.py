"""The embedded sandbox (``coinguard.sandbox``): a Token-Metrics-style API on loopback.

Its limits, costs and behaviour are the sandbox's own defaults (``SandboxConfig``).

>>> from coinguard.providers.sandbox import PROFILE
>>> PROFILE.scope_of("GET", "/orders/7").value
'trade'
"""

from __future__ import annotations

from .._provider import HeaderKey, Provider
from .._quota import QuotaPolicy, Window
from .._verify import KeyCheck, sandbox_key_info
from .tokenmetrics import endpoints

PROFILE = Provider(
    name="sandbox",
    # where ``coinguard sandbox`` listens by default; tests pass the base URL of their own
    base_url="http://127.0.0.1:8765/v2",
    auth=HeaderKey("x-api-key"),
    read_key_env="COINGUARD_SANDBOX_READ_KEY",
    trade_key_env="COINGUARD_SANDBOX_TRADE_KEY",
    trade_routes=["GET /orders*"],
    envelope=True,
    idempotency_header="Idempotency-Key",
    # the sandbox answers 429 before any handler runs: a throttled order is never placed
    not_executed_statuses=frozenset({429}),
    key_check=KeyCheck("GET", "/key", sandbox_key_info),
    quota=QuotaPolicy(
        (Window.per_second(50), Window.per_minute(1000)),
        costs={"GET /daily-ohlcv*": 2, "GET /hourly-ohlcv*": 2},
    ),
    # the sandbox emulates Token Metrics' routes, with OHLCV at 2 units a call
    endpoints=endpoints(ohlcv_cost=2),
)
