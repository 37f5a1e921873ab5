"""The canary suite: a key never shows in a repr, log line, error, traceback, warning, pickle,
audit line, span or metric."""

from __future__ import annotations

import asyncio
import base64
import gc
import pickle
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx
import prometheus_client
import pytest
import respx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

import coinguard
from coinguard import BearerKey, BinanceSigner, HeaderKey, QueryKey, SignedKey

if TYPE_CHECKING:
    from conftest import Canary, CapturedLogs, LoopbackServer, Route, Seen

STYLES: dict[str, coinguard.HeaderKey | coinguard.QueryKey | coinguard.BearerKey | SignedKey] = {
    "header": HeaderKey("x-api-key"),
    "query": QueryKey("api_key"),
    "bearer": BearerKey(),
    "signed": SignedKey("x-mbx-apikey", BinanceSigner()),
}
FAST = coinguard.RetryPolicy(max_retries=1, backoff_initial=0.0)
MOCK_BASE = "https://api.leaky.test/v2"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for scope in ("READ", "TRADE"):
        for suffix in ("KEY", "KEY_FILE", "KEY_REF", "SECRET", "SECRET_FILE", "SECRET_REF"):
            monkeypatch.delenv(f"COINGUARD_{scope}_{suffix}", raising=False)


def _no_sleep(seconds: float) -> None:
    return None


async def _no_sleep_async(seconds: float) -> None:
    return None


# -- what the servers do ---------------------------------------------------------------------


def _echo(seen: Seen) -> str:
    """Whatever looks like a key in the request, as a careless server would echo it."""
    found = [
        v for k, v in seen.headers if k.lower() in ("x-api-key", "authorization", "x-mbx-apikey")
    ]
    found += [v for k, v in seen.query if k in ("api_key", "signature")]
    return " ".join(found)


def _echoes(echo: str) -> dict[str, Any]:
    """The key as careless servers echo it: whole, cut, upper-cased, base64, in a sentence."""
    blob = base64.b64encode(f"user:{echo}".encode()).decode()
    return {
        "whole": echo,
        "cut": echo[:24],
        "upper": echo.upper(),
        "base64": blob,
        "sentence": f"key '{echo[4:]}' is not valid for this plan",
    }


def _leaky_route(landing: str) -> Route:
    """The provider: echoes the key in bodies, headers, reason phrases and content types."""

    def route(seen: Seen) -> dict[str, Any]:
        echo = _echo(seen)
        error = {
            "success": False,
            "message": f"invalid key {echo}",
            "detail": {echo: [echo]},
            "echoes": _echoes(echo),
        }
        headers = {"X-Echo-Key": echo, "X-Request-Id": f"req-{echo}"}
        reason = f"Bad key {echo.upper()}"
        path = seen.path.removeprefix("/v2")
        query = urlsplit(seen.target).query
        html_type = {"Content-Type": f"text/html; charset=utf-8; key={echo}"}
        answers: dict[str, dict[str, Any]] = {
            "/ok": {"body": {"success": True, "data": [1, 2, 3]}},
            "/orders": {"body": {"success": True, "data": {"id": 7}}},
            "/unauthorized": {"status": 401, "body": error, "reason": reason},
            "/forbidden": {"status": 403, "body": error},
            "/limited": {"status": 429, "body": error, "headers": {"Retry-After": "1"}},
            "/broken": {"status": 500, "body": error},
            "/broken-text": {"status": 502, "body": b"", "reason": reason},
            "/orders/broken": {"status": 500, "body": error},
            "/refused": {"body": error},
            "/html": {"body": f"<html><body>key {echo}</body></html>", "headers": html_type},
            "/slow": {"body": {"success": True}, "delay": 3.0},
            "/orders/slow": {"body": {"success": True}, "delay": 3.0},
            # A host move keeps the query string, as real redirects do.
            "/moved": {"status": 302, "headers": {"Location": f"{landing}/landing?{query}"}},
        }
        answer = answers.get(path, {"status": 404, "body": error})
        return {**answer, "headers": {**headers, **answer.get("headers", {})}}

    return route


def _secret_for(
    style: object, make_canary: Callable[[str], Canary]
) -> tuple[dict[str, Any], list[Canary]]:
    """A signed style's read secret as client arguments, and the canary to search for."""
    if not isinstance(style, SignedKey):
        return {}, []
    secret = make_canary("SECRET")
    return {"read_secret": secret.value}, [secret]


def _landing_route(seen: Seen) -> dict[str, Any]:
    """Another origin: records what it got and answers JSON."""
    return {"body": {"success": True, "landed": True}}


# -- where to look for the key ---------------------------------------------------------------


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception reachable through ``__cause__`` and ``__context__``."""
    found: list[BaseException] = []
    todo = [exc] if exc is not None else []
    while todo:
        current = todo.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found


def _locals_texts(value: object, depth: int = 0) -> Iterator[str]:
    """What a traceback printer or an error tracker shows of a local variable.

    Its repr (``capture_locals``, ``pytest -l``, rich), the items of containers (error trackers
    serialise those), and for httpx requests and URLs the whole URL and headers.
    """
    try:
        yield repr(value)
    except Exception:  # a repr that fails is not a leak
        return
    if depth >= 3:
        return
    if isinstance(value, httpx.Request):
        yield f"{value.url} {list(value.headers.items())}"
    elif isinstance(value, httpx.Response):
        yield from _locals_texts(value._request, depth + 1)
    elif isinstance(value, httpx.URL | httpx.Headers):
        yield str(value) if isinstance(value, httpx.URL) else repr(list(value.items()))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield repr(key)
            yield from _locals_texts(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _locals_texts(item, depth + 1)


_TESTS = str(Path(__file__).parent)


def _frames_texts(err: BaseException) -> Iterator[str]:
    """Captured locals of every library frame of ``err``'s traceback (the test's own frames
    hold the canary on purpose, as a user's would)."""
    frames = [
        (frame, line)
        for frame, line in traceback.walk_tb(err.__traceback__)
        if not frame.f_code.co_filename.startswith(_TESTS)
    ]
    summary = traceback.StackSummary.extract(iter(frames), capture_locals=True)
    yield "".join(summary.format())
    for frame, _ in frames:
        for name, value in frame.f_locals.items():
            for text in _locals_texts(value):
                yield f"{frame.f_code.co_name}.{name} = {text}"


def _exception_texts(exc: BaseException | None) -> Iterator[tuple[str, str]]:
    for i, err in enumerate(_chain(exc)):
        where = f"exception #{i} {type(err).__name__}"
        yield f"{where} str", str(err)
        yield f"{where} repr", repr(err)
        yield f"{where} args", repr(err.args)
        yield f"{where} traceback", "".join(traceback.format_exception(err))
        for text in _frames_texts(err):
            yield f"{where} locals", text
        for attr in ("body", "url", "method", "request_id", "content_type"):
            if hasattr(err, attr):
                yield f"{where} .{attr}", repr(getattr(err, attr))
        if isinstance(err, coinguard.CoinguardError):
            yield f"{where} vars", repr(vars(err))
            yield f"{where} pickle", pickle.dumps(err).decode("latin-1")


def _foreign_links(exc: BaseException | None) -> list[str]:
    """Chained exceptions that are not coinguard's: they may hold a keyed request or a body."""
    return [
        type(err).__name__
        for err in _chain(exc)[1:]
        if not isinstance(err, coinguard.CoinguardError)
    ]


def _client_texts(client: coinguard.Client | coinguard.AsyncClient) -> Iterator[tuple[str, str]]:
    yield "repr(client)", repr(client)
    yield "str(client)", str(client)
    core = client._core
    for slot in (core.read, core.trade):
        if slot is not None:
            yield f"{slot.scope_name} slot", repr(slot)
            yield f"{slot.scope_name} source", repr(slot.source)
            if slot.loaded is not None:
                yield (
                    f"{slot.scope_name} secret",
                    f"{slot.loaded!r} {slot.loaded} {slot.loaded:>40}",
                )


def _leaks(canaries: Iterable[Canary | Needle], texts: Iterable[tuple[str, str]]) -> list[str]:
    """``where: needle`` for every canary spelling found; empty means no leak."""
    texts = list(texts)
    return [
        f"{where}: {needle}"
        for canary in canaries
        for where, text in texts
        for needle in canary.found_in(text)
    ]


# -- the scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    method: str
    path: str
    raises: type[Exception] | None
    trade: bool = False  # the trade key must be on the wire, not the read key
    refused: bool = False  # aimed at a closed port
    follow_redirects: bool = False
    timeout: float = 5.0


SCENARIOS = {
    "success": Scenario("GET", "/ok", None),
    "order": Scenario("POST", "/orders", None, trade=True),
    "unauthorized": Scenario("GET", "/unauthorized", coinguard.AuthenticationError),
    "forbidden": Scenario("GET", "/forbidden", coinguard.PermissionDeniedError),
    "rate_limited": Scenario("GET", "/limited", coinguard.RateLimitError),
    "server_error": Scenario("GET", "/broken", coinguard.ServerError),
    "server_error_text": Scenario("GET", "/broken-text", coinguard.ServerError),
    "order_server_error": Scenario(
        "POST", "/orders/broken", coinguard.OrderOutcomeUnknownError, trade=True
    ),
    "envelope_failure": Scenario("GET", "/refused", coinguard.EnvelopeError),
    "html": Scenario("GET", "/html", coinguard.ResponseDecodeError),
    "timeout": Scenario("GET", "/slow", coinguard.APITimeoutError, timeout=0.2),
    "order_timeout": Scenario(
        "POST", "/orders/slow", coinguard.OrderOutcomeUnknownError, trade=True, timeout=0.2
    ),
    "connection_refused": Scenario("GET", "/ok", coinguard.APIConnectionError, refused=True),
    "redirect_not_followed": Scenario("GET", "/moved", coinguard.APIStatusError),
    "redirect_followed": Scenario("GET", "/moved", None, follow_redirects=True),
}
ASYNC_SCENARIOS = list(SCENARIOS)


@dataclass
class Stage:
    """Two loopback servers (the provider and another origin) and the keys in play."""

    read: Canary
    trade: Canary
    api: LoopbackServer
    landing: LoopbackServer
    provider: coinguard.Provider
    read_secret: Canary
    trade_secret: Canary

    @property
    def signed(self) -> bool:
        return isinstance(self.provider.auth, SignedKey)

    def canaries(self) -> list[Canary | Needle]:
        """The keys, the signing secrets, and every signature the provider received."""
        found = [self.read, self.trade]
        if self.signed:
            found += [self.read_secret, self.trade_secret]
            found += [_signature_canary(v) for s in self.api.seen for k, v in s.query
                      if k == "signature"]  # fmt: skip
        return found


@dataclass(frozen=True)
class Needle:
    """A signature the provider received: new on each request, and never to be shown (searched
    in any case, as the canaries are)."""

    value: str

    def found_in(self, text: str) -> list[str]:
        return [self.value] if self.value.casefold() in text.casefold() else []


def _signature_canary(value: str) -> Needle:
    return Needle(value)


@pytest.fixture
def stage_for(
    make_canary: Callable[[str], Canary],
    http_server: Callable[[Route], LoopbackServer],
    closed_port: int,
) -> Callable[[Scenario, object], Stage]:
    """Return ``stage_for(scenario, style)``: servers up and a provider aimed at the right one."""

    def build(scenario: Scenario, style: object) -> Stage:
        landing = http_server(_landing_route)
        api = http_server(_leaky_route(landing.origin))
        port = closed_port if scenario.refused else api.port
        provider = coinguard.Provider(
            name="leaky",
            base_url=f"http://127.0.0.1:{port}/v2",
            auth=style,  # type: ignore[arg-type]
            envelope=True,
        )
        return Stage(
            make_canary("READ"),
            make_canary("TRADE"),
            api,
            landing,
            provider,
            make_canary("READSECRET"),
            make_canary("TRADESECRET"),
        )

    return build


def _client_kwargs(stage: Stage, scenario: Scenario) -> dict[str, Any]:
    secrets = (
        {"read_secret": stage.read_secret.value, "trade_secret": stage.trade_secret.value}
        if stage.signed
        else {}
    )
    return {
        **secrets,
        "provider": stage.provider,
        "read_key": stage.read.value,
        "trade_key": stage.trade.value,
        "allow_trading": True,
        "retry": FAST,
        "follow_redirects": scenario.follow_redirects,
        "timeout": scenario.timeout,
    }


def _request_kwargs(scenario: Scenario) -> dict[str, Any]:
    return {"json": {"symbol": "BTC", "qty": 1}} if scenario.method == "POST" else {}


def _check(
    scenario: Scenario,
    stage: Stage,
    style: object,
    client: coinguard.Client | coinguard.AsyncClient,
    exc: Exception | None,
    logs: CapturedLogs,
    caught: list[warnings.WarningMessage],
) -> None:
    if scenario.raises is None:
        assert exc is None, f"unexpected {type(exc).__name__}"
    else:
        assert type(exc) is scenario.raises
    texts = [
        ("logs", logs.text),
        *_client_texts(client),
        *_exception_texts(exc),
        *((f"warning {w.category.__name__}", str(w.message)) for w in caught),
    ]
    assert _leaks(stage.canaries(), texts) == []
    assert _foreign_links(exc) == []
    assert any(r.name.startswith("httpcore") for r in logs.records), "DEBUG capture is not live"
    _check_wire(scenario, stage, style)


def _check_wire(scenario: Scenario, stage: Stage, style: object) -> None:
    """The right key went to the provider in the right place; nothing went anywhere else."""
    right, wrong = (stage.trade, stage.read) if scenario.trade else (stage.read, stage.trade)
    if not scenario.refused:
        assert stage.api.seen, "the provider never got the request"
    for seen in stage.api.seen:
        assert seen.presented(style) == [right.value]
        assert wrong.found_in(seen.raw) == []
        # a signing secret is never sent, only used
        assert _leaks([stage.read_secret, stage.trade_secret], [("wire", seen.raw)]) == []
        if stage.signed:
            assert [k for k, _ in seen.query][-3:] == ["timestamp", "recvWindow", "signature"]
    assert len(stage.landing.seen) == (1 if scenario.follow_redirects else 0)
    for seen in stage.landing.seen:
        assert _leaks(stage.canaries(), [("other origin", seen.raw)]) == []


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
@pytest.mark.parametrize("name", SCENARIOS)
def test_canary_never_leaks(
    name: str,
    style: object,
    stage_for: Callable[[Scenario, object], Stage],
    log_capture: CapturedLogs,
) -> None:
    """Each scenario leaves no key in logs, reprs, errors or warnings, and sends the right key."""
    scenario = SCENARIOS[name]
    stage = stage_for(scenario, style)
    exc: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = coinguard.Client(**_client_kwargs(stage, scenario), sleep=_no_sleep)
        with client:
            try:
                client.request(scenario.method, scenario.path, **_request_kwargs(scenario))
            except Exception as err:  # the error itself is under test
                exc = err
    _check(scenario, stage, style, client, exc, log_capture, caught)


@pytest.mark.anyio
@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
@pytest.mark.parametrize("name", ASYNC_SCENARIOS)
async def test_canary_never_leaks_async(
    name: str,
    style: object,
    stage_for: Callable[[Scenario, object], Stage],
    log_capture: CapturedLogs,
) -> None:
    """AsyncClient leaves no key anywhere either, and sends the right key to the right place."""
    scenario = SCENARIOS[name]
    stage = stage_for(scenario, style)
    exc: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = coinguard.AsyncClient(**_client_kwargs(stage, scenario), sleep=_no_sleep_async)
        async with client:
            try:
                await client.request(scenario.method, scenario.path, **_request_kwargs(scenario))
            except Exception as err:  # the error itself is under test
                exc = err
    _check(scenario, stage, style, client, exc, log_capture, caught)


# -- the httpx request log and the redaction filter ------------------------------------------


def _mock_client(
    canary: Canary, handler: Callable[[httpx.Request], httpx.Response]
) -> coinguard.Client:
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=QueryKey("api_key"))
    transport = httpx.MockTransport(handler)
    return coinguard.Client(
        provider=provider, read_key=canary.value, http_client=httpx.Client(transport=transport)
    )


def _request_lines(logs: CapturedLogs) -> list[str]:
    return [line for line in logs.lines if line.startswith("httpx INFO HTTP Request:")]


def test_query_key_is_redacted_from_httpx_log_mock_transport(
    make_canary: Callable[[str], Canary], log_capture: CapturedLogs
) -> None:
    """httpx's INFO request line shows the key's fingerprint, never the key (MockTransport)."""
    canary = make_canary("READ")
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    with _mock_client(canary, handler) as client:
        client.get("/price", params={"symbol": "BTC"})
    assert sent[0].url.params["api_key"] == canary.value
    fp = coinguard.fingerprint(canary.value)
    assert [line for line in _request_lines(log_capture) if f"api_key=<key {fp}>" in line]
    assert _leaks([canary], [("logs", log_capture.text)]) == []


def test_query_key_is_redacted_from_httpx_log_respx(
    make_canary: Callable[[str], Canary], log_capture: CapturedLogs
) -> None:
    """With respx mocking the transport, the request line is still logged and still redacted."""
    canary = make_canary("READ")
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=QueryKey("api_key"))
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{MOCK_BASE}/price").respond(json={"ok": True})
        with coinguard.Client(provider=provider, read_key=canary.value) as client:
            client.get("/price")
    assert route.calls.last.request.url.params["api_key"] == canary.value
    assert _request_lines(log_capture)
    assert _leaks([canary], [("logs", log_capture.text)]) == []


def test_query_key_is_redacted_from_httpx_log_real_socket(
    make_canary: Callable[[str], Canary],
    http_server: Callable[[Route], LoopbackServer],
    log_capture: CapturedLogs,
) -> None:
    """Over a real socket the server gets the key in the URL, and no log line shows it."""
    canary = make_canary("READ")
    server = http_server(lambda seen: {"body": {"ok": True}})
    provider = coinguard.Provider(
        name="leaky", base_url=server.url("/v2"), auth=QueryKey("api_key")
    )
    with coinguard.Client(provider=provider, read_key=canary.value) as client:
        client.get("/price")
    assert server.seen[0].presented(QueryKey("api_key")) == [canary.value]
    assert _request_lines(log_capture)
    assert _leaks([canary], [("logs", log_capture.text)]) == []


def test_key_stays_redacted_while_an_equal_key_is_collected(
    make_canary: Callable[[str], Canary], log_capture: CapturedLogs
) -> None:
    """Two clients share a key; collecting one mid-request must not unredact the other's."""
    canary = make_canary("READ")
    first = _mock_client(canary, lambda request: httpx.Response(200, json={}))
    holder = {"first": first}
    del first

    def handler(request: httpx.Request) -> httpx.Response:
        holder.clear()  # the other client goes away while this request is in flight
        gc.collect()
        return httpx.Response(200, json={"ok": True})

    with _mock_client(canary, handler) as second:
        second.get("/price")
    assert _request_lines(log_capture)
    assert _leaks([canary], [("logs", log_capture.text)]) == []


def _request_of(exc: BaseException) -> httpx.Request | None:
    """The request an httpx error carries (its ``.request`` raises when there is none)."""
    if not isinstance(exc, httpx.RequestError):
        return None
    try:
        return exc.request
    except RuntimeError:
        return None


@pytest.mark.parametrize(
    ("status", "shape"),
    [(200, "text"), (200, "list"), (401, "text"), (401, "list")],
    ids=["envelope-text", "envelope-list", "401-text", "401-list"],
)
def test_long_echoed_message_is_not_cut_through_the_key(
    status: int, shape: str, make_canary: Callable[[str], Canary]
) -> None:
    """Provider messages are cut at 300 characters; a cut through an echoed key shows none of it."""
    canary = make_canary("READ")
    # The cut at 300 falls three characters before the end of the key, after its random core.
    text = "." * (300 - len(canary.value) + 3) + canary.value
    message: str | list[str] = text if shape == "text" else [text]
    body = {"success": False, "message": message}
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, envelope=True)
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(status, json=body)))
    with (
        coinguard.Client(provider=provider, read_key=canary.value, http_client=http) as client,
        pytest.raises(coinguard.APIStatusError) as info,
    ):
        client.get("/price")
    assert _leaks([canary], _exception_texts(info.value)) == []


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
def test_connection_error_chains_no_httpx_error(
    style: object, make_canary: Callable[[str], Canary], closed_port: int
) -> None:
    """A failed connection is reported without the httpx error (it holds the keyed request)."""
    canary = make_canary("READ")
    signing, secrets = _secret_for(style, make_canary)
    provider = coinguard.Provider(
        name="leaky",
        base_url=f"http://127.0.0.1:{closed_port}/v2",
        auth=style,  # type: ignore[arg-type]
    )
    with (
        coinguard.Client(
            provider=provider, read_key=canary.value, max_retries=0, **signing
        ) as client,
        pytest.raises(coinguard.APIConnectionError) as info,
    ):
        client.get("/ok")
    assert "ConnectError" in str(info.value)
    assert _foreign_links(info.value) == []
    assert _leaks([canary, *secrets], _exception_texts(info.value)) == []


# -- reprs, formatting, pickling -------------------------------------------------------------


def test_secret_never_formats_its_value(make_canary: Callable[[str], Canary]) -> None:
    """repr, str, format specs, f-strings, %-formatting and containers all hide a Secret."""
    canary = make_canary("READ")
    s = coinguard.Secret(canary.value, source="env var X")
    shown = [
        repr(s),
        str(s),
        format(s),
        format(s, ">80"),
        format(s, "s"),
        f"{s}",
        f"{s!s}",
        f"{s!r}",
        f"{s:<90}",
        "%s %r" % (s, s),  # noqa: UP031 - %-formatting is what logging does
        "{} {!r}".format(s, s),  # noqa: UP032
        repr([s]),
        str({"key": s}),
    ]
    assert _leaks([canary], [(text, text) for text in shown]) == []
    assert s.reveal() == canary.value


@pytest.mark.parametrize(
    "key", ["deadbeefcafebabe0123456789", "sk_live_51Habc0000000000", "0000000000000000"]
)
def test_fingerprint_reveals_no_prefix(key: str) -> None:
    """A fingerprint is a hash: no part of the key's start is in it, and a shared prefix is not."""
    fp = coinguard.fingerprint(key)
    assert key[:6] not in fp
    assert not fp.removeprefix("fp:").startswith(key[:3])
    assert coinguard.fingerprint(key + "x") != fp
    assert coinguard.fingerprint(key[:-1] + "Z")[3:9] != fp[3:9]


def test_settings_hide_the_key(make_canary: Callable[[str], Canary]) -> None:
    """Settings show keys masked in repr, str and JSON dumps."""
    read, trade = make_canary("READ"), make_canary("TRADE")
    settings = coinguard.Settings(read_key=read.value, trade_key=trade.value)
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())]
    assert _leaks([read, trade], [(text, text) for text in shown]) == []


def _pickle_targets(canary: Canary) -> dict[str, Callable[[], object]]:
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE)
    signed = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=STYLES["signed"])
    return {
        "Client": lambda: coinguard.Client(provider=provider, read_key=canary.value),
        "AsyncClient": lambda: coinguard.AsyncClient(provider=provider, read_key=canary.value),
        "Settings": lambda: coinguard.Settings(read_key=canary.value),
        "Settings.model_dump()": lambda: coinguard.Settings(read_key=canary.value).model_dump(),
        "Secret": lambda: coinguard.Secret(canary.value),
        "key slot": lambda: coinguard.Client(provider=provider, read_key=canary.value)._core.read,
        "signed client": lambda: coinguard.Client(
            provider=signed, read_key=canary.value, read_secret=canary.value + "-secret"
        ),
        "secret slot": lambda: coinguard.Client(
            provider=signed, read_key=canary.value, read_secret=canary.value + "-secret"
        )._core.secrets["read"],
        "Settings with a secret": lambda: coinguard.Settings(read_secret=canary.value),
        "signed auth": lambda: coinguard.Client(
            provider=signed, read_key=canary.value, read_secret=canary.value + "-secret"
        )._core.auth(
            coinguard.Secret(canary.value), coinguard.Secret(canary.value + "-s"), lambda: 1
        ),
    }


@pytest.mark.parametrize(
    "target",
    [
        "Client",
        "AsyncClient",
        "Settings",
        "Settings.model_dump()",
        "Secret",
        "key slot",
        "signed client",
        "secret slot",
        "Settings with a secret",
        "signed auth",
    ],
)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_refused(
    target: str, protocol: int, make_canary: Callable[[str], Canary]
) -> None:
    """Objects holding a key refuse pickling (TypeError) under every protocol, without the key."""
    canary = make_canary("READ")
    obj = _pickle_targets(canary)[target]()
    with pytest.raises(TypeError) as info:
        pickle.dumps(obj, protocol=protocol)
    assert _leaks([canary], _exception_texts(info.value)) == []


# -- the trade key stays out of read-only clients --------------------------------------------


def _ok_transport() -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))


def test_read_only_client_never_reads_the_trade_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_canary: Callable[[str], Canary]
) -> None:
    """A trade key file that fails loudly on read is never touched by a read-only client."""
    monkeypatch.setenv("COINGUARD_TRADE_KEY_FILE", str(tmp_path))  # a directory: read_text fails
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE)
    read = make_canary("READ").value
    with coinguard.Client(provider=provider, read_key=read, http_client=_ok_transport()) as client:
        assert client.get("/price") == {}
    with pytest.raises(coinguard.ConfigurationError) as info:
        coinguard.Client(provider=provider, read_key=read, allow_trading=True)
    assert str(tmp_path) in str(info.value)
    assert "COINGUARD_TRADE_KEY_FILE" in str(info.value)


def test_read_only_client_leaves_trade_key_variable_alone(
    monkeypatch: pytest.MonkeyPatch,
    make_canary: Callable[[str], Canary],
    log_capture: CapturedLogs,
) -> None:
    """COINGUARD_TRADE_KEY set: a read-only client shows no trade scope and logs no trade key."""
    read, trade = make_canary("READ"), make_canary("TRADE")
    monkeypatch.setenv("COINGUARD_TRADE_KEY", trade.value)
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE)
    with coinguard.Client(provider=provider, read_key=read.value, http_client=_ok_transport()) as c:
        c.get("/price")
        with pytest.raises(coinguard.ScopeError) as info:
            c.post("/orders", json={})
    assert c._core.trade is None
    assert "trade=disabled" in repr(c)
    texts = [("logs", log_capture.text), *_client_texts(c), *_exception_texts(info.value)]
    assert _leaks([trade, read], texts) == []


@pytest.mark.parametrize(
    "wrap",
    [str, SecretStr, coinguard.Secret],
    ids=["str", "SecretStr", "Secret"],
)
def test_same_key_for_read_and_trade_is_refused(
    wrap: Callable[[str], Any], make_canary: Callable[[str], Canary]
) -> None:
    """One key for both scopes fails at construction, and the error does not contain it."""
    canary = make_canary("BOTH")
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE)
    with pytest.raises(coinguard.ConfigurationError) as info:
        coinguard.Client(
            provider=provider,
            read_key=wrap(canary.value),
            trade_key=canary.value,
            allow_trading=True,
        )
    assert "same" in str(info.value)
    assert _leaks([canary], _exception_texts(info.value)) == []


# -- interruptions: nothing to translate, and still no keyed request in any frame -------------


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
def test_an_interrupted_send_leaves_no_keyed_request_in_its_frames(
    style: object, make_canary: Callable[[str], Canary]
) -> None:
    """Ctrl+C in the middle of a send: the frames of the KeyboardInterrupt hold no keyed request
    (the copy the key was put on is stripped as the auth flow closes)."""
    canary = make_canary("READ")

    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    signing, secrets = _secret_for(style, make_canary)
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=style)  # type: ignore[arg-type]
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        coinguard.Client(
            provider=provider, read_key=canary.value, http_client=http, **signing
        ) as client,
        pytest.raises(KeyboardInterrupt) as info,
    ):
        client.get("/price")
    assert _leaks([canary, *secrets], _exception_texts(info.value)) == []


@pytest.mark.anyio
@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
async def test_a_cancelled_send_leaves_no_keyed_request_in_its_frames(
    style: object, make_canary: Callable[[str], Canary]
) -> None:
    """A task cancelled while its request is in flight (``wait_for`` timing out): the
    CancelledError's frames hold no keyed request either."""
    canary = make_canary("READ")
    started = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep(30)
        return httpx.Response(200, json={})

    signing, secrets = _secret_for(style, make_canary)
    provider = coinguard.Provider(name="leaky", base_url=MOCK_BASE, auth=style)  # type: ignore[arg-type]
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with coinguard.AsyncClient(
        provider=provider, read_key=canary.value, http_client=http, **signing
    ) as client:
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(client.get("/price"), timeout=0.2)
    assert started.is_set()
    assert any(isinstance(e, asyncio.CancelledError) for e in _chain(info.value))
    assert _leaks([canary, *secrets], _exception_texts(info.value)) == []


def test_the_data_surfaces_never_show_the_key(
    http_server: Callable[[Any], Any],
    make_canary: Callable[[str], Canary],
    log_capture: Any,
) -> None:
    """Typed calls, raw responses, a failed page (raised and skipped), rows, reprs for
    notebooks and batch errors: the key a server echoes on page 2 appears in none of them."""
    from coinguard.providers import tokenmetrics

    canary = make_canary("READ")
    row = {"symbol": "BTC", "date": "2026-11-01", "open": 1, "high": 2, "low": 1, "close": 1}

    def route(seen: Any) -> Any:
        page = dict(seen.query).get("page", "1")
        if seen.path.endswith("/price"):
            return {"body": {"success": True, "data": []}, "headers": {"x-echo": canary.value}}
        if page == "1":
            return {"body": {"success": True, "data": [row]}}
        return {"status": 500, "body": {"success": False, "message": f"bad key {canary.value}"}}

    server = http_server(route)
    provider = coinguard.Provider(
        name="p",
        base_url=server.url("/v2"),
        endpoints=tokenmetrics.endpoints(),
        envelope=True,
    )
    texts: list[tuple[str, str]] = []
    with coinguard.Client(
        provider=provider, read_key=canary.value, retry=coinguard.RetryPolicy(max_retries=0)
    ) as client:
        response = client.request("GET", "/price", raw=True)
        texts.append(("raw response", repr(response) + repr(list(response.headers.items()))))
        assert "x-echo" in response.headers
        with pytest.raises(coinguard.PaginationError) as info:
            client.paginate("daily_ohlcv", limit=1, progress=False)
        texts += list(_exception_texts(info.value))
        texts.append(("page error", repr(vars(info.value.error))))
        texts.append(("resume", repr(info.value.resume) + repr(vars(info.value.resume))))
        skipped = client.paginate("daily_ohlcv", limit=1, progress=False, on_error="skip")
        texts.append(("skipped", repr(skipped.skipped) + repr(skipped) + skipped._repr_html_()))
        done = client.batch([1], lambda _: client.paginate("daily_ohlcv", limit=1, progress=False))
        texts.append(("batch", repr(done) + repr(done.errors)))
        texts.append(("client html", client._repr_html_()))
        texts += list(_client_texts(client))
    texts.append(("logs", log_capture.text))
    assert not skipped.complete
    assert _leaks([canary], texts) == []


# -- the observability channels: audit lines, spans and metrics -------------------------------


@dataclass
class Telemetry:
    """Every observability channel of one test: an audit file, coinguard's spans and the httpx
    instrumentation's (through a tracer provider with the redacting processor first), the
    instrumentation's metrics and a Prometheus registry."""

    audit: Path
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    registry: prometheus_client.CollectorRegistry

    def observers(self) -> list[Any]:
        return [
            coinguard.AuditLog(self.audit),
            coinguard.Tracing(self.tracer_provider),
            coinguard.Metrics(self.registry),
        ]

    def texts(self) -> Iterator[tuple[str, str]]:
        yield "audit log", self.audit.read_text() if self.audit.exists() else ""
        for span in self.spans.get_finished_spans():
            yield f"span {span.name}", span.to_json()
        yield "otel metrics", repr(self.reader.get_metrics_data())
        yield "prometheus", prometheus_client.generate_latest(self.registry).decode()


@pytest.fixture
def telemetry(tmp_path: Path) -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(coinguard.RedactingSpanProcessor())
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(
        tmp_path / "audit.jsonl",
        spans,
        tracer_provider,
        meter_provider,
        reader,
        prometheus_client.CollectorRegistry(),
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _instrumented(
    http: httpx.Client | httpx.AsyncClient, telemetry: Telemetry, **hooks: Any
) -> None:
    HTTPXClientInstrumentor.instrument_client(
        http,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        **hooks,
    )


def _instrumentable(scenario: Scenario) -> bool:
    """A caller's httpx client over plain http may only connect to the base URL's port (the
    proxy guard), so the redirect to another origin runs on coinguard's own client, which
    is not instrumented; its audit lines, spans and metrics are still scanned."""
    return not scenario.follow_redirects


def _check_telemetry(stage: Stage, telemetry: Telemetry, *, instrumented: bool) -> None:
    texts = list(telemetry.texts())
    assert _leaks([stage.read, stage.trade], texts) == []
    spans = telemetry.spans.get_finished_spans()
    assert any(s.instrumentation_scope.name == "coinguard" for s in spans), "no coinguard span"
    if instrumented and stage.api.seen:
        assert any("httpx" in s.instrumentation_scope.name for s in spans)
    assert telemetry.audit.read_text().strip(), "no audit line"


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
@pytest.mark.parametrize("name", SCENARIOS)
def test_canary_never_leaks_into_audit_spans_or_metrics(
    name: str,
    style: object,
    stage_for: Callable[[Scenario, object], Stage],
    log_capture: CapturedLogs,
    telemetry: Telemetry,
) -> None:
    """Each scenario, with an audit log, coinguard's spans and metrics and the httpx
    instrumentation on: no channel holds a key (the instrumentation's url.full included)."""
    scenario = SCENARIOS[name]
    stage = stage_for(scenario, style)
    http = httpx.Client()
    if _instrumentable(scenario):
        _instrumented(http, telemetry)
    exc: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = coinguard.Client(
            **_client_kwargs(stage, scenario),
            sleep=_no_sleep,
            http_client=http if _instrumentable(scenario) else None,
            observers=telemetry.observers(),
        )
        with client, http:
            try:
                client.request(scenario.method, scenario.path, **_request_kwargs(scenario))
            except Exception as err:  # the error itself is under test
                exc = err
    _check(scenario, stage, style, client, exc, log_capture, caught)
    _check_telemetry(stage, telemetry, instrumented=_instrumentable(scenario))


@pytest.mark.anyio
@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
@pytest.mark.parametrize("name", ASYNC_SCENARIOS)
async def test_canary_never_leaks_into_audit_spans_or_metrics_async(
    name: str,
    style: object,
    stage_for: Callable[[Scenario, object], Stage],
    log_capture: CapturedLogs,
    telemetry: Telemetry,
) -> None:
    """The same with AsyncClient and an instrumented httpx.AsyncClient."""
    scenario = SCENARIOS[name]
    stage = stage_for(scenario, style)
    http = httpx.AsyncClient()
    if _instrumentable(scenario):
        _instrumented(http, telemetry)
    exc: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = coinguard.AsyncClient(
            **_client_kwargs(stage, scenario),
            sleep=_no_sleep_async,
            http_client=http if _instrumentable(scenario) else None,
            observers=telemetry.observers(),
        )
        async with client, http:
            try:
                await client.request(scenario.method, scenario.path, **_request_kwargs(scenario))
            except Exception as err:  # the error itself is under test
                exc = err
    _check(scenario, stage, style, client, exc, log_capture, caught)
    _check_telemetry(stage, telemetry, instrumented=_instrumentable(scenario))


def _instrumentation_url(
    stage: Stage, telemetry: Telemetry, processor: bool, **hooks: Any
) -> list[str]:
    """The URLs the httpx instrumentation's spans hold after one read with a query key."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    if processor:
        provider.add_span_processor(coinguard.RedactingSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(spans))
    http = httpx.Client()
    HTTPXClientInstrumentor.instrument_client(
        http, tracer_provider=provider, meter_provider=telemetry.meter_provider, **hooks
    )
    with coinguard.Client(provider=stage.provider, read_key=stage.read.value, http_client=http):
        pass
    with coinguard.Client(
        provider=stage.provider, read_key=stage.read.value, http_client=http
    ) as client:
        client.get("/ok", params={"signature": "0123456789abcdef0123456789abcdef"})
    http.close()
    provider.shutdown()
    return [
        str(value)
        for span in spans.get_finished_spans()
        for name, value in (span.attributes or {}).items()
        if name in ("url.full", "http.url")
    ]


@pytest.mark.parametrize(
    ("processor", "hook"),
    [(False, False), (True, False), (False, True)],
    ids=["unprotected", "processor", "request-hook"],
)
def test_the_httpx_instrumentation_leak_and_its_two_fixes(
    processor: bool,
    hook: bool,
    stage_for: Callable[[Scenario, object], Stage],
    telemetry: Telemetry,
) -> None:
    """Unprotected, the instrumentation puts the query key and a lowercase ``signature`` in
    url.full; the redacting processor or the request hook each leave ``REDACTED`` instead."""
    stage = stage_for(SCENARIOS["success"], STYLES["query"])
    hooks = {"request_hook": coinguard.httpx_request_hook} if hook else {}
    urls = _instrumentation_url(stage, telemetry, processor, **hooks)
    assert urls
    if not processor and not hook:
        assert all(stage.read.found_in(url) for url in urls)  # the leak this guards against
        assert all("0123456789abcdef0123456789abcdef" in url for url in urls)
    else:
        assert _leaks([stage.read], [("url", url) for url in urls]) == []
        assert all("api_key=REDACTED" in url and "signature=REDACTED" in url for url in urls)
