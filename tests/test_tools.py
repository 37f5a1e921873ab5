"""Agent tools generated from the endpoint catalogue: schemas, results, errors and budgets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import coinguard
from coinguard import Budget, agent_tools
from coinguard.sandbox import Sandbox, SandboxConfig

SETUPS = (
    ("tokenmetrics", "sandbox"),
    ("coingecko", "coingecko"),
    ("coinmarketcap", "coinmarketcap"),
)
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def client(box: Sandbox) -> Iterator[coinguard.Client]:
    with coinguard.Client(provider="sandbox", base_url=box.base_url, read_key=box.keys.read) as c:
        yield c


def strict_violations(schema: dict[str, Any], where: str = "$") -> list[str]:
    """The places a schema breaks OpenAI strict mode's rules for objects."""
    found = []
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            found.append(f"{where}: additionalProperties is not false")
        if sorted(schema.get("required", [])) != sorted(props):
            found.append(f"{where}: not every property is required")
        for name, prop in props.items():
            found += strict_violations(prop, f"{where}.{name}")
    for key in ("anyOf", "items"):
        subs = schema.get(key)
        for i, sub in enumerate(subs if isinstance(subs, list) else [subs] if subs else []):
            found += strict_violations(sub, f"{where}.{key}[{i}]")
    if "default" in schema:
        found.append(f"{where}: has a default")
    return found


@pytest.mark.parametrize(("profile", "provider"), SETUPS)
def test_one_tool_per_read_endpoint_plus_the_unified_calls(profile: str, provider: str) -> None:
    """Every read endpoint of every provider is a tool, and prices/ohlcv are there too."""
    with (
        Sandbox(profile=profile) as sb,
        coinguard.Client(provider=provider, base_url=sb.base_url, read_key=sb.keys.read) as c,
    ):
        tools = agent_tools(c)
        reads = [name for name, ep in c.endpoints.items() if ep.scope is coinguard.Scope.READ]
        assert tools.names() == [*reads, "prices", "ohlcv"]
        for tool in tools:
            assert NAME.match(tool.name)
            assert tool.read_only
            assert len(tool.description) > 40


@pytest.mark.parametrize(("profile", "provider"), SETUPS)
def test_every_schema_is_strict_mode_compatible(profile: str, provider: str) -> None:
    """The plain schema forbids extra properties and defaults each optional one; the strict
    export needs no change by openai-agents' own strict-schema converter."""
    from agents.strict_schema import ensure_strict_json_schema

    with (
        Sandbox(profile=profile) as sb,
        coinguard.Client(provider=provider, base_url=sb.base_url, read_key=sb.keys.read) as c,
    ):
        for tool in agent_tools(c):
            plain = tool.json_schema()
            assert plain["additionalProperties"] is False
            for name, prop in plain["properties"].items():
                assert name in plain.get("required", []) or "default" in prop, name
            strict = tool.strict_schema()
            assert strict_violations(strict) == []
            assert ensure_strict_json_schema(json.loads(json.dumps(strict))) == strict


def test_no_schema_names_a_key_or_the_client(client: coinguard.Client) -> None:
    """The client is a closure: no parameter of any tool is a key, a client or a URL."""
    for tool in agent_tools(client):
        text = json.dumps(tool.json_schema()).lower()
        for word in ("key", "client", "base_url", "secret", 'token"'):
            assert word not in text, (tool.name, word)


def test_a_typed_endpoint_tool_returns_its_rows_as_json(client: coinguard.Client) -> None:
    """A tool call is one typed endpoint call; the result is JSON with the rows and counts."""
    tools = agent_tools(client)
    text = tools["daily_ohlcv"].invoke_json(
        '{"symbol": "BTC", "startDate": "2026-11-01", "endDate": "2026-11-03"}'
    )
    result = json.loads(text)
    assert result["ok"]
    assert result["count"] == result["returned"] == 3
    assert [r["time"][:10] for r in result["rows"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert result["truncated"] is False


def test_strict_mode_nulls_mean_the_defaults(client: coinguard.Client) -> None:
    """A strict-mode model sends every property, null for unused ones: that is the default."""
    tools = agent_tools(client)
    args = {"symbols": ["BTC"], "start": "2026-11-01", "end": "2026-11-02", "interval": None}
    result = json.loads(tools.run_openai("ohlcv", json.dumps(args)))
    assert result["ok"]
    assert result["count"] == 2


def test_a_large_result_is_cut_by_whole_rows_and_stays_valid_json(
    client: coinguard.Client,
) -> None:
    """Over max_chars the rows are dropped whole; the JSON parses and says what is missing."""
    tools = agent_tools(client, max_chars=1500)
    text = tools["ohlcv"].invoke_json(
        '{"symbols": ["BTC", "ETH"], "start": "2026-08-01", "end": "2026-10-29"}'
    )
    assert len(text) <= 1500
    result = json.loads(text)
    assert result["ok"]
    assert result["truncated"]
    assert result["count"] == 180
    assert 0 < result["returned"] < 180
    assert len(result["rows"]) == result["returned"]
    assert result["range"] == {"first": "2026-08-01T00:00:00Z", "last": "2026-10-29T00:00:00Z"}
    assert "more rows not shown" in result["note"]


def test_max_rows_caps_the_rows(client: coinguard.Client) -> None:
    """max_rows bounds the rows of a result whatever their size."""
    result = agent_tools(client, max_rows=4)["ohlcv"](symbols=["BTC"], start="2026-10-01")
    assert result["returned"] == 4
    assert result["count"] > 4
    assert result["truncated"]


def test_a_paged_endpoint_names_the_next_page(client: coinguard.Client) -> None:
    """A full page tells the model which page to ask for next."""
    result = agent_tools(client)["tokens"](limit=2, page=1)
    assert result["ok"]
    assert result["returned"] == 2
    assert result["next_page"] == 2


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"symbols": []}, "symbols: List should have at least 1 item"),
        ({"symbols": ["BTC"], "api_key": "x"}, "api_key: Extra inputs are not permitted"),
        ({"symbols": ["BT C"]}, "symbols.0: String should match pattern"),
        ({}, "symbols: Field required"),
    ],
)
def test_bad_arguments_are_an_error_result_naming_the_field(
    client: coinguard.Client, box: Sandbox, arguments: dict[str, Any], expected: str
) -> None:
    """Invalid arguments: a short error naming the field, nothing sent."""
    before = len(box.ledger.entries())
    result = agent_tools(client)["prices"](**arguments)
    assert result["ok"] is False
    assert result["error"]["kind"] == "invalid_arguments"
    assert expected in result["error"]["message"]
    assert len(box.ledger.entries()) == before


def test_invalid_json_and_unknown_tools_are_error_results(client: coinguard.Client) -> None:
    """Text that is not a JSON object, or a tool name that does not exist, is an error result."""
    tools = agent_tools(client)
    assert json.loads(tools["prices"].invoke_json("[1"))["error"]["kind"] == "invalid_arguments"
    unknown = json.loads(tools.run_openai("place_order", "{}"))
    assert unknown["error"]["kind"] == "unknown_tool"
    assert "prices" in unknown["error"]["message"]


def test_a_provider_error_is_a_short_result(client: coinguard.Client) -> None:
    """The provider's own refusal comes back as a result, not an exception."""
    result = agent_tools(client)["prices"](symbols=["NOPE"])
    assert result["error"]["kind"] == "provider_error"
    assert "unknown symbol 'NOPE'" in result["error"]["message"]


def test_any_exception_becomes_an_error_without_its_text(client: coinguard.Client) -> None:
    """A foreign exception inside a tool gives its type only: its text could hold anything."""
    tools = agent_tools(client)

    def boom(args: dict[str, Any]) -> Any:
        raise TypeError("secret detail: path=None")

    object.__setattr__(tools["price"], "_run", boom)
    result = tools["price"](symbol="BTC")
    assert result["error"] == {
        "kind": "internal_error",
        "message": "the tool failed (TypeError); nothing more is known",
    }


def test_errors_never_advise_how_to_gain_trading_rights() -> None:
    """A scope refusal says the tool set is read-only, and nothing about allow_trading."""
    kind, message, _ = coinguard.describe_tool_error(
        coinguard.ScopeError("create it with allow_trading=True and a trade_key")
    )
    assert kind == "not_allowed"
    assert "allow_trading" not in message
    assert "trade_key" not in message


def test_rate_limits_say_when_to_retry() -> None:
    """A quota refusal and a provider 429 carry a retry-after in seconds."""
    quota = coinguard.QuotaExceededError("full", window="50/s", retry_after=11.2)
    assert coinguard.describe_tool_error(quota) == (
        "rate_limited",
        "rate limited (50/s), retry in 12 s",
        11.2,
    )
    limited = coinguard.RateLimitError("429", status_code=429, retry_after=30.0)
    assert (
        coinguard.describe_tool_error(limited)[1] == "rate limited by the provider, retry in 30 s"
    )


def test_an_agent_over_budget_gets_an_error_and_nothing_is_sent(
    client: coinguard.Client, box: Sandbox
) -> None:
    """The budget is checked before any byte: the over-budget call reaches no server."""
    tools = agent_tools(client, agent="bot", budget=Budget(calls=2))
    assert tools["prices"](symbols=["BTC"])["budget"]["calls"] == {
        "used": 1,
        "limit": 2,
        "per": "day",
    }
    assert tools["price"](symbol="ETH")["ok"]
    sent = len(box.ledger.entries())
    refused = tools["prices"](symbols=["SOL"])
    assert refused["error"]["kind"] == "budget_spent"
    assert refused["error"]["message"].startswith("budget spent: 2/2 calls this day, resets in")
    assert len(box.ledger.entries()) == sent


def test_credits_are_charged_at_the_declared_cost(client: coinguard.Client, box: Sandbox) -> None:
    """OHLCV costs 2 credits on the sandbox: a 3-credit budget allows one call, then refuses."""
    tools = agent_tools(client, agent="bot", budget=Budget(credits=3))
    first = tools["daily_ohlcv"](symbol="BTC", startDate="2026-11-01", endDate="2026-11-02")
    assert first["budget"]["credits"]["used"] == 2
    sent = len(box.ledger.entries())
    again = tools["daily_ohlcv"](symbol="BTC", startDate="2026-11-01", endDate="2026-11-02")
    assert again["error"]["kind"] == "budget_spent"
    assert len(box.ledger.entries()) == sent
    assert tools["price"](symbol="BTC")["budget"]["credits"]["used"] == 3  # 1 fits


def test_agents_sharing_a_key_have_separate_budgets(
    client: coinguard.Client, tmp_path: Any
) -> None:
    """Two agents on one client and one store: each spends its own budget; a second toolset of
    the same agent on the same SQLite store (another process, say) shares it."""
    store = f"sqlite:///{tmp_path / 'budgets.sqlite3'}"
    alice = agent_tools(client, agent="alice", budget=Budget(calls=1), budget_store=store)
    bob = agent_tools(client, agent="bob", budget=Budget(calls=1), budget_store=store)
    alice_again = agent_tools(client, agent="alice", budget=Budget(calls=1), budget_store=store)
    try:
        assert alice["price"](symbol="BTC")["ok"]
        assert bob["price"](symbol="BTC")["ok"]
        assert alice_again["price"](symbol="BTC")["error"]["kind"] == "budget_spent"
    finally:
        for toolset in (alice, bob, alice_again):
            toolset.close()


def test_a_read_only_toolset_has_no_trade_tool_even_on_a_trading_client(box: Sandbox) -> None:
    """allow_trading on the client alone adds no tool: every tool only reads."""
    with coinguard.Client(
        provider="sandbox",
        base_url=box.base_url,
        read_key=box.keys.read,
        trade_key=box.keys.trade,
        allow_trading=True,
    ) as trading:
        assert all(t.read_only for t in agent_tools(trading))


def test_each_call_writes_one_audit_line(client: coinguard.Client, caplog: Any) -> None:
    """An INFO line per tool call names the agent, the tool and the outcome."""
    caplog.set_level("INFO", logger="coinguard.tools")
    tools = agent_tools(client, agent="auditor")
    tools["price"](symbol="BTC")
    tools["prices"](symbols=[])
    lines = [r.getMessage() for r in caplog.records if r.name == "coinguard.tools"]
    assert [line.rsplit(" ms=", 1)[0] for line in lines] == [
        "tool call agent=auditor tool=price outcome=ok",
        "tool call agent=auditor tool=prices outcome=invalid_arguments",
    ]


def test_config_checks(client: coinguard.Client) -> None:
    """A toolset needs an agent name; budgets need positive ints."""
    with pytest.raises(coinguard.ConfigurationError, match="agent"):
        agent_tools(client, agent=" ")
    with pytest.raises(coinguard.ConfigurationError, match="calls"):
        Budget(calls=0)


def test_coinmarketcap_plan_refusal_is_a_result() -> None:
    """CoinMarketCap's Basic plan refuses OHLCV: the tool says so, it does not raise."""
    with (
        Sandbox(SandboxConfig(profile="coinmarketcap")) as sb,
        coinguard.Client(
            provider="coinmarketcap", base_url=sb.base_url, read_key=sb.keys.read
        ) as c,
    ):
        result = agent_tools(c)["ohlcv"](symbols=["BTC"], start="2026-11-01", end="2026-11-02")
    assert result["ok"] is False
    assert result["error"]["kind"] in ("unavailable", "provider_error")


def test_ohlcv_credits_are_reserved_at_no_less_than_the_requests_sent(
    client: coinguard.Client, box: Sandbox
) -> None:
    """A paginated OHLCV call is charged before it runs at an upper bound of what it sends."""
    tools = agent_tools(client, agent="bot", budget=Budget(credits=500))
    before = len(box.ledger.entries())
    result = tools["ohlcv"](symbols=["BTC", "ETH"], start="2026-08-01", end="2026-10-29")
    sent = box.ledger.entries()[before:]
    assert result["ok"]
    assert sum(e.cost for e in sent) <= result["budget"]["credits"]["used"] <= 4 * len(sent)


def test_a_provider_of_ones_own_gets_its_endpoints_as_tools() -> None:
    """A custom provider with declared endpoints gets one tool each and no unified calls; one
    with none is told why there are no tools."""
    from coinguard.providers import tokenmetrics

    own = coinguard.Provider(
        name="mine", base_url="https://api.example.com/v2", endpoints=tokenmetrics.endpoints()
    )
    with coinguard.Client(provider=own, read_key="mine-read-key-0001") as c:
        assert agent_tools(c).names() == [ep.name for ep in tokenmetrics.endpoints()]
    with (
        coinguard.Client(
            provider="generic", base_url="https://api.example.com", read_key="k" * 16
        ) as bare,
        pytest.raises(coinguard.ConfigurationError, match="declares no read endpoints"),
    ):
        agent_tools(bare)


def test_an_argument_named_like_python_internals_is_just_a_bad_argument(
    client: coinguard.Client,
) -> None:
    """A model sending 'self' or 'arguments' gets an error result, not a TypeError."""
    result = agent_tools(client)["price"](self=1, arguments=2)
    assert result["error"]["kind"] == "invalid_arguments"
    assert "self: Extra inputs are not permitted" in result["error"]["message"]


def test_wall_time_budget_refuses_calls_once_spent(client: coinguard.Client, box: Sandbox) -> None:
    """Budget(seconds=60): calls that took 45 s and 30 s of the (fake) clock spend it; the
    next call is refused before any byte, and the result shows the seconds used."""
    now = [1_000_000.0]
    tools = agent_tools(client, budget=Budget(seconds=60), clock=lambda: now[0])
    real = tools["price"]._run

    def slow(args: dict[str, Any]) -> Any:
        now[0] += 45.0 if now[0] == 1_000_000.0 else 30.0
        return real(args)

    object.__setattr__(tools["price"], "_run", slow)
    first = tools["price"](symbol="BTC")
    assert first["budget"]["seconds"] == {"used": 45.0, "limit": 60, "per": "day"}
    assert tools["price"](symbol="BTC")["budget"]["seconds"]["used"] == 60.0  # counted up to 60
    sent = len(box.ledger.entries())
    refused = tools["price"](symbol="BTC")
    assert refused["error"]["message"] == "budget spent: 60/60 seconds this day"
    assert len(box.ledger.entries()) == sent


def test_a_budget_on_sqlite_holds_across_processes(
    client: coinguard.Client, box: Sandbox, tmp_path: Any
) -> None:
    """One call here, then another process with the same agent and store: one more call, then
    the budget is spent there too."""
    store = f"sqlite:///{tmp_path / 'budgets.sqlite3'}"
    here = agent_tools(client, agent="shared", budget=Budget(calls=2), budget_store=store)
    assert here["price"](symbol="BTC")["ok"]
    script = (
        "import coinguard, sys\n"
        "c = coinguard.Client(provider='sandbox', base_url=sys.argv[1], read_key=sys.argv[2])\n"
        "t = coinguard.agent_tools(c, agent='shared', budget=coinguard.Budget(calls=2),"
        " budget_store=sys.argv[3])\n"
        "print([t['price'](symbol='ETH')['ok'] for _ in range(2)])\n"
        "t.close(); c.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, box.base_url, box.keys.read, store],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COINGUARD_QUOTA_PERSIST": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True, False]"
    here.close()
