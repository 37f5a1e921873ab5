"""The sans-I/O application and the public surface of coinguard.sandbox."""

from __future__ import annotations

import json
import types

import pytest

import coinguard.sandbox
from coinguard.sandbox import ManualClock, SandboxConfig, Window
from coinguard.sandbox._app import App, Request


class _BrokenMarket:
    """A market whose every lookup fails, to stand for a sandbox bug."""

    @property
    def tokens(self) -> tuple[object, ...]:
        raise RuntimeError("boom")


def test_public_names_equal_all() -> None:
    """Everything public in coinguard.sandbox is in __all__, and nothing else."""
    public = {
        name
        for name, value in vars(coinguard.sandbox).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.discard("annotations")
    assert public == set(coinguard.sandbox.__all__)


def test_a_handler_bug_is_a_500_envelope(caplog: pytest.LogCaptureFixture) -> None:
    """An exception inside a handler becomes a 500 JSON envelope and an 'error' ledger entry."""
    app = App(SandboxConfig(clock=ManualClock()))
    app.market = _BrokenMarket()  # type: ignore[assignment]
    reply = app.handle(Request("GET", "/v2/price", {"x-api-key": app.keys.read}))
    assert reply.status == 500
    assert json.loads(reply.body) == {
        "success": False,
        "message": "Internal server error",
        "length": 0,
        "data": None,
    }
    assert app.ledger.entries()[0].outcome == "error"
    assert "boom" not in reply.body.decode()


def test_config_is_validated() -> None:
    """Bad enum values, duplicate window names and bad windows are refused."""
    with pytest.raises(ValueError, match="header_style"):
        SandboxConfig(header_style="fancy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        SandboxConfig(windows=(Window(1, 1.0), Window(2, 1.0)))
    with pytest.raises(ValueError, match="limit"):
        Window(0, 1.0)


def test_config_is_frozen_and_costs_are_read_only() -> None:
    """SandboxConfig cannot be mutated, not even through its costs mapping."""
    config = SandboxConfig(costs={"/price": 3})
    with pytest.raises(AttributeError):
        config.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.costs["/price"] = 1  # type: ignore[index]
    assert config.cost_of("/price") == 3
    assert config.cost_of("/tokens") == 1


def test_clock_stepping_back_keeps_ledger_order(clock: ManualClock) -> None:
    """If the wall clock steps back, arrival times stay monotonic for the limiter and ledger."""
    app = App(SandboxConfig(clock=clock))
    headers = {"x-api-key": app.keys.read}
    app.handle(Request("GET", "/v2/tokens", headers))
    clock.set(1_600_000_000.0)
    app.handle(Request("GET", "/v2/tokens", headers))
    first, second = app.ledger.entries()
    assert second.time >= first.time


def test_unparsable_target_is_a_404_not_a_crash(clock: ManualClock) -> None:
    """A request target urlsplit cannot parse still gets an answer and a ledger entry."""
    app = App(SandboxConfig(clock=clock))
    reply = app.handle(Request("GET", "http://[", {"x-api-key": app.keys.read}))
    assert reply.status == 404
    assert app.ledger.count(outcome="not-found") == 1
