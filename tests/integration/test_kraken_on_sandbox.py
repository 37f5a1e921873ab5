"""The Kraken profile against the Kraken emulation over loopback sockets: signed private reads
and orders, nonces shared by threads and processes, error arrays, the lockout, key checks."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import coinguard
from coinguard.providers import kraken
from coinguard.sandbox import Sandbox, SandboxConfig

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "1", "price": "10"}


@pytest.fixture
def kr() -> Iterator[Sandbox]:
    with Sandbox(profile="kraken") as sandbox:
        yield sandbox


#: A fast tier for the tests that make thousands of calls: the emulation is set to the same.
FAST_MAX, FAST_DECAY = 200, 100.0


def _provider(origin: str, *, fast: bool = False) -> coinguard.Provider:
    if not fast:
        return dataclasses.replace(kraken.PROFILE, base_url=origin)
    counter = coinguard.DecayingCounter(FAST_MAX, FAST_DECAY, costs=kraken.COSTS)
    quota = coinguard.QuotaPolicy([coinguard.Window.per_second(FAST_MAX)])
    return dataclasses.replace(kraken.PROFILE, base_url=origin, counter=counter, quota=quota)


def _client(sb: Sandbox, key: str = "read", **kwargs: Any) -> coinguard.Client:
    keys = vars(sb.keys)
    trade: dict[str, Any] = {}
    if key != "read":
        trade = {"trade_key": keys[key], "trade_secret": keys[f"{key}_secret"]}
        trade["allow_trading"] = True
    kwargs.setdefault("quota_store", coinguard.MemoryStore())
    return coinguard.Client(
        provider=_provider(sb.origin),
        read_key=sb.keys.read,
        read_secret=sb.keys.read_secret,
        **trade,
        **kwargs,
    )


def test_signed_private_read_and_order(kr: Sandbox) -> None:
    """Balance (read key) and AddOrder (trade key) pass the emulation's signature and nonce
    checks; the order is then listed by OpenOrders."""
    with _client(kr, "trade") as client:
        assert client.post("/0/private/Balance")["result"]["ZUSD"] == "1000.0000"
        placed = client.post("/0/private/AddOrder", params=ORDER)["result"]
        listed = client.post("/0/private/OpenOrders")["result"]["open"]
    assert list(listed) == placed["txid"]
    outcomes = [e.outcome for e in kr.ledger.entries()]
    assert outcomes == ["ok", "ok", "ok"]


def test_read_only_client_refuses_orders_before_any_byte(kr: Sandbox) -> None:
    """No trade pair: AddOrder raises ScopeError and the emulation sees nothing."""
    with _client(kr) as client, pytest.raises(coinguard.ScopeError):
        client.post("/0/private/AddOrder", params=ORDER)
    assert kr.ledger.entries() == []


def test_permission_denied_arrives_as_an_error_array(kr: Sandbox) -> None:
    """The read key asking for a withdrawal through a trade slot: EGeneral:Permission denied,
    answered with HTTP 200, raised as PermissionDeniedError."""
    keys = kr.keys
    with (
        coinguard.Client(
            provider=_provider(kr.origin),
            read_key=keys.trade,
            read_secret=keys.trade_secret,
            trade_key=keys.read,
            trade_secret=keys.read_secret,
            allow_trading=True,
            quota_store=coinguard.MemoryStore(),
        ) as client,
        pytest.raises(coinguard.PermissionDeniedError, match="EGeneral:Permission denied"),
    ):
        client.post("/0/private/AddOrder", params=ORDER)


def test_key_check_finds_the_over_privileged_key(kr: Sandbox) -> None:
    """GetApiKeyInfo: the read key is clean, a read slot holding the withdraw-capable key is a
    finding; the check itself is a signed POST with the slot's own pair."""
    with _client(kr) as client:
        assert [r.findings for r in client.verify_key()] == [()]
    with coinguard.Client(
        provider=_provider(kr.origin),
        read_key=kr.keys.overprivileged,
        read_secret=kr.keys.overprivileged_secret,
        quota_store=coinguard.MemoryStore(),
    ) as client:
        (verdict,) = client.verify_key(on_finding="ignore")
    assert set(verdict.findings) == {"the read key can trade", "the read key can withdraw"}


def test_bad_secret_then_lockout_holds_every_client_of_the_key(kr: Sandbox, tmp_path: Path) -> None:
    """A wrong secret is EAPI:Invalid signature; after five the key is locked out, and the
    lockout holds a second client sharing the SQLite store without a request."""
    store = f"sqlite:///{tmp_path / 'quota.db'}"
    wrong = "A" * 86 + "=="

    def attempt() -> type[Exception]:
        with coinguard.Client(
            provider=_provider(kr.origin),
            read_key=kr.keys.read,
            read_secret=wrong,
            quota_store=store,
            on_quota="raise",
            max_retries=0,
        ) as client:
            try:
                client.post("/0/private/Balance")
            except coinguard.CoinguardError as exc:
                return type(exc)
        return type(None)

    assert [attempt() for _ in range(5)] == [coinguard.AuthenticationError] * 5
    assert attempt() is coinguard.RateLimitError  # locked out: told, and boxed
    sent = len(kr.ledger.entries())
    assert attempt() is coinguard.QuotaExceededError
    assert len(kr.ledger.entries()) == sent


def _calls(origin: str, key: str, secret: str, store: str, threads: int, each: int) -> list[str]:
    """``threads`` threads of one client making ``each`` private reads: what each ended in."""
    results: list[str] = []
    with coinguard.Client(
        provider=_provider(origin, fast=True), read_key=key, read_secret=secret, quota_store=store
    ) as client:

        def run() -> None:
            for _ in range(each):
                try:
                    client.post("/0/private/Balance")
                    results.append("ok")
                except coinguard.CoinguardError as exc:
                    results.append(str(exc)[:200])

        pool = [threading.Thread(target=run) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return results


def _worker(args: tuple[Any, ...], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(_calls(*args))


@pytest.mark.parametrize("window", [0, 1000], ids=["no-nonce-window", "nonce-window-1000"])
def test_four_processes_of_eight_threads_share_one_key_through_sqlite(
    tmp_path: Path, window: int
) -> None:
    """4 processes x 8 threads, one key, nonces and the decaying counter in one SQLite file:
    2,000 private calls, every one answered ok, none refused for the counter. Without a nonce
    window, a request overtaken on the way is refused by the server and re-signed, never
    failed; with one, none is refused."""
    config = SandboxConfig(
        profile="kraken", weight_limit=FAST_MAX, counter_decay=FAST_DECAY, nonce_window=window
    )
    with Sandbox(config) as sb:
        store = f"sqlite:///{tmp_path / 'quota.db'}"
        args = (sb.origin, sb.keys.read, sb.keys.read_secret, store, 8, 2000 // 32 + 1)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(args, out)) for _ in range(4)]
        for p in procs:
            p.start()
        results = [r for _ in procs for r in out.get(timeout=300)]
        for p in procs:
            p.join(timeout=30)
        entries = sb.ledger.entries()
    assert len(results) >= 2000
    assert set(results) == {"ok"}
    accepted = [e for e in entries if e.outcome == "ok"]
    assert len(accepted) == len(results)
    assert [e for e in entries if e.outcome == "rate-limited"] == []
    refused = [e for e in entries if e.outcome == "bad-nonce"]
    print(f"window {window}: {len(results)} calls, {len(refused)} overtaken and re-signed")
    if window:
        assert refused == []


@pytest.mark.anyio
async def test_async_client_signs_with_nonces_from_sqlite(kr: Sandbox, tmp_path: Path) -> None:
    """AsyncClient: 10 concurrent private reads over a SQLite store (its steps run off the
    event loop), all answered; the server refused nothing but overtaken nonces, re-signed."""
    import anyio

    results: list[Any] = []
    async with coinguard.AsyncClient(
        provider=_provider(kr.origin),
        read_key=kr.keys.read,
        read_secret=kr.keys.read_secret,
        quota_store=f"sqlite:///{tmp_path / 'quota.db'}",
    ) as client:

        async def one() -> None:
            results.append(await client.post("/0/private/TradeBalance"))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert len(results) == 10
    assert all(r["result"]["eb"] == "1000.0000" for r in results)
    assert not [e for e in kr.ledger.entries() if e.outcome not in ("ok", "bad-nonce")]
