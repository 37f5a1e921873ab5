"""The ``coinguard`` command line. Subcommands are thin layers over the library.

``coinguard`` alone prints the help and exits 0; ``coinguard --version`` prints the version.
``coinguard demo`` shows what coinguard is for, against the embedded sandbox.
``coinguard sandbox`` runs the embedded sandbox server until SIGINT/SIGTERM.
``coinguard doctor`` checks where the keys come from and what is unsafe about them.
``coinguard audit check|report`` runs the anomaly rules over an audit log, or reports usage.
``coinguard mcp`` serves the read-only agent tools of a provider to an MCP client.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from ._mcp_cli import add_mcp

if TYPE_CHECKING:
    from coinguard.sandbox import Sandbox, SandboxConfig

__all__ = ["main"]

_DESCRIPTION = """\
A safe client for keyed crypto-data APIs: scoped read and trade keys, keys that never
leak, an exact quota, retries that never duplicate an order."""

_EPILOG = """\
examples:
  coinguard demo
  coinguard sandbox --env-file sandbox.env
  coinguard doctor --provider tokenmetrics --verify
  coinguard audit report calls.jsonl --html report.html
  coinguard mcp --provider tokenmetrics

Run 'coinguard COMMAND --help' for the options of a command."""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a rate in [0, 1]")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _span(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        span = (_seconds(low), _seconds(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH seconds") from None
    if span[0] > span[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: LOW is above HIGH")
    return span


def _add_sandbox(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "sandbox",
        help="run the local sandbox API server and say how to point a client at it",
        description="Serve a keyed crypto-data API on loopback with throwaway keys, and say\n"
        "how to point a client at it. It serves until Ctrl+C (SIGINT) or SIGTERM.",
        epilog="examples:\n"
        "  coinguard sandbox                        # URL, keys and the lines to export\n"
        "  coinguard sandbox --env-file sandbox.env # then Client(env_file='sandbox.env')\n"
        "  coinguard sandbox --env                  # only the export lines, for scripts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=8765, help="TCP port, 0 for a free one (default 8765)"
    )
    p.add_argument(
        "--seed", type=int, default=7, help="seed of the synthetic data and faults (default 7)"
    )
    p.add_argument(
        "--profile",
        choices=("tokenmetrics", "coingecko", "coinmarketcap", "binance", "kraken", "coinbase"),
        default="tokenmetrics",
        help="the API to serve: the Token-Metrics-style API under /v2, or an emulation of "
        "CoinGecko (Demo and Pro roots) or CoinMarketCap, with their headers, error bodies, "
        "limits, credits and usage routes, or of Binance spot (signed requests, weights, "
        "bans, orders), Kraken spot (signed requests, nonces, the decaying counter, orders by "
        "cl_ord_id), or Coinbase Advanced Trade (a JWT per request, rate headers, orders "
        "failing with HTTP 200; needs the signing extra) (default tokenmetrics)",
    )
    p.add_argument(
        "--limit",
        action="append",
        metavar="N/UNIT",
        help="a rolling window per account, e.g. 20/s, 600/min, 5/10s (repeatable)",
    )
    p.add_argument(
        "--cost",
        action="append",
        metavar="PATH=N",
        help="cost units of an endpoint, e.g. /daily-ohlcv=2 (repeatable)",
    )
    p.add_argument(
        "--header-style",
        choices=("ietf", "legacy", "none"),
        default="ietf",
        help="rate-limit headers: ietf RateLimit/RateLimit-Policy, legacy X-RateLimit-*, "
        "or none (default ietf)",
    )
    p.add_argument(
        "--auth",
        choices=("header", "query"),
        default="header",
        help="where clients send the key: header x-api-key, or query ?api_key= (default header)",
    )
    p.add_argument(
        "--error-rate",
        metavar="RATE",
        type=_rate,
        default=0.0,
        help="share of 5xx answers, 0..1 (default 0)",
    )
    p.add_argument(
        "--reset-rate",
        metavar="RATE",
        type=_rate,
        default=0.0,
        help="share of reset connections (default 0)",
    )
    p.add_argument(
        "--html-rate",
        metavar="RATE",
        type=_rate,
        default=0.0,
        help="share of captive-portal pages (default 0)",
    )
    p.add_argument(
        "--drop-after-order-rate",
        metavar="RATE",
        type=_rate,
        default=0.0,
        help="share of orders created but left unanswered (default 0)",
    )
    p.add_argument(
        "--latency",
        metavar="SECONDS",
        type=_seconds,
        default=0.0,
        help="seconds added to each answer (default 0)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    out.add_argument(
        "--env",
        action="store_true",
        help="print only 'export NAME=value' lines a shell can eval, and a Python example",
    )
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="also write the export lines to PATH (mode 0600), for Client(env_file=PATH)",
    )
    p.add_argument(
        "--arrival-jitter",
        type=_span,
        default="0,0",  # argparse runs a string default through type=
        metavar="LOW,HIGH",
        help="seconds before each request is stamped, uniform in [LOW, HIGH], e.g. 0.05,0.1 "
        "(default 0,0)",
    )
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (not advised)"
    )
    p.set_defaults(handler=_run_sandbox)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "demo",
        help="what coinguard is for, in one run against the embedded sandbox (no key needed)",
        description="Scoped keys, quota, a refused trade, a verified key and a safe order, "
        "against the embedded sandbox. With TOKENMETRICS_API_KEY set it first reads prices "
        "from the real Token Metrics API (one line if that fails).",
    )
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(sys.stdout)


def _positive_days(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of days")
    return int(text)


def _add_doctor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "doctor",
        help="check where the keys come from and what is unsafe about them",
        description="Report each key's source, fingerprint, age and permissions, never its "
        "value. Exit 0 without findings, 1 with findings, 2 on usage errors.",
    )
    p.add_argument(
        "--provider",
        default="generic",
        help="provider profile: tokenmetrics, coingecko, coingecko-pro, coinmarketcap, sandbox "
        "or generic (default generic)",
    )
    p.add_argument(
        "--plan",
        metavar="NAME",
        help="the provider plan, as Client(plan=...) (default: COINGUARD_PLAN, else the "
        "provider's smallest)",
    )
    p.add_argument(
        "--base-url",
        help="provider base URL (default: COINGUARD_BASE_URL, else the provider's), "
        "resolved as a client resolves it",
    )
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="read COINGUARD_* settings from this file too, like Client(env_file=PATH); "
        "./.env is not read without it",
    )
    p.add_argument("--trade", action="store_true", help="check the trade key too")
    p.add_argument(
        "--verify", action="store_true", help="ask the provider's key-info route (network)"
    )
    p.add_argument(
        "--max-age-days", type=_positive_days, default=90, help="maximum key age (default 90)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from datetime import timedelta
    from pathlib import Path

    from coinguard import CoinguardError
    from coinguard._doctor import diagnose, render

    if args.env_file and not Path(args.env_file).is_file():
        sys.stderr.write(f"coinguard doctor: no such env file: {args.env_file}\n")
        return 2
    try:
        report = diagnose(
            provider=args.provider,
            plan=args.plan,
            base_url=args.base_url,
            env_file=args.env_file,
            trade=args.trade,
            verify=args.verify,
            max_age=timedelta(days=args.max_age_days),
        )
    except CoinguardError as exc:
        sys.stderr.write(f"coinguard doctor: {exc}\n")
        return 2
    text = json.dumps(report.to_dict(), indent=2) + "\n" if args.json else render(report)
    sys.stdout.write(text)
    return report.exit_code


def _build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(
        prog="coinguard",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"coinguard {version('coinguard')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    _add_demo(commands)
    _add_sandbox(commands)
    _add_doctor(commands)
    from ._cli_audit import add_audit

    add_audit(commands)
    add_mcp(commands)
    return parser


def _sandbox_config(args: argparse.Namespace) -> SandboxConfig:
    from dataclasses import replace

    from coinguard.sandbox import Faults, SandboxConfig, parse_limit

    faults = Faults(
        error_rate=args.error_rate,
        reset_rate=args.reset_rate,
        html_rate=args.html_rate,
        drop_after_order_rate=args.drop_after_order_rate,
        latency=args.latency,
        arrival_jitter=args.arrival_jitter,
    )
    config = SandboxConfig(
        allow_remote=args.allow_remote,
        host=args.host,
        port=args.port,
        seed=args.seed,
        auth=args.auth,
        header_style=args.header_style,
        faults=faults,
        profile=args.profile,
    )
    if args.limit:
        config = replace(config, windows=tuple(parse_limit(text) for text in args.limit))
    if args.cost:
        costs = {}
        for item in args.cost:
            path, sep, units = item.partition("=")
            if not sep or not units.strip().isdigit():
                raise ValueError(f"bad cost {item!r}: expected PATH=N, e.g. /daily-ohlcv=2")
            costs[path.strip()] = int(units)
        config = replace(config, costs=costs)
    return config


def _root(sandbox: Sandbox) -> str:
    """Where a client points: Binance's, Kraken's and Coinbase's paths start at the origin
    (``/api/v3/...``, ``/0/private/...``)."""
    return sandbox.origin if sandbox.config.profile in _AT_ORIGIN else sandbox.base_url


def _exports(sandbox: Sandbox) -> list[str]:
    """The settings a client reads (``COINGUARD_*``), as lines a shell and python-dotenv read."""
    values = {
        "COINGUARD_BASE_URL": _root(sandbox),
        "COINGUARD_READ_KEY": sandbox.keys.read,
        "COINGUARD_READ_SECRET": sandbox.keys.read_secret,
        "COINGUARD_TRADE_KEY": sandbox.keys.trade,
        "COINGUARD_TRADE_SECRET": sandbox.keys.trade_secret,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items() if value]


_AT_ORIGIN = ("binance", "kraken", "coinbase")

# What the printed one-liner reads from each emulation: a cheap, typical call.
_READS = {
    "coingecko": (
        "coingecko",
        'get("/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"})',
    ),
    "coinmarketcap": (
        "coinmarketcap",
        'get("/v1/cryptocurrency/quotes/latest", params={"symbol": "BTC"})',
    ),
    "binance": ("binance", 'get("/api/v3/account")'),
    "kraken": ("kraken", 'post("/0/private/Balance")'),  # private calls are POSTs
    "coinbase": ("coinbase", 'get("/api/v3/brokerage/key_permissions")'),
}


def _example(auth: str, profile: str = "tokenmetrics") -> str:
    if profile in _READS:
        name, call = _READS[profile]
        return (
            f'python -c \'import coinguard; c = coinguard.Client(provider="{name}"); '
            f"print(c.{call})'"
        )
    provider = (
        '"sandbox"'
        if auth == "header"
        # the sandbox profile sends the key as a header; --auth query wants it in the query
        else 'dataclasses.replace(coinguard.get_provider("sandbox"), '
        'auth=coinguard.QueryKey("api_key"))'
    )
    imports = "import coinguard" if auth == "header" else "import coinguard, dataclasses"
    return (
        f"python -c '{imports}; c = coinguard.Client(provider={provider}); "
        'print(c.get("/price", params={"symbol": "BTC"})["data"][0])\''
    )


def _announce(sandbox: Sandbox, args: argparse.Namespace, out: TextIO) -> None:
    keys = {name: value for name, value in vars(sandbox.keys).items() if value}
    roots = {"base_url": _root(sandbox)}
    if sandbox.config.profile == "coingecko":
        roots["pro_base_url"] = sandbox.pro_base_url
    exports = _exports(sandbox)
    example = _example(args.auth, sandbox.config.profile)
    if args.json:
        out.write(json.dumps({**roots, "keys": keys}) + "\n")
    elif args.env:
        out.write("\n".join(exports) + "\n")
        out.write(f"# then: {example}\n")
    else:
        out.write(f"coinguard sandbox serving at {roots['base_url']}\n")
        if "pro_base_url" in roots:
            out.write(f"CoinGecko Pro root at {roots['pro_base_url']} (the 'pro' key)\n")
        out.write(
            "These are throwaway keys of this local sandbox run; printing them is intended.\n"
        )
        for name, value in keys.items():
            shown = "(a private key in PEM: see --json)" if "\n" in value else value
            out.write(f"  {name:<15} {shown}\n")
        out.write("Point a client at it: in another shell, run\n")
        out.write("".join(f"  {line}\n" for line in exports))
        out.write(f"  {example}\n")
        if args.env_file:
            out.write(f"or use Client(env_file={args.env_file!r}): the same lines are in it.\n")
        out.write("Press Ctrl+C to stop.\n")
    out.flush()


def _write_env_file(path: str, sandbox: Sandbox) -> None:
    # 0600 from the start: even throwaway keys do not belong in a world-readable file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# coinguard sandbox: throwaway keys of one local run\n")
        f.write("\n".join(_exports(sandbox)) + "\n")


def _run_sandbox(args: argparse.Namespace) -> int:
    from coinguard._origin import is_loopback
    from coinguard.sandbox import Sandbox

    if not is_loopback(args.host) and not args.allow_remote:
        sys.stderr.write(
            f"coinguard sandbox: refusing to bind {args.host}: not loopback; "
            "pass --allow-remote to expose throwaway keys on the network\n"
        )
        return 2
    try:
        config = _sandbox_config(args)
    except ValueError as exc:
        sys.stderr.write(f"coinguard sandbox: {exc}\n")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(config) as sandbox:
            if args.env_file:
                try:
                    _write_env_file(args.env_file, sandbox)
                except OSError as exc:
                    sys.stderr.write(f"coinguard sandbox: cannot write {args.env_file}: {exc}\n")
                    return 2
            _announce(sandbox, args, sys.stdout)
            # A timed wait keeps the main thread responsive to signals on every platform.
            while not stop.wait(0.2):
                pass
    except OSError as exc:
        sys.stderr.write(f"coinguard sandbox: cannot bind {args.host}:{args.port}: {exc}\n")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coinguard`` command line; returns the process exit status.

    >>> main(["sandbox", "--host", "0.0.0.0"])  # doctest: +SKIP
    2
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `coinguard` asks what it can do: tell, successfully
        parser.print_help()
        return 0
    handler = args.handler
    status: int = handler(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
