"""Round trips seen through the real shells narrow how long a late answer counts.

The sandbox stamps each arrival 30-60 ms after it came in (the network between client and
server). The client notes when each request's bytes left and when its answer's headers came
(httpcore's ``trace`` hook): the fastest such round trip bounds the gap between the server's
stamps, so the quota counts a late answer that much earlier, and still draws no 429.
"""

from __future__ import annotations

import threading

import anyio

import coinguard
from coinguard.sandbox import Faults, Sandbox, SandboxConfig, Window

JITTER = (0.03, 0.06)
POLICY = coinguard.QuotaPolicy([coinguard.Window.per_second(8)])


def _sandbox() -> Sandbox:
    return Sandbox(
        SandboxConfig(
            windows=(Window(8, 1.0),), header_style="none", faults=Faults(arrival_jitter=JITTER)
        )
    )


def _leads(client: coinguard.Client | coinguard.AsyncClient) -> list[float]:
    return [q.lead for q in client._quotas.values()]


def test_a_client_learns_the_round_trip_and_stays_under_the_limit() -> None:
    limited: list[BaseException] = []
    with _sandbox() as sb, coinguard.Client(
        provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, quota=POLICY,
        quota_store=coinguard.MemoryStore(), max_retries=0,
    ) as client:  # fmt: skip

        def worker() -> None:
            for _ in range(5):
                try:
                    client.get("/price", params={"symbol": "BTC"})
                except coinguard.RateLimitError as exc:
                    limited.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (lead,) = _leads(client)
    assert not limited
    # at least the way out less the spread of the fastest trips; never more than the fastest
    assert 0.015 < lead <= 0.06


def test_an_async_client_learns_it_too() -> None:
    limited: list[BaseException] = []

    async def main() -> float:
        with _sandbox() as sb:
            async with coinguard.AsyncClient(
                provider="sandbox", base_url=sb.base_url, read_key=sb.keys.read, quota=POLICY,
                quota_store=coinguard.MemoryStore(), max_retries=0,
            ) as client:  # fmt: skip

                async def worker() -> None:
                    for _ in range(5):
                        try:
                            await client.get("/price", params={"symbol": "BTC"})
                        except coinguard.RateLimitError as exc:
                            limited.append(exc)

                async with anyio.create_task_group() as tg:
                    for _ in range(6):
                        tg.start_soon(worker)
                (lead,) = _leads(client)
                return lead

    lead = anyio.run(main)
    assert not limited
    assert 0.015 < lead <= 0.06
