"""``coinguard demo``: what coinguard is for, in one short run against the embedded sandbox.

With ``TOKENMETRICS_API_KEY`` set, the demo first reads prices from the real Token Metrics API
(``COINGUARD_BASE_URL`` points it elsewhere, as for any client); when that fails (no network, a
rejected key, a 429) it says so in one line and goes on. Every other step uses the sandbox
(Token Metrics has no order endpoint).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ._client import Client
from ._exceptions import CoinguardError, ScopeError
from ._provider import QueryKey, get_provider
from ._quota import MemoryStore

__all__ = ["run_demo"]

SYMBOLS = "BTC,ETH,SOL"
ORDER = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.01}


class _Capture(logging.Handler):
    """Keeps every formatted record, as a log shipper would see it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _captured_logs() -> Iterator[_Capture]:
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("coinguard", "httpx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def _section(out: TextIO, title: str) -> None:
    print(f"\n== {title}", file=out)


def _show_prices(out: TextIO, client: Client) -> list[str]:
    """Print prices and candles; return the routes called, for the quota step."""
    prices = client.get("/price", params={"symbol": SYMBOLS})["data"]
    for p in prices:
        print(f"   {p['symbol']:<5} {p['price']:>12,.2f} USD", file=out)
    candles = client.get("/daily-ohlcv", params={"symbol": "BTC", "limit": 3})["data"]
    for c in candles[-3:]:
        print(
            f"   BTC {c['date']}  open {c['open']:>10,.0f}  high {c['high']:>10,.0f}  "
            f"low {c['low']:>10,.0f}  close {c['close']:>10,.0f}",
            file=out,
        )
    return ["/price", "/daily-ohlcv"]


def _explain_cost(out: TextIO, client: Client, routes: list[str]) -> None:
    policy = client.provider.quota
    if policy is None:
        return
    costs = [(route, policy.cost("GET", route)) for route in routes]
    parts = ", ".join(f"GET {route} costs {cost}" for route, cost in costs)
    total = sum(cost for _, cost in costs)
    print(f"   {len(costs)} calls in step 1: {parts} (the provider's cost table),", file=out)
    print(f"   so each window has used {total} units", file=out)


def _real_read_part(out: TextIO) -> None:
    _section(out, "0. Read with the key from TOKENMETRICS_API_KEY (real API)")
    try:
        # One short try: a demo that waits out retries or a long timeout looks hung.
        with Client(provider="tokenmetrics", max_retries=0, timeout=10.0) as tm:
            print(f"   client: {tm!r}", file=out)
            body = tm.get("/price", params={"symbol": SYMBOLS})
    except CoinguardError as exc:
        print(f"   could not reach Token Metrics: {exc}; showing the sandbox instead", file=out)
        return
    data = body.get("data") if isinstance(body, dict) else None
    for p in data[:3] if isinstance(data, list) else []:
        name = p.get("symbol", p.get("token_symbol", "?")) if isinstance(p, dict) else "?"
        print(f"   {name}: {p}", file=out)


def run_demo(out: TextIO) -> int:
    """Run the demo, printing to ``out``; returns the process exit code.

    >>> import io
    >>> run_demo(io.StringIO())  # doctest: +SKIP
    0
    """
    from .sandbox import Faults, Sandbox, SandboxConfig

    real = bool(os.environ.get("TOKENMETRICS_API_KEY"))
    # Query-parameter auth on purpose: httpx logs every URL at INFO, so this is the case where a
    # naive client leaks its key into logs.
    provider = dataclasses.replace(get_provider("sandbox"), auth=QueryKey("api_key"))
    with Sandbox(SandboxConfig(auth="query")) as sb, _captured_logs() as logs:
        keys = sb.keys
        print(f"coinguard demo: sandbox at {sb.base_url}", file=out)
        print(
            "   (throwaway keys provisioned by the sandbox; the key is sent as ?api_key=, "
            "the riskiest placement)",
            file=out,
        )
        if real:
            _real_read_part(out)
        common: dict[str, Any] = {"provider": provider, "base_url": sb.base_url}
        with Client(read_key=keys.read, **common) as reader:
            _section(out, "1. Market data with the read key")
            print(f"   client: {reader!r}", file=out)
            routes = _show_prices(out, reader)

            _section(out, "2. Quota, tracked locally and synced with the server's headers")
            _explain_cost(out, reader, routes)
            for line in str(reader.quota).splitlines():
                print(f"   {line}", file=out)

            _section(out, "3. The read-only client tries to place an order")
            try:
                reader.post("/orders", json=ORDER)
            except ScopeError as exc:
                print(f"   ScopeError: {exc}", file=out)
            sent = sb.ledger.count(path="/v2/orders")
            print(f"   order requests that reached the server: {sent}", file=out)

            _section(out, "4. Least privilege, verified with the provider")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                report = reader.verify_key(on_finding="warn")[0]
            perms = report.permissions
            print(
                f"   read key {report.fingerprint}: can_read={perms.can_read} "
                f"can_trade={perms.can_trade} can_withdraw={perms.can_withdraw}",
                file=out,
            )
            for w in caught:
                print(f"   {type(w.message).__name__}: {w.message}", file=out)
            with Client(read_key=keys.overprivileged, **common) as risky:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    bad = risky.verify_key(on_finding="ignore")[0]
                print(f"   a 'read' key {bad.fingerprint}: {'; '.join(bad.findings)}", file=out)
                for finding in bad.age_findings:
                    print(f"   and it is old: {finding}", file=out)

        _section(out, "5. Trading, with the trade key, through a connection dropped mid-order")
        sb.set_faults(Faults(drop_after_order_rate=1.0))
        with Client(read_key=keys.read, trade_key=keys.trade, allow_trading=True, **common) as tr:
            order = tr.post("/orders", json=ORDER)["data"]
        sb.set_faults(Faults())
        posts = sb.ledger.count(path="/v2/orders", method="POST")
        print(
            f"   order {order['id']} {order['status']}: sent {posts} times under one "
            f"Idempotency-Key, orders that exist: {len(sb.orders)}",
            file=out,
        )
        print(
            "   (re-sent only because the server de-duplicates by Idempotency-Key; without one,"
            " coinguard raises OrderOutcomeUnknownError instead)",
            file=out,
        )

        _section(out, "6. What the logs saw (every line, as a log shipper would get it)")
        for line in logs.lines:
            print(f"   {line}", file=out)
        seen = "".join(logs.lines)
        leaked = [k for k in (keys.read, keys.trade, keys.overprivileged) if k and k in seen]
        print(
            f"   {len(logs.lines)} log lines, keys found in them: {len(leaked)} "
            "(only fingerprints such as <key fp:...>)",
            file=out,
        )
        violations = sb.ledger.violations()
        print(f"   rate-limit windows exceeded on the server: {len(violations)}", file=out)
    violations += _two_providers(out)
    violations += _signed_trading(out)
    return 1 if leaked or violations else 0


def _two_providers(out: TextIO) -> list[Any]:
    """Step 7: one read through two real provider profiles, against their emulations."""
    from .sandbox import Sandbox

    _section(out, "7. The same read through two providers' profiles (their sandbox emulations)")
    tables: list[list[str]] = []
    with Sandbox(profile="coingecko") as cg, Sandbox(profile="coinmarketcap") as cmc:
        reads = (
            (cg, "coingecko", "/simple/price", {"ids": "bitcoin", "vs_currencies": "usd"}),
            (cmc, "coinmarketcap", "/v1/cryptocurrency/quotes/latest", {"symbol": "BTC"}),
        )
        for sb, name, path, params in reads:
            with Client(
                provider=name,
                base_url=sb.base_url,
                read_key=sb.keys.read,
                quota_store=MemoryStore(),
            ) as client:
                body = client.get(path, params=params)
                usd = (
                    body["bitcoin"]["usd"]
                    if name == "coingecko"
                    else body["data"]["BTC"]["quote"]["USD"]["price"]
                )
                print(
                    f"   {name:<14} plan {client.provider.plan:<6} BTC {usd:>12,.2f} USD", file=out
                )
                status = client.quota
                rows = str(status).splitlines()[1:] if status is not None else []
                tables.append([f"{name} ({client.provider.plan} plan)", *rows])
        violations = cg.ledger.violations() + cmc.ledger.violations()
    width = max(len(line) for line in tables[0]) + 3
    for left, right in zip(*tables, strict=False):
        print(f"   {left:<{width}}{right}", file=out)
    return violations


def _signed_trading(out: TextIO) -> list[Any]:
    """Step 8: signed requests and a reconciled order, against the Binance emulation."""
    from .providers import binance
    from .sandbox import Faults, Sandbox

    _section(out, "8. Signed trading (the Binance spot emulation): HMAC-signed key pairs")
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "9"}
    with Sandbox(profile="binance") as sb:
        keys = sb.keys
        provider = binance.PROFILE
        pair: dict[str, Any] = {
            "read_key": keys.read,
            "read_secret": keys.read_secret,
            "base_url": sb.origin,  # Binance's paths start at the root
        }
        with Client(provider=provider, quota_store=MemoryStore(), **pair) as reader:
            account = reader.get("/api/v3/account")
            print(f"   signed read of /api/v3/account: canTrade={account['canTrade']}", file=out)
            try:
                reader.post("/api/v3/order", params=order)
            except ScopeError as exc:
                print(f"   ScopeError: {exc}", file=out)
        sent = sb.ledger.count(path="/api/v3/order")
        print(f"   order requests that reached the server: {sent}", file=out)
        # the order executes, then its answer is lost; it stays invisible to lookups a moment
        sb.set_faults(Faults(drop_after_order_rate=1.0, invisible_seconds=0.05))
        trade: dict[str, Any] = {"trade_key": keys.trade, "trade_secret": keys.trade_secret}
        with Client(
            provider=provider, quota_store=MemoryStore(), allow_trading=True, **pair, **trade
        ) as trader:
            placed = trader.post("/api/v3/order", params=order)
            sb.set_faults(Faults())
            existing = trader.get("/api/v3/allOrders", params={"symbol": "BTCUSDT"})
        posts = sb.ledger.count(path="/api/v3/order", method="POST")
        lookups = sb.ledger.count(path="/api/v3/order", method="GET")
        print(
            f"   order {placed['orderId']} {placed['status']}: its answer was lost, so coinguard "
            f"looked it up by its client order id ({lookups} lookups) instead of re-sending it",
            file=out,
        )
        print(f"   sent {posts} time, orders that exist: {len(existing)}", file=out)
        violations = sb.ledger.violations()
    return violations
