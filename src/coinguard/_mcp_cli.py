"""``coinguard mcp``: the agent tools of one provider as an MCP server (stdio or HTTP).

Keys come from the usual sources (``COINGUARD_READ_KEY``, ``COINGUARD_READ_KEY_REF``, the
provider's variable, ``--env-file``); an MCP client starts a stdio server with only a few
variables of its own environment, so pass them with its ``env`` setting. The server never
loads the trade key: its tools only read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ._secret import Secret

__all__ = ["add_mcp"]

TOKEN_ENV = "COINGUARD_MCP_TOKEN"  # noqa: S105 (a variable name, not a value)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return int(text)


def _retries(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text} is not a number of retries (0 or more)")
    return int(text)


def add_mcp(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``mcp`` subcommand."""
    p = commands.add_parser(
        "mcp",
        help="serve the read-only agent tools of a provider over MCP (stdio by default)",
        description="Serve one tool per read endpoint of the provider, plus prices and ohlcv, "
        "to an MCP client: over stdio (stdout is the protocol, logs go to stderr), or with "
        f"--http over streamable HTTP at /mcp, which needs a bearer token in {TOKEN_ENV}.",
    )
    p.add_argument(
        "--provider", default="tokenmetrics", help="provider profile (default tokenmetrics)"
    )
    p.add_argument("--plan", metavar="NAME", help="the provider plan, as Client(plan=...)")
    p.add_argument(
        "--base-url", help="provider base URL (default: COINGUARD_BASE_URL, else the provider's)"
    )
    p.add_argument(
        "--env-file", metavar="PATH", help="read COINGUARD_* settings from this file too"
    )
    p.add_argument(
        "--agent", default="mcp", help="the agent name budgets are kept under (default mcp)"
    )
    p.add_argument("--budget-calls", type=_count, metavar="N", help="tool calls allowed per period")
    p.add_argument("--budget-credits", type=_count, metavar="N", help="credits allowed per period")
    p.add_argument(
        "--budget-seconds", type=_count, metavar="N", help="seconds of tool calls per period"
    )
    p.add_argument(
        "--budget-per", choices=("minute", "hour", "day"), default="day",
        help="the budget's period (default day, the UTC day)",
    )  # fmt: skip
    p.add_argument(
        "--budget-store", metavar="URL",
        help="quota store URL for the budget, shared by processes (e.g. sqlite:///budgets.db)",
    )  # fmt: skip
    p.add_argument(
        "--max-retries", type=_retries, metavar="N",
        help="retries of a failed read (default: the client's); a tool answers sooner with fewer",
    )  # fmt: skip
    p.add_argument("--max-rows", type=_count, default=100, help="rows per result (default 100)")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--port", type=_count, default=8000, help="HTTP port (default 8000)")
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (not advised)"
    )
    p.set_defaults(handler=run_mcp)


def run_mcp(args: argparse.Namespace) -> int:
    """Build the client, the tools and the server; serve until the client goes away."""
    import coinguard
    from coinguard._origin import is_loopback
    from coinguard._redact import register
    from coinguard.agents import mcp_server, serve_http

    token = ""
    if args.http:
        if not is_loopback(args.host) and not args.allow_remote:
            return _fail(f"refusing to bind {args.host}: not loopback; pass --allow-remote")
        try:
            held = _token()
        except coinguard.CoinguardError as exc:
            return _fail(str(exc))
        token = held.reveal() if held is not None else ""
        if held is None or len(token) < 16:
            return _fail(
                f"--http needs a bearer token of 16 or more characters in {TOKEN_ENV}, "
                f"{TOKEN_ENV}_FILE or {TOKEN_ENV}_REF"
            )
        register(held)  # redacted from every coinguard log line while held is alive
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    budget = None
    if args.budget_calls or args.budget_credits or args.budget_seconds:
        budget = coinguard.Budget(
            args.budget_calls, args.budget_credits, args.budget_per, args.budget_seconds
        )
    try:
        client = coinguard.Client(
            provider=args.provider, plan=args.plan, base_url=args.base_url,
            env_file=args.env_file, on_quota="raise", max_retries=args.max_retries,
        )  # fmt: skip
        tools = coinguard.agent_tools(
            client, agent=args.agent, budget=budget, budget_store=args.budget_store,
            max_rows=args.max_rows,
        )  # fmt: skip
        server = mcp_server(tools)
    except coinguard.CoinguardError as exc:
        return _fail(str(exc))
    try:
        if args.http:
            serve_http(server, host=args.host, port=args.port, token=token)
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        tools.close()
        client.close()
    return 0


def _token() -> Secret | None:
    """The bearer token, from the first of ``COINGUARD_MCP_TOKEN``, ``..._FILE`` (a path) and
    ``..._REF`` (a secret reference: ``keyring://``, ``vault://``...), as API keys are: no
    token needs to sit in an MCP client's config file."""
    from ._keys import FileSource, _from_ref

    value = os.environ.get(TOKEN_ENV)
    if value:
        return Secret(value, source=TOKEN_ENV)
    file = os.environ.get(f"{TOKEN_ENV}_FILE")
    if file:
        return FileSource(file, via=f"{TOKEN_ENV}_FILE").load()
    ref = os.environ.get(f"{TOKEN_ENV}_REF")
    if ref:
        return _from_ref(ref).load()
    return None


def _fail(message: str) -> int:
    sys.stderr.write(f"coinguard mcp: {message}\n")
    return 2
