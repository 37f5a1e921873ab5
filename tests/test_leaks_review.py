"""A reason phrase the server sends with bytes that httpx drops (non-ASCII) between pieces of
the key: what httpx shows is the key whole, so that is what must be redacted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

import coinguard
from coinguard import QueryKey
from test_leaks import MOCK_BASE, _exception_texts, _leaks

if TYPE_CHECKING:
    from conftest import Canary


def _spliced(text: str) -> bytes:
    """``text`` with a byte httpx's ASCII decoding drops after every 7 characters."""
    pieces = [text[i : i + 7].encode("ascii") for i in range(0, len(text), 7)]
    return b"\xa0".join(pieces)


def test_a_key_spliced_with_dropped_bytes_in_a_reason_phrase_is_redacted(
    make_canary: Callable[[str], Canary],
) -> None:
    """httpx decodes a reason phrase ignoring non-ASCII bytes: the scrub must read it so too."""
    canary = make_canary("READ")
    reason = b"Bad key " + _spliced(canary.value.upper())

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={}, extensions={"reason_phrase": reason})

    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=QueryKey("api_key"))
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        coinguard.Client(provider=provider, read_key=canary.value, http_client=http) as client,
        pytest.raises(coinguard.AuthenticationError) as info,
    ):
        client.get("/price")
    assert _leaks([canary], _exception_texts(info.value)) == []


def test_a_key_echoed_in_a_header_name_never_shows_in_a_raw_response(
    make_canary: Callable[[str], Canary],
) -> None:
    """``raw=True`` shows the answer's headers: a name a server built from the key is
    redacted like a value."""
    canary = make_canary("READ")
    name = "x-echo-" + canary.value.split("+")[0]  # a header name holds no "/" or "="

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True}, headers={name: "1"})

    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=QueryKey("api_key"))
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with coinguard.Client(provider=provider, read_key=canary.value, http_client=http) as client:
        answer = client.request("GET", "/price", raw=True)
    assert answer.body == {"ok": True}
    shown = [("repr", repr(answer)), ("headers", repr(list(answer.headers.items())))]
    assert _leaks([canary], shown) == []
