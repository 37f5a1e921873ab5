"""An embedded sandbox of a keyed crypto-data API, on loopback, for demos, tests and benchmarks.

The server enforces key scopes, per-account rate windows and injected faults, and records
every request in a :class:`Ledger` that never holds a key value. Besides its own
Token-Metrics-style API it emulates CoinGecko and CoinMarketCap
(``Sandbox(profile="coingecko")``), from the client's own provider tables::

    from coinguard.sandbox import Faults, Sandbox, SandboxConfig, Window

    with Sandbox(SandboxConfig(windows=(Window(5, 1.0),))) as sb:
        r = httpx.get(sb.base_url + "/price", params={"symbol": "BTC"},
                      headers={"x-api-key": sb.keys.read})
        assert sb.ledger.violations() == []
"""

from __future__ import annotations

from ._accounts import Keys
from ._config import Faults, ManualClock, SandboxConfig, Window, parse_limit
from ._ledger import Ledger, LedgerEntry, Violation
from ._orders import Order
from ._server import Sandbox

__all__ = [
    "Faults",
    "Keys",
    "Ledger",
    "LedgerEntry",
    "ManualClock",
    "Order",
    "Sandbox",
    "SandboxConfig",
    "Violation",
    "Window",
    "parse_limit",
]
