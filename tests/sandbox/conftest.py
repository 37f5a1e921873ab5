"""Shared fixtures of the sandbox tests: a manual clock and httpx clients closed at teardown."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import httpx
import pytest

from coinguard.sandbox import ManualClock, Sandbox

ClientFactory = Callable[..., httpx.Client]

# Loading CA certificates costs ~30 ms per client; the sandbox is plain http, so share one context.
_TLS = ssl.create_default_context()


@pytest.fixture
def clock() -> ManualClock:
    """A server clock that moves only when the test says so (2023-11-14T22:13:20Z)."""
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def http() -> Iterator[ClientFactory]:
    """Build httpx clients bound to a sandbox (and a key); all closed at teardown."""
    clients: list[httpx.Client] = []

    def make(sb: Sandbox, key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"x-api-key": key} if key is not None else {}
        client = httpx.Client(
            base_url=sb.base_url, headers=headers, timeout=5.0, verify=_TLS, **kwargs
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
