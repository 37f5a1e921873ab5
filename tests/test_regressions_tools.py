"""Regressions found by attacking the agent tools (#16), the audit log and report (#17) and
the quota's memory store: each test states the promise or documented behaviour it broke."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import coinguard
from coinguard import TradePolicy
from coinguard.sandbox import Sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def trader(box: Sandbox) -> Iterator[coinguard.Client]:
    with coinguard.Client(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as c:
        yield c


def _orders_sent(box: Sandbox) -> int:
    return box.ledger.count(path="/v2/orders", method="POST")


def _policy(**caps: Any) -> TradePolicy:
    settings: dict[str, Any] = {"symbols": {"BTC"}, "max_order_usd": 1_000.0}
    settings["max_day_usd"] = 2_000.0
    settings.update(caps)
    return TradePolicy(approve=lambda order: True, **settings)


def test_a_sell_limit_below_the_market_is_valued_at_the_market(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """A prompt-injected 'sell 10 BTC at 0.01 USD' is worth 10 BTC at the market price (it
    fills at once on a real exchange), far over a 1,000 USD per-order cap: refused, unsent."""
    spot = trader.prices(["BTC"])[0].price
    assert spot * 10 > 1_000  # ten BTC are worth far more than the cap
    tools = coinguard.agent_tools(trader, agent="victim", trading=_policy())
    result = tools["place_order"](symbol="BTC", side="sell", type="limit", quantity=10, price=0.01)
    assert result["ok"] is False, result
    assert _orders_sent(box) == 0


def test_a_market_order_at_a_zero_quote_is_refused(
    box: Sandbox, trader: coinguard.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that quotes 0 (a stale or delisted feed) must not make a market order of
    1,000 BTC worth 0 USD: the caps cannot be checked, so the order is refused and unsent."""
    from coinguard.sandbox import _data

    monkeypatch.setattr(_data.Market, "price", lambda self, token, now: 0.0)
    assert trader.prices(["BTC"])[0].price == 0.0
    tools = coinguard.agent_tools(trader, agent="victim", trading=_policy())
    result = tools["place_order"](symbol="BTC", side="buy", type="market", quantity=1_000)
    assert result["ok"] is False, result
    assert _orders_sent(box) == 0


_COST_TEXT = b'{"time":"2026-11-27T12:00:01+00:00","provider":"sandbox","cost":"5"}'
_NOT_UTF8 = b'{"time":"2026-11-27T12:00:01+00:00","provider":"sandbox","route":"/p\xff"}'
_GOOD = '{"time":"2026-11-27T12:00:00+00:00","provider":"sandbox","method":"GET","route":"/p","cost":1,"outcome":"ok"}'  # noqa: E501


@pytest.mark.parametrize(
    ("action", "bad"),
    [
        ("check", _COST_TEXT),
        ("report", _COST_TEXT),
        ("report", b'{"time":"2026-11-27T12:00:01+00:00","provider":7}'),  # provider not text
        ("check", _NOT_UTF8),
        ("report", _NOT_UTF8),
        ("html", b'{"time":"0001-01-01T00:00:00+00:00","provider":"sandbox"}'),  # year 1
    ],
    ids=[
        "check-cost-text",
        "report-cost-text",
        "report-provider-int",
        "check-not-utf8",
        "report-not-utf8",
        "html-year-one",
    ],
)
def test_a_malformed_audit_line_is_skipped_not_a_traceback(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], action: str, bad: bytes
) -> None:
    """read_audit promises a line that is not a record of its schema is skipped and counted;
    an attacker (or a crash) that writes one line must not stop check or report."""
    from coinguard._cli import main

    path = tmp_path / "calls.jsonl"
    path.write_bytes(_GOOD.encode() + b"\n" + bad + b"\n")
    args = ["audit", action, str(path)]
    if action == "html":
        args = ["audit", "report", str(path), "--html", str(tmp_path / "usage.html")]
    code = main(args)  # raises today
    assert code in (0, 1)
    assert "attempts" in capsys.readouterr().out


def test_a_key_reopened_without_the_journal_keeps_the_days_calls(tmp_path: Any) -> None:
    """Six of ten daily calls are spent through a journaled Quota, which closes. The same key
    bound again on the same memory store, without that journal (persistence off, or the file
    cannot be opened: a logged warning, not an error), must still see the six: before the
    journal existed the store kept them, and the provider still counts them."""
    now = [1_795_780_800.0]
    store = coinguard.MemoryStore()
    policy = coinguard.QuotaPolicy([coinguard.Window.per_day(10)])

    def quota(persist: Any) -> coinguard.Quota:
        return coinguard.Quota(
            policy, store=store, key_id="k", on_quota="raise", clock=lambda: now[0],
            persist=persist,
        )  # fmt: skip

    first = quota(tmp_path / "quota.sqlite3")
    first.take(6)
    first.close()
    again = quota(None)
    try:
        assert again.status().windows[0].used == 6
        with pytest.raises(coinguard.QuotaExceededError):
            again.take(5)  # 6 + 5 > 10
    finally:
        again.close()


@pytest.mark.parametrize(
    "provider", ["[/evil]", "[link=https://evil.example/]sandbox[/link]"], ids=["crash", "link"]
)
def test_the_terminal_report_shows_audit_fields_as_text(tmp_path: Any, provider: str) -> None:
    """'coinguard audit report' in a terminal prints a rich table of the log's fields. A log
    line is data, possibly written by someone else: it must show literally, never as markup."""
    import io
    import json

    from rich.console import Console

    from coinguard._audit import read_audit
    from coinguard._report import rich_report, usage_of

    line = {"time": "2026-11-27T12:00:00+00:00", "provider": provider, "method": "GET"}
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(line | {"route": "/p", "cost": 1, "outcome": "ok"}) + "\n")
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=300).print(rich_report(usage_of(read_audit(path))))
    assert provider in out.getvalue()  # shown as it is
    assert "\x1b]8;" not in out.getvalue()  # no terminal hyperlink


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the coroutine is never awaited today
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_async_clients_framework_approved_order_is_placed(box: Sandbox) -> None:
    """approve='framework' with an AsyncClient (#16: 'an AsyncClient's agent can trade too'):
    openai-agents invokes the tool after its needs_approval said yes; the order is placed."""
    import json

    from agents.tool_context import ToolContext

    from coinguard.agents import openai_agents_tools

    async with coinguard.AsyncClient(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as client:
        policy = TradePolicy(
            approve="framework", symbols={"BTC"}, max_order_usd=50_000, max_day_usd=60_000
        )
        tools = coinguard.agent_tools(client, agent="async-desk", trading=policy)
        place = next(t for t in openai_agents_tools(tools) if t.name == "place_order")
        args = json.dumps(
            {"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 0.1, "price": 1e5}
        )
        ctx = ToolContext(None, tool_name="place_order", tool_call_id="c1", tool_arguments=args)
        answer = json.loads(await place.on_invoke_tool(ctx, args))
    assert answer["ok"] is True, answer
    assert _orders_sent(box) == 1


def test_the_day_cap_holds_for_an_agent_whose_tools_are_built_again(
    box: Sandbox, trader: coinguard.Client
) -> None:
    """An application that builds the agent's tools per conversation (same client, same
    agent name, same policy) must still hold the agent to its cap per UTC day: 40k + 40k
    is over a 60k day, so the second order is refused and unsent."""
    policy = _policy(max_order_usd=50_000.0, max_day_usd=60_000.0)
    order = {"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 0.4, "price": 1e5}
    first = coinguard.agent_tools(trader, agent="desk", trading=policy)
    assert first["place_order"](**order)["ok"] is True
    again = coinguard.agent_tools(trader, agent="desk", trading=policy)
    second = again["place_order"](**order)
    assert second["ok"] is False, second
    assert _orders_sent(box) == 1
