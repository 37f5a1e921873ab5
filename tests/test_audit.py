"""The audit log: one JSON line per attempt, from both shells, to a file or a handler."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import coinguard
from coinguard._observe import LazyURL

if TYPE_CHECKING:
    from conftest import Canary

BASE = "https://api.audit.test/v2"
FIELDS = [
    "v",
    "time",
    "provider",
    "method",
    "route",
    "scope",
    "key_fp",
    "key_source",
    "call_id",
    "attempt",
    "status",
    "outcome",
    "error",
    "cost",
    "quota_wait",
    "latency",
    "request_id",
    "client_order_id",
    "symbol",
]


class FakeClock:
    """A clock whose sleep advances it; the transport can advance it too (latency)."""

    def __init__(self) -> None:
        self.now = 1_795_780_800.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COINGUARD_AUDIT_LOG", "COINGUARD_READ_KEY", "COINGUARD_TRADE_KEY"):
        monkeypatch.delenv(name, raising=False)


def _provider(**changes: Any) -> coinguard.Provider:
    values: dict[str, Any] = {
        "name": "audited",
        "base_url": BASE,
        "auth": coinguard.QueryKey("api_key"),
        "trade_routes": ["GET /orders*"],
        "request_id_headers": ("x-request-id",),
        "quota": coinguard.QuotaPolicy(
            [coinguard.Window.per_minute(2)], costs={"GET /history*": 2}
        ),
    }
    values.update(changes)
    return coinguard.Provider(**values)


def _handler(clock: FakeClock, statuses: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        clock.now += 0.25  # the server takes a quarter of a second
        status = next(answers, 200)
        headers = {"x-request-id": "req-42", "retry-after": "0"}
        return httpx.Response(status, json={"ok": status == 200}, headers=headers)

    return handle


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_attempt_is_one_line_with_the_documented_fields(
    tmp_path: Path, make_canary: Callable[[str], Canary]
) -> None:
    """A call retried once after a 503 writes two lines sharing a call id; no key anywhere."""
    read = make_canary("READ")
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(_handler(clock, [503, 200])))
    path = tmp_path / "calls.jsonl"
    with coinguard.Client(
        provider=_provider(),
        read_key=read.value,
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        audit=path,
    ) as client:
        client.get("/price/12345", params={"symbol": "BTC"})
    first, second = _lines(path)
    assert list(first) == FIELDS
    assert first["v"] == coinguard.SCHEMA_VERSION == 1
    assert first["route"] == "/price/{id}"
    assert (first["status"], first["outcome"], first["error"]) == (
        503,
        "server_error",
        "ServerError",
    )
    assert (second["status"], second["outcome"], second["attempt"]) == (200, "ok", 2)
    assert first["call_id"] == second["call_id"]
    assert first["key_fp"] == coinguard.fingerprint(read.value)
    assert first["key_source"] == "the read_key argument"
    assert first["latency"] == 0.25
    assert first["request_id"] == "req-42"
    assert first["cost"] == 1
    assert first["time"].startswith("2026-11-27T")
    assert read.found_in(path.read_text()) == []


def test_the_quota_wait_and_cost_are_recorded(tmp_path: Path) -> None:
    """A call that waited for its window records the wait; a costly route its cost."""
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(_handler(clock, [])))
    path = tmp_path / "calls.jsonl"
    with coinguard.Client(
        provider=_provider(),
        read_key="audit-read-key-0123456789",
        http_client=http,
        clock=clock,
        sleep=clock.sleep,
        audit=coinguard.AuditLog(path),
    ) as client:
        client.get("/price")
        client.get("/price")
        client.get("/price")  # the window holds 2: this one waits
    waits = [line["quota_wait"] for line in _lines(path)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 59.0


@pytest.mark.anyio
async def test_the_async_client_journals_alike(
    tmp_path: Path, make_canary: Callable[[str], Canary]
) -> None:
    """AsyncClient writes the same records: trades carry their client order id and symbol."""
    read, trade = make_canary("READ"), make_canary("TRADE")
    clock = FakeClock()

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    path = tmp_path / "calls.jsonl"
    async with coinguard.AsyncClient(
        provider=_provider(),
        read_key=read.value,
        trade_key=trade.value,
        allow_trading=True,
        http_client=http,
        clock=clock,
        sleep=clock.asleep,
        audit=path,
    ) as client:
        await client.get("/price")
        await client.post("/orders", json={"symbol": "BTCUSDT", "newClientOrderId": "my-order-1"})
    read_line, trade_line = _lines(path)
    assert read_line["scope"] == "read"
    assert read_line["client_order_id"] is None
    assert trade_line["scope"] == "trade"
    assert trade_line["key_fp"] == coinguard.fingerprint(trade.value)
    assert (trade_line["client_order_id"], trade_line["symbol"]) == ("my-order-1", "BTCUSDT")
    text = path.read_text()
    assert read.found_in(text) == []
    assert trade.found_in(text) == []


def test_failures_before_an_answer_are_journaled(tmp_path: Path, closed_port: int) -> None:
    """A refused connection is an attempt too: no status, outcome ``connection``."""
    provider = _provider(base_url=f"http://127.0.0.1:{closed_port}/v2", quota=None)
    path = tmp_path / "calls.jsonl"
    with (
        coinguard.Client(
            provider=provider, read_key="audit-read-key-0123456789", max_retries=0, audit=path
        ) as client,
        pytest.raises(coinguard.APIConnectionError),
    ):
        client.get("/price")
    (line,) = _lines(path)
    assert (line["status"], line["outcome"], line["error"]) == (
        None,
        "connection",
        "APIConnectionError",
    )
    assert line["cost"] is None


def test_the_environment_turns_it_on_and_false_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COINGUARD_AUDIT_LOG journals every client; ``audit=False`` opts one out."""
    path = tmp_path / "env.jsonl"
    monkeypatch.setenv("COINGUARD_AUDIT_LOG", str(path))
    clock = FakeClock()
    for audit in (None, False):
        http = httpx.Client(transport=httpx.MockTransport(_handler(clock, [])))
        with coinguard.Client(
            provider=_provider(quota=None),
            read_key="audit-read-key-0123456789",
            http_client=http,
            audit=audit,
        ) as client:
            client.get("/price")
    assert len(_lines(path)) == 1


def test_a_logging_handler_gets_one_record_per_attempt() -> None:
    """``AuditLog(handler=...)``: the record's message is the JSON line."""

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    keep = Keep()
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(_handler(clock, [])))
    with coinguard.Client(
        provider=_provider(),
        read_key="audit-read-key-0123456789",
        http_client=http,
        audit=coinguard.AuditLog(handler=keep),
    ) as client:
        client.get("/history/99")
    (record,) = keep.records
    assert record.name == "coinguard.audit"
    assert json.loads(record.getMessage())["route"] == "/history*"


def test_a_failing_observer_does_not_change_the_result(
    log_capture: Any,
) -> None:
    """An observer that raises is logged; the call still returns its answer."""

    class Broken:
        blocking = False

        def attempt(self, record: coinguard.Attempt) -> None:
            raise RuntimeError("disk full")

    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(_handler(clock, [])))
    with coinguard.Client(
        provider=_provider(quota=None),
        read_key="audit-read-key-0123456789",
        http_client=http,
        observers=[Broken()],
    ) as client:
        assert client.get("/price") == {"ok": True}
    assert any("observer Broken failed" in line for line in log_capture.lines)


@pytest.mark.parametrize("audit", [True, 3, "  "], ids=["true", "int", "blank"])
def test_a_wrong_audit_argument_is_refused(audit: Any) -> None:
    """audit= takes a path, an AuditLog or False; anything else says so."""
    with pytest.raises(coinguard.ConfigurationError, match="audit"):
        coinguard.Client(provider=_provider(), read_key="audit-read-key-0123456789", audit=audit)


def test_rotation_keeps_every_line(tmp_path: Path) -> None:
    """Past max_bytes the file rotates to .1, .2; read_audit gives every record, in order."""
    path = tmp_path / "calls.jsonl"
    log = coinguard.AuditLog(path, max_bytes=2000, backups=20)
    for i in range(40):
        log.attempt(coinguard.Attempt.example(attempt=i + 1))
    log.close()
    assert Path(f"{path}.1").exists()
    assert all(
        p.stat().st_size <= 2000 for p in tmp_path.glob("calls.jsonl*") if "lock" not in p.name
    )
    assert [r.attempt for r in coinguard.read_audit(path)] == list(range(1, 41))


_WRITER = textwrap.dedent(
    """
    import sys
    import coinguard
    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    log = coinguard.AuditLog(path, max_bytes=20_000, backups=1000)
    for i in range(count):
        log.attempt(coinguard.Attempt.example(call_id=f"w{worker}", attempt=i + 1,
                                              request_id="x" * 300))
    """
)


def test_several_processes_append_without_tearing_or_losing_a_line(tmp_path: Path) -> None:
    """Four real processes append and rotate the same log: every line whole, none lost."""
    path = tmp_path / "shared.jsonl"
    workers, count = 4, 300
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(w), str(count)])
        for w in range(workers)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * workers
    files = [
        p for p in tmp_path.iterdir() if p.name.startswith("shared.jsonl") and "lock" not in p.name
    ]
    assert len(files) > 10  # it did rotate, under contention
    lines = [line for f in files for line in f.read_text().splitlines()]
    records = [json.loads(line) for line in lines]  # a torn line would not parse
    assert len(records) == workers * count
    for w in range(workers):
        mine = [r.attempt for r in coinguard.read_audit(path) if r.call_id == f"w{w}"]
        assert mine == list(range(1, count + 1))  # each writer's lines stay in its order


def test_a_pickled_attempt_holds_only_the_redacted_url(
    make_canary: Callable[[str], Canary],
) -> None:
    """An attempt whose URL was built from a key put in the query by the caller pickles with
    the redacted URL, and its repr shows no URL at all."""
    canary = make_canary("READ")
    raw = httpx.URL(f"https://api.audit.test/v2/price?api_key={canary.value}&symbol=BTC")
    record = coinguard.Attempt.example(url_parts=LazyURL(raw))
    assert canary.found_in(pickle.dumps(record).decode("latin-1")) == []
    assert canary.found_in(repr(record)) == []
    assert pickle.loads(pickle.dumps(record)).url == (  # noqa: S301 - our own bytes
        "https://api.audit.test/v2/price?api_key=REDACTED&symbol=BTC"
    )
