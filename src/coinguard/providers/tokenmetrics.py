"""Token Metrics data API (https://developers.tokenmetrics.com).

Sourced: base URL ``https://api.tokenmetrics.com/v2`` and the ``x-api-key`` header
(docs/authentication); "each request made to any endpoint counts as 1 call = 1 credit"; monthly
calls by tier, Advanced 10,000, Premium 50,000, VIP 250,000 (docs/token-metrics-trading-api);
answers wrapped in ``{success, message, length, data}``; pagination by ``limit`` and ``page``.
Not documented: a per-second or per-minute limit (none is assumed: a 429 and its Retry-After
put the key in the penalty box), key scopes, and a key-info route (``verify_key()`` checks that
the key authenticates with one cheap read, and says the scopes were not checked).

>>> from coinguard import get_provider
>>> get_provider("tokenmetrics").with_plan("premium").quota.windows[0].limit
50000
"""

from __future__ import annotations

from typing import Any

from .._provider import HeaderKey, Plan, Provider
from .._quota import QuotaPolicy, Window
from .._verify import KeyCheck, KeyPermissions

_SOURCE = "monthly calls per tier, developers.tokenmetrics.com (1 request = 1 credit)"


def _monthly(calls: int) -> Plan:
    return Plan(QuotaPolicy([Window.per_month(calls)]), source=_SOURCE)


def authenticates(body: Any) -> KeyPermissions:
    """A successful read: the key works. Token Metrics has no route that reports scopes."""
    return KeyPermissions(
        can_read=True,
        can_trade=False,
        can_withdraw=False,
        note=(
            "Token Metrics documents no key-info route: the key authenticates (one read of "
            "/tokens), its scopes and usage were not checked (see the API dashboard)"
        ),
    )


PROFILE = Provider(
    name="tokenmetrics",
    base_url="https://api.tokenmetrics.com/v2",
    auth=HeaderKey("x-api-key"),
    read_key_env="TOKENMETRICS_API_KEY",
    envelope=True,
    plans={"advanced": _monthly(10_000), "premium": _monthly(50_000), "vip": _monthly(250_000)},
    key_check=KeyCheck("GET", "/tokens", authenticates, params=(("limit", "1"),)),
).with_plan("advanced")
