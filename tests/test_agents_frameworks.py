"""Framework adapters, each invoked through the framework's own tool path (no network model):
OpenAI dicts, openai-agents FunctionTool, LangChain StructuredTool, pydantic-ai Tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import coinguard
from coinguard.agents import langchain_tools, openai_agents_tools, pydantic_ai_tools
from coinguard.sandbox import Sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def tools(box: Sandbox) -> Iterator[coinguard.Toolset]:
    with coinguard.Client(provider="sandbox", base_url=box.base_url, read_key=box.keys.read) as c:
        yield coinguard.agent_tools(c, budget=coinguard.Budget(calls=3))


def test_openai_chat_completions_shape(tools: coinguard.Toolset) -> None:
    """Chat Completions: {"type": "function", "function": {name, description, parameters,
    strict}}, and the same fields pass openai-python's own FunctionDefinition type."""
    from openai.types.shared_params import FunctionDefinition

    exported = tools.openai_chat()
    assert len(exported) == len(tools)
    for entry, tool in zip(exported, tools, strict=True):
        assert set(entry) == {"type", "function"}
        assert entry["type"] == "function"
        assert set(entry["function"]) == set(FunctionDefinition.__annotations__)
        assert entry["function"]["name"] == tool.name
        assert entry["function"]["strict"] is True
        assert entry["function"]["parameters"] == tool.strict_schema()
    json.dumps(exported)


def test_openai_responses_shape(tools: coinguard.Toolset) -> None:
    """Responses API: the flat {"type", "name", "description", "parameters", "strict"} form,
    the fields of openai-python's FunctionToolParam."""
    from openai.types.responses import FunctionToolParam

    allowed = set(FunctionToolParam.__annotations__)
    for entry in tools.openai_responses():
        assert {"type", "name", "description", "parameters", "strict"} == set(entry)
        assert set(entry) <= allowed
        assert entry["type"] == "function"


def test_run_openai_answers_a_tool_call_with_json(tools: coinguard.Toolset) -> None:
    """A model's tool call (name and JSON arguments) comes back as JSON text."""
    answer = json.loads(tools.run_openai("prices", '{"symbols": ["BTC"]}'))
    assert answer["rows"][0]["symbol"] == "BTC"


@pytest.mark.anyio
async def test_openai_agents_function_tool(tools: coinguard.Toolset) -> None:
    """openai-agents: strict FunctionTools, invoked through on_invoke_tool with a ToolContext;
    an error is a JSON result, never an exception for the SDK to forward."""
    from agents import FunctionTool
    from agents.tool_context import ToolContext

    made = openai_agents_tools(tools)
    assert all(isinstance(t, FunctionTool) and t.strict_json_schema for t in made)
    prices = next(t for t in made if t.name == "prices")
    assert prices.params_json_schema == tools["prices"].strict_schema()
    args = '{"symbols": ["ETH"]}'
    ctx = ToolContext(None, tool_name="prices", tool_call_id="call_1", tool_arguments=args)
    answer = json.loads(await prices.on_invoke_tool(ctx, args))
    assert answer["rows"][0]["symbol"] == "ETH"
    bad = json.loads(await prices.on_invoke_tool(ctx, '{"symbols": "ETH", "x": 1}'))
    assert bad["error"]["kind"] == "invalid_arguments"


@pytest.mark.anyio
async def test_langchain_structured_tool(tools: coinguard.Toolset) -> None:
    """LangChain: StructuredTool.invoke and ainvoke with args and with a tool call; the
    model-facing schema has the tool's fields and nothing else."""
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import StructuredTool

    made = {t.name: t for t in langchain_tools(tools)}
    prices = made["prices"]
    assert isinstance(prices, StructuredTool)
    assert set(prices.tool_call_schema.model_json_schema()["properties"]) == {"symbols"}
    assert json.loads(prices.invoke({"symbols": ["BTC"]}))["rows"][0]["symbol"] == "BTC"
    call = {"name": "price", "args": {"symbol": "SOL"}, "id": "c1", "type": "tool_call"}
    message = await made["price"].ainvoke(call)
    assert isinstance(message, ToolMessage)
    assert json.loads(message.content)["rows"][0]["symbol"] == "SOL"


def test_langchain_errors_use_its_own_error_channel(tools: coinguard.Toolset) -> None:
    """An error result is a ToolMessage with status "error" (a handled ToolException);
    arguments LangChain rejects itself get our short text, not pydantic's echo of the input."""
    made = {t.name: t for t in langchain_tools(tools)}

    def call(name: str, args: dict[str, Any]) -> Any:
        return made[name].invoke({"name": name, "args": args, "id": "c", "type": "tool_call"})

    refused = call("price", {"symbol": "NOPE"})
    assert refused.status == "error"
    assert json.loads(refused.content)["error"]["kind"] == "provider_error"
    bad = call("prices", {"symbols": "BTC", "secret": "sk-live-0000000000000000"})
    assert bad.status == "error"
    assert json.loads(bad.content)["error"]["kind"] == "invalid_arguments"
    assert "sk-live" not in bad.content


@pytest.mark.anyio
async def test_pydantic_ai_tool_in_an_agent_run(tools: coinguard.Toolset) -> None:
    """pydantic-ai: an Agent run with a FunctionModel (offline) calls the tool as the
    framework does; the model saw the strict schema, bad arguments come back as a retry
    prompt (ModelRetry), and the budget ends the fourth call."""
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    seen: dict[str, Any] = {}

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen["schema"] = next(t for t in info.function_tools if t.name == "prices")
        answers = [
            p.content for m in messages for p in getattr(m, "parts", [])
            if isinstance(p, ToolReturnPart)
        ]  # fmt: skip
        # a ModelRetry comes back to the model as its text; a result as the tool's dict
        seen["retries"] = [a for a in answers if isinstance(a, str)]
        returned = [a for a in answers if isinstance(a, dict)]
        if not answers:
            return ModelResponse(parts=[ToolCallPart("prices", {"symbols": "BTC"})])
        if len(returned) < 3:
            return ModelResponse(parts=[ToolCallPart("prices", {"symbols": ["BTC"]})])
        return ModelResponse(parts=[TextPart(json.dumps(returned))])

    agent = Agent(FunctionModel(model), tools=pydantic_ai_tools(tools))
    # run, not run_sync: run_sync leaves an event loop of its own unclosed
    results = json.loads((await agent.run("BTC?")).output)
    assert seen["schema"].parameters_json_schema == tools["prices"].strict_schema()
    assert [r["ok"] for r in results] == [True, True, True]
    assert seen["retries"] == ["invalid arguments: symbols: Input should be a valid list"]
    over = await agent.run("BTC?")  # its bad first call costs nothing, its next one is refused
    assert json.loads(over.output)[0]["error"]["kind"] == "budget_spent"
