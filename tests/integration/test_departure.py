"""A call is counted when its bytes leave, not only when it was admitted.

A connect stall (a full accept queue, a TCP retry, a slow TLS handshake) can hold a call for
a second after its last quota check, while other workers sharing the key send the next
second's burst: the stalled call then reaches the server beside that burst. The client
re-checks a call at the moment httpcore starts writing it (its ``trace`` hook) and holds it
there until it fits. Sandbox over real sockets, on a manual clock shared with the server; a
transport stalls the second call, and during the stall another client of the same key (the
other worker) sends its burst.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import httpx

import coinguard
from coinguard.sandbox import ManualClock, Sandbox, SandboxConfig, Window

POLICY = coinguard.QuotaPolicy([coinguard.Window.per_second(2)])
STALL = 1.02  # past the second in which the stalled call was admitted


def _sandbox(clock: ManualClock) -> Sandbox:
    return Sandbox(SandboxConfig(windows=(Window(2, 1.0),), clock=clock, header_style="none"))


class _Stalling(httpx.HTTPTransport):
    """Runs ``stall`` before the second request's bytes, after the quota's last check."""

    def __init__(self, stall: Callable[[], None]) -> None:
        super().__init__()
        self.stall, self.seen = stall, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen == 2:
            self.stall()
        return super().handle_request(request)


class _AsyncStalling(httpx.AsyncHTTPTransport):
    def __init__(self, stall: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.stall, self.seen = stall, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen == 2:
            await self.stall()
        return await super().handle_async_request(request)


def _client(
    sb: Sandbox, clock: ManualClock, store: coinguard.MemoryStore, **kw: object
) -> coinguard.Client:
    return coinguard.Client(
        provider="sandbox",
        base_url=sb.base_url,
        read_key=sb.keys.read,
        quota=POLICY,
        quota_store=store,
        clock=clock,
        sleep=clock.advance,
        jitter=lambda: 0.0,
        max_retries=0,
        **kw,  # type: ignore[arg-type]
    )


def _run(*, deadline: float = 30.0) -> tuple[Sandbox, list[BaseException]]:
    clock, store = ManualClock(1_800_000_000.0), coinguard.MemoryStore()
    errors: list[BaseException] = []
    with _sandbox(clock) as sb, _client(sb, clock, store) as other:

        def stall() -> None:
            clock.advance(STALL)
            for _ in range(2):  # the other worker's burst, admitted in the new second
                other.get("/price", params={"symbol": "ETH"})

        retry = coinguard.RetryPolicy(deadline=deadline, max_retries=0)
        with (
            httpx.Client(transport=_Stalling(stall)) as http,
            _client(sb, clock, store, http_client=http, retry=retry) as client,
        ):
            for _ in range(2):
                try:
                    client.get("/price", params={"symbol": "BTC"})
                except coinguard.CoinguardError as exc:
                    errors.append(exc)
    return sb, errors


def test_a_stalled_call_waits_for_room_when_it_leaves() -> None:
    sb, errors = _run()
    assert errors == []
    assert sb.ledger.count(status=429) == 0
    assert sb.ledger.violations() == []
    assert sb.ledger.count(status=200) == 4


def test_a_stall_past_the_deadline_sends_nothing() -> None:
    """The stalled call no longer fits and its deadline has passed: refused before its bytes
    leave, and the server never saw it."""
    sb, errors = _run(deadline=0.5)
    assert [type(e) for e in errors] == [coinguard.QuotaExceededError]
    assert sb.ledger.count() == 3
    assert sb.ledger.violations() == []


def test_a_stalled_async_call_waits_for_room_when_it_leaves() -> None:
    clock, store = ManualClock(1_800_000_000.0), coinguard.MemoryStore()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    def make(sb: Sandbox, **kw: object) -> coinguard.AsyncClient:
        return coinguard.AsyncClient(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=sb.keys.read,
            quota=POLICY,
            quota_store=store,
            clock=clock,
            sleep=sleep,
            jitter=lambda: 0.0,
            max_retries=0,
            **kw,  # type: ignore[arg-type]
        )

    async def run(sb: Sandbox) -> None:
        async with make(sb) as other:

            async def stall() -> None:
                clock.advance(STALL)
                for _ in range(2):
                    await other.get("/price", params={"symbol": "ETH"})

            async with (
                httpx.AsyncClient(transport=_AsyncStalling(stall)) as http,
                make(sb, http_client=http) as client,
            ):
                for _ in range(2):
                    await client.get("/price", params={"symbol": "BTC"})

    with _sandbox(clock) as sb:
        anyio.run(run, sb)
    assert sb.ledger.count(status=429) == 0
    assert sb.ledger.violations() == []
