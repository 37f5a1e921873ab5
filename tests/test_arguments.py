"""Every wrong argument is refused at the call, naming the argument and the fix, before any I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import ArgumentTypeError, ConfigurationError, MissingKeyError

BASE = "https://api.example.com/v2"
KEY = "read-key-123-abcdefgh"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key variables, and an empty working directory (no stray .env)."""
    for var in ("COINGUARD_READ_KEY", "COINGUARD_TRADE_KEY", "COINGUARD_SANDBOX_READ_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


class Recorder:
    """A mock transport that records every request it is asked to send."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"success": True, "data": []})


@pytest.fixture
def recorder() -> Recorder:
    """Requests that reached the (mock) network."""
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[coinguard.Client]:
    """A read-only sandbox-profile client over the recording transport."""
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    with coinguard.Client(provider="sandbox", base_url=BASE, read_key=KEY, http_client=http) as c:
        yield c


def _no_key_in(exc: BaseException) -> None:
    assert KEY not in str(exc)
    assert KEY not in repr(exc.args)


CONSTRUCTOR_CASES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"provider": 123}, ArgumentTypeError, "provider must be a built-in provider name"),
    ({"provider": None}, ArgumentTypeError, "coinguard.Provider, not NoneType"),
    ({"timeout": "10"}, ArgumentTypeError, "timeout must be a number of seconds"),
    ({"timeout": -1}, ConfigurationError, "timeout must be a positive number"),
    ({"timeout": True}, ArgumentTypeError, "timeout must be a number of seconds.*not bool"),
    ({"trade_key": "trade-key-9"}, ConfigurationError, "pass allow_trading=True"),
    ({"allow_trading": "yes"}, ArgumentTypeError, "allow_trading must be True or False"),
    ({"base_url": 8765}, ArgumentTypeError, "base_url must be a URL string"),
    ({"max_retries": "3"}, ArgumentTypeError, "max_retries must be an int"),
    ({"max_retries": -1}, ConfigurationError, "max_retries must be >= 0"),
    ({"max_redirects": 2.5}, ArgumentTypeError, "max_redirects must be an int"),
    ({"retry": 3}, ArgumentTypeError, "retry must be a coinguard.RetryPolicy"),
    ({"settings": {"read_key": "x"}}, ArgumentTypeError, "settings must be a coinguard.Settings"),
    ({"env_file": 1}, ArgumentTypeError, "env_file must be a path"),
    ({"on_quota": "block"}, ConfigurationError, "on_quota must be 'wait' or 'raise'"),
    ({"max_wait": "60"}, ArgumentTypeError, "max_wait must be a number of seconds"),
    ({"max_wait": -1}, ConfigurationError, "max_wait must be a number of seconds >= 0"),
    ({"timeout": float("nan")}, ConfigurationError, "timeout must be a positive number"),
    ({"read_key": 12345}, ArgumentTypeError, "read_key must be a str"),
]


@pytest.mark.parametrize("cls", [coinguard.Client, coinguard.AsyncClient])
@pytest.mark.parametrize(("kwargs", "error", "match"), CONSTRUCTOR_CASES)
def test_constructor_refuses_wrong_arguments(
    cls: Callable[..., Any], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Both clients refuse the same wrong arguments with the same error at construction."""
    args: dict[str, Any] = {"provider": "sandbox", "base_url": BASE, "read_key": KEY, **kwargs}
    with pytest.raises(error, match=match) as info:
        cls(**args)
    _no_key_in(info.value)


def test_wrong_types_are_type_errors_too() -> None:
    """An ArgumentTypeError is a TypeError (Python convention) and a ConfigurationError."""
    with pytest.raises(TypeError):
        coinguard.Client(provider=123)  # type: ignore[arg-type]
    assert issubclass(ArgumentTypeError, ConfigurationError)


CALL_CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], type[Exception], str]] = [
    ("get", (123,), {}, ArgumentTypeError, "url must be a path such as '/price'"),
    ("get", (None,), {}, ArgumentTypeError, "url must be a path"),
    ("get", ("/price",), {"json": {"a": 1}}, ConfigurationError, "GET sends no body, so json="),
    ("get", ("/price",), {"content": b"x"}, ConfigurationError, "so content= would be ignored"),
    ("request", ("FETCH", "/price"), {}, ConfigurationError, "method 'FETCH' is not an HTTP"),
    ("request", (1, "/price"), {}, ArgumentTypeError, "method must be an HTTP method"),
    ("request", ("HEAD", "/price"), {"json": {}}, ConfigurationError, "HEAD sends no body"),
    ("get", ("/price",), {"headers": ["x"]}, ArgumentTypeError, "headers must be a mapping"),
    ("post", ("/search",), {"idempotency_key": 5}, ArgumentTypeError, "idempotency_key must be"),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "error", "match"), CALL_CASES)
def test_calls_refuse_wrong_arguments_before_sending(
    client: coinguard.Client,
    recorder: Recorder,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """A wrong call argument is an error naming it, and nothing reaches the network."""
    with pytest.raises(error, match=match) as info:
        getattr(client, name)(*args, **kwargs)
    _no_key_in(info.value)
    assert recorder.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "args", "kwargs", "error", "match"), CALL_CASES)
async def test_async_calls_refuse_the_same_arguments(
    recorder: Recorder,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """AsyncClient shares the checks: same errors, nothing sent."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with coinguard.AsyncClient(
        provider="sandbox", base_url=BASE, read_key=KEY, http_client=http
    ) as client:
        with pytest.raises(error, match=match):
            await getattr(client, name)(*args, **kwargs)
    await http.aclose()
    assert recorder.requests == []


def test_a_method_named_in_the_provider_routes_is_sent(recorder: Recorder) -> None:
    """A non-standard method the provider declares (QUERY /search) is sent, with the read key."""
    provider = coinguard.Provider(name="q", base_url=BASE, read_routes=["QUERY /search"])
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    with coinguard.Client(provider=provider, read_key=KEY, http_client=http) as client:
        client.request("query", "/search", json={"q": "btc"})
    assert [r.method for r in recorder.requests] == ["QUERY"]


def test_use_after_close_is_a_clear_error(client: coinguard.Client, recorder: Recorder) -> None:
    """After close(), a call says the client is closed instead of httpx's RuntimeError."""
    client.close()
    with pytest.raises(ConfigurationError, match="this client is closed; create a new one"):
        client.get("/price")
    with pytest.raises(ConfigurationError, match="closed"):
        client.verify_key()
    assert recorder.requests == []


@pytest.mark.anyio
async def test_async_use_after_close_is_a_clear_error() -> None:
    """AsyncClient after aclose(): the same error, not httpx's RuntimeError."""
    async with coinguard.AsyncClient(provider="sandbox", base_url=BASE, read_key=KEY) as client:
        pass
    with pytest.raises(ConfigurationError, match="this client is closed"):
        await client.get("/price")


def test_trade_key_without_allow_trading_says_so() -> None:
    """A trade key given to a read-only client is refused, not silently ignored."""
    with pytest.raises(ConfigurationError) as info:
        coinguard.Client(
            provider="sandbox", base_url=BASE, read_key=KEY, trade_key="t-key-77-abcdefghijk"
        )
    assert "trade_key was given but allow_trading is False" in str(info.value)
    assert "t-key-77-abcdefghijk" not in str(info.value)


def test_missing_key_mentions_an_unread_dotenv(tmp_path: Path) -> None:
    """With ./.env present, MissingKeyError says it was not read and how to opt in."""
    (tmp_path / ".env").write_text("COINGUARD_READ_KEY=from-dotenv-1-abcdefgh\n")
    with pytest.raises(MissingKeyError) as info:
        coinguard.Client(provider="sandbox", base_url=BASE)
    text = str(info.value)
    assert "COINGUARD_READ_KEY" in text
    assert "a .env file in the working directory was not read" in text
    assert 'env_file=".env"' in text
    assert "from-dotenv-1" not in text
    with coinguard.Client(provider="sandbox", base_url=BASE, env_file=".env") as opted_in:
        assert opted_in._core.read.loaded is not None


def test_missing_key_without_dotenv_has_no_note() -> None:
    """Without a .env the message stays the plain list of places looked at."""
    with pytest.raises(MissingKeyError) as info:
        coinguard.Client(provider="sandbox", base_url=BASE)
    assert ".env" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("GET", "http://[::1/price"), {}, "is not a valid URL"),
        (("GET", "/\udc80price"), {}, "is not a valid path"),
        (("GET", "/price"), {"params": object()}, "cannot be built from its"),
        (("GET", "/price"), {"headers": {"x-n": 1}}, "cannot be built from its"),
        (("POST", "/orders"), {"json": {}, "idempotency_key": "a\nb"}, "visible ASCII"),
        (("POST", "/orders"), {"json": {}, "idempotency_key": "\u00e9"}, "visible ASCII"),
    ],
)
def test_odd_arguments_found_by_review_are_clear_errors(
    recorder: Recorder, args: tuple[str, str], kwargs: dict[str, Any], message: str
) -> None:
    """An unclosed IPv6 literal, a lone surrogate, params httpx cannot read, a header value
    h11 would refuse after the order counted as sent: each a ConfigurationError, nothing sent."""
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    with (
        coinguard.Client(
            provider="sandbox",
            base_url=BASE,
            read_key=KEY,
            trade_key="trade-key-123-abcdefgh",
            allow_trading=True,
            http_client=http,
        ) as client,
        pytest.raises(ConfigurationError, match=message) as info,
    ):
        client.request(*args, **kwargs)
    assert not isinstance(info.value, coinguard.OrderOutcomeUnknownError)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 1}, "name must be a non-empty string"),
        ({"trade_routes": None}, "must be a list of 'METHOD /path' strings"),
        ({"auth": "x-api-key"}, "auth must be HeaderKey"),
        ({"idempotency_header": "a b"}, "not a valid HTTP token"),
        ({"retryable_statuses": {"429"}}, "set of HTTP status codes"),
        ({"not_executed_statuses": 429}, "set of HTTP status codes"),
    ],
)
def test_a_malformed_provider_is_refused_at_construction(
    kwargs: dict[str, Any], message: str
) -> None:
    """Provider fields of the wrong shape: a ConfigurationError naming the field."""
    fields: dict[str, Any] = {"name": "x", "base_url": BASE, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        coinguard.Provider(**fields)
    with pytest.raises(ConfigurationError, match="not a valid HTTP token"):
        coinguard.HeaderKey(1)  # type: ignore[arg-type]
