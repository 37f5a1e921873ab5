"""Framework adapters for a :class:`coinguard.Toolset`: MCP, openai-agents, LangChain, pydantic-ai.

Each adapter is thin: the tool's schema, its result and its error handling are the toolset's;
the adapter only dresses them the way the framework expects. Every framework is an optional
extra, imported when its adapter is called, with an error naming the extra to install:

- :func:`mcp_server` (``pip install 'coinguard[mcp]'``): an ``MCPServer`` of the official SDK;
  an error result is raised as the SDK's ``ToolError`` so the client sees ``is_error``.
- :func:`openai_agents_tools` (``coinguard[openai-agents]``): ``FunctionTool`` objects.
- :func:`langchain_tools` (``coinguard[langchain]``): ``StructuredTool`` objects.
- :func:`pydantic_ai_tools` (``coinguard[pydantic-ai]``): ``Tool`` objects.

The OpenAI Chat Completions and Responses formats need no package: see
:meth:`coinguard.Toolset.openai_chat` and :meth:`coinguard.Toolset.openai_responses`.

>>> from coinguard.agents import mcp_server  # doctest: +SKIP
>>> mcp_server(coinguard.agent_tools(client)).run()  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import inspect
import json
from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Annotated, Any

from pydantic import ValidationError

from ._exceptions import ConfigurationError
from ._tool_errors import validation_text
from ._tools import AgentTool, Toolset

__all__ = [
    "bearer_guard",
    "langchain_tools",
    "mcp_server",
    "openai_agents_tools",
    "pydantic_ai_tools",
    "serve_http",
]

_INSTRUCTIONS = (
    "Read-only crypto market data. Every tool answers JSON: ok, rows, count, returned, "
    "truncated (ask for less when true), and budget; an error has a kind and a short message. "
    "Times are UTC, prices USD."
)


def _need(module: str, extra: str) -> Any:
    try:
        return import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"this adapter needs the {extra!r} extra: pip install 'coinguard[{extra}]'"
        ) from None


def _signature(tool: AgentTool) -> inspect.Signature:
    """Keyword-only parameters with the input model's types and fields, for frameworks that
    build their schema from a function's signature."""
    params = []
    for name, info in tool.input_model.model_fields.items():
        default = inspect.Parameter.empty if info.is_required() else info.default
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[info.annotation, info],
            )
        )
    return inspect.Signature(params, return_annotation=dict[str, Any])


def mcp_server(tools: Toolset, *, name: str = "coinguard") -> Any:
    """An MCP server (``mcp.server.MCPServer``) with one MCP tool per tool of ``tools``.

    Annotations say each tool only reads (``read_only_hint``), changes nothing
    (``destructive_hint=False``) and may be repeated (``idempotent_hint``). A successful
    result is the tool's JSON as structured content; an error result is a ``ToolError`` with
    the result's JSON as its text.

    >>> server = mcp_server(coinguard.agent_tools(client))  # doctest: +SKIP
    >>> server.run()  # stdio  # doctest: +SKIP
    """
    server_module = _need("mcp.server", "mcp")
    errors = _need("mcp.server.mcpserver.exceptions", "mcp")
    types = _need("mcp_types", "mcp")
    registry = _need("mcp.server.mcpserver.tools", "mcp")
    made = []
    # MCP's annotations are hints a client may ignore: a trade tool needs coinguard's callback
    for tool in tools.without_hooks("MCP"):
        hints = types.ToolAnnotations(
            title=tool.name.replace("_", " "),
            read_only_hint=tool.read_only,
            destructive_hint=not tool.read_only,
            idempotent_hint=tool.read_only,
            open_world_hint=True,
        )
        entry = registry.Tool.from_function(
            _mcp_function(tool, errors.ToolError),
            name=tool.name,
            description=tool.description,
            annotations=hints,
            structured_output=True,
        )
        # the listed schema is the tool's own: additionalProperties false, defaults explicit
        made.append(entry.model_copy(update={"parameters": tool.json_schema()}))
    return server_module.MCPServer(name, instructions=_INSTRUCTIONS, tools=made)


def _mcp_function(tool: AgentTool, tool_error: type[Exception]) -> Callable[..., Any]:
    async def run(**arguments: Any) -> dict[str, Any]:
        result = await tool.acall(**arguments)
        if not result["ok"]:
            raise tool_error(json.dumps(result))
        return result

    run.__signature__ = _signature(tool)  # type: ignore[attr-defined]
    run.__name__ = tool.name
    run.__doc__ = tool.description
    return run


def openai_agents_tools(tools: Toolset) -> list[Any]:
    """``agents.FunctionTool`` objects for the OpenAI Agents SDK, in strict mode.

    The tool's JSON text goes back to the model, error results included; nothing raises, so
    the SDK's default error handler (which would forward an exception's text) never runs.

    >>> agent = Agent(name="analyst", tools=openai_agents_tools(tools))  # doctest: +SKIP
    """
    sdk = _need("agents", "openai-agents")
    return [
        sdk.FunctionTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=tool.strict_schema(),
            on_invoke_tool=_json_runner(tool),
            strict_json_schema=True,
            needs_approval=not tool.read_only,
        )
        for tool in tools
    ]


def _json_runner(tool: AgentTool) -> Callable[[Any, str], Awaitable[str]]:
    async def invoke(ctx: Any, arguments: str) -> str:
        if tool.approval == "framework":  # the SDK runs this only after needs_approval said yes
            try:
                parsed = json.loads(arguments or "{}")
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return await tool.ainvoke_json(arguments)  # the usual invalid-arguments result
            return json.dumps(await tool._aafter_approval(parsed))
        return await tool.ainvoke_json(arguments)

    return invoke


def langchain_tools(tools: Toolset) -> list[Any]:
    """``langchain_core.tools.StructuredTool`` objects (sync and async), returning JSON text.

    An error result goes through LangChain's own channel: a ``ToolException`` handled by the
    tool (``handle_tool_error``), so an agent gets a ``ToolMessage`` with ``status="error"``
    and the result's JSON; arguments LangChain itself rejects get the same short text, never
    pydantic's, which would echo the input.

    >>> langchain_tools(tools)[0].invoke({"symbols": ["BTC"]})  # doctest: +SKIP
    """
    lc = _need("langchain_core.tools", "langchain")
    out = []
    for tool in tools.without_hooks("LangChain's StructuredTool"):
        run, arun = _text_runners(tool, lc.ToolException)
        out.append(
            lc.StructuredTool.from_function(
                func=run,
                coroutine=arun,
                name=tool.name,
                description=tool.description,
                args_schema=tool.input_model,
                infer_schema=False,
                handle_tool_error=True,
                handle_validation_error=_invalid_text(tool),
            )
        )
    return out


def _text_runners(
    tool: AgentTool, failed: type[Exception]
) -> tuple[Callable[..., str], Callable[..., Awaitable[str]]]:
    # closures, not default arguments: a model's argument can never replace the tool
    def run(**arguments: Any) -> str:
        return _text(tool(**arguments), failed)

    async def arun(**arguments: Any) -> str:
        return _text(await tool.acall(**arguments), failed)

    return run, arun


def _text(result: dict[str, Any], failed: type[Exception]) -> str:
    text = json.dumps(result)
    if not result["ok"]:
        raise failed(text)
    return text


def _invalid_text(tool: AgentTool) -> Callable[[Exception], str]:
    def explain(exc: Exception) -> str:
        message = "invalid arguments"
        if isinstance(exc, ValidationError):
            message = validation_text(exc)
        error = {"kind": "invalid_arguments", "message": message}
        return json.dumps({"ok": False, "tool": tool.name, "error": error})

    return explain


def pydantic_ai_tools(tools: Toolset) -> list[Any]:
    """``pydantic_ai.Tool`` objects built from each tool's strict JSON Schema.

    Invalid arguments raise pydantic-ai's ``ModelRetry`` with the short message, so the model
    is asked to correct them (up to the tool's retries); other error results come back as the
    tool's return value for the model to adapt to.

    >>> agent = pydantic_ai.Agent(model, tools=pydantic_ai_tools(tools))  # doctest: +SKIP
    """
    sdk = _need("pydantic_ai", "pydantic-ai")
    out = []
    for tool in tools:
        made = sdk.Tool.from_schema(
            _dict_runner(tool, sdk.ModelRetry),
            name=tool.name,
            description=tool.description,
            json_schema=tool.strict_schema(),
        )
        made.requires_approval = not tool.read_only
        out.append(made)
    return out


def _dict_runner(
    tool: AgentTool, retry: type[Exception]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def run(**arguments: Any) -> dict[str, Any]:
        if tool.approval == "framework":  # pydantic-ai runs this only once requires_approval is met
            result = await tool._aafter_approval(arguments)
        else:
            result = await tool.acall(**arguments)
        if not result["ok"] and result["error"]["kind"] == "invalid_arguments":
            raise retry(result["error"]["message"])
        return result

    return run


def bearer_guard(app: Any, token: str) -> Any:
    """Wrap an ASGI app so that an HTTP request without ``Authorization: Bearer <token>`` gets
    a 401 and never reaches it. The token is compared in constant time.

    >>> guarded = bearer_guard(server.streamable_http_app(), token)  # doctest: +SKIP
    """
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
                return
        await app(scope, receive, send)

    return guarded


def serve_http(server: Any, *, host: str, port: int, token: str) -> None:
    """Serve ``server`` over streamable HTTP at ``http://host:port/mcp``, bearer token required.

    >>> serve_http(mcp_server(tools), host="127.0.0.1", port=8000, token=token)  # doctest: +SKIP
    """
    uvicorn = _need("uvicorn", "mcp")
    app = bearer_guard(server.streamable_http_app(host=host), token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
