"""``coinguard audit check`` and ``coinguard audit report``: the alert rules and the usage
report over an audit log, after the fact."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._alerts import Thresholds
    from ._observe import Attempt

__all__ = ["add_audit"]


def _hours(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep or not start.isdigit() or not end.isdigit() or int(start) > 24 or int(end) > 24:
        raise argparse.ArgumentTypeError(f"{text!r} is not START-END UTC hours, e.g. 8-20")
    return int(start), int(end)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return int(text)


def add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit check`` and ``audit report`` to the command line."""
    audit = commands.add_parser(
        "audit",
        help="check an audit log for anomalies, or report what each key did",
        description="Read a JSON Lines audit log (and its rotated files) written by "
        "Client(audit=...) or COINGUARD_AUDIT_LOG.",
    )
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="run the anomaly rules over the log; exit 1 when an alert fires",
        description="Run the anomaly rules over the log, oldest first. Exit 0 without "
        "alerts, 1 with alerts, 2 on usage errors.",
    )
    check.add_argument("file", help="the audit log (rotated FILE.1, FILE.2... are read too)")
    check.add_argument("--rate-factor", type=_positive, help="rate rule factor (default 5)")
    check.add_argument(
        "--auth-failures", type=_count, help="401/403 answers in a minute (default 5)"
    )
    check.add_argument("--idle-days", type=_positive, help="days unused (default 30)")
    check.add_argument("--trade-hours", type=_hours, help="allowed UTC hours for orders, 8-20")
    check.add_argument("--trade-symbols", help="allowed symbols for orders, comma-separated")
    check.add_argument("--monthly-credits", type=_count, help="credits per month to burn at most")
    check.add_argument("--json", action="store_true", help="print alerts as JSON lines")
    check.set_defaults(handler=_run_check)
    report = sub.add_parser(
        "report",
        help="calls, credits, errors and alerts per provider and key",
        description="Summarise the log per provider and key: a table on stdout, and with "
        "--html a self-contained page with charts (no external assets).",
    )
    report.add_argument("file", help="the audit log (rotated FILE.1, FILE.2... are read too)")
    report.add_argument("--html", metavar="PATH", help="also write an HTML report to PATH")
    report.add_argument(
        "--monthly-credits", type=_count, help="credits per month, for the burn alert"
    )
    report.set_defaults(handler=_run_report)
    usage = commands.add_parser(
        "usage",
        help="what each key did, from an audit log (the same as 'audit report')",
        description="Summarise an audit log per provider and key: calls, credits, errors, "
        "quota wait and alerts; a rich table in a terminal (the 'report' extra), plain text "
        "otherwise, and with --html a self-contained page with charts.",
    )
    usage.add_argument("file", help="the audit log (rotated FILE.1, FILE.2... are read too)")
    usage.add_argument("--html", metavar="PATH", help="also write an HTML report to PATH")
    usage.add_argument(
        "--monthly-credits", type=_count, help="credits per month, for the burn alert"
    )
    usage.set_defaults(handler=_run_report)


def _thresholds(args: argparse.Namespace) -> Thresholds:
    from ._alerts import Thresholds

    changes: dict[str, object] = {}
    if getattr(args, "rate_factor", None) is not None:
        changes["rate_factor"] = args.rate_factor
    if getattr(args, "auth_failures", None) is not None:
        changes["auth_failures"] = args.auth_failures
    if getattr(args, "idle_days", None) is not None:
        changes["idle_after"] = args.idle_days * 86400.0
    if getattr(args, "trade_hours", None) is not None:
        changes["trade_hours"] = args.trade_hours
    if getattr(args, "trade_symbols", None):
        changes["trade_symbols"] = frozenset(s.strip() for s in args.trade_symbols.split(","))
    if getattr(args, "monthly_credits", None) is not None:
        changes["monthly_credits"] = args.monthly_credits
    return Thresholds(**changes)  # type: ignore[arg-type]  # built from parsed options


def _records(args: argparse.Namespace, command: str) -> list[Attempt] | None:
    from ._audit import read_audit

    if not Path(args.file).is_file():
        sys.stderr.write(f"coinguard audit {command}: no such file: {args.file}\n")
        return None
    return list(read_audit(args.file))


def _run_check(args: argparse.Namespace) -> int:
    from ._alerts import Watch

    records = _records(args, "check")
    if records is None:
        return 2
    alerts = Watch(_thresholds(args), warn=False).check(records)
    for alert in alerts:
        if args.json:
            record = asdict(alert)
            del record["subject"]
            sys.stdout.write(json.dumps(record) + "\n")
        else:
            sys.stdout.write(f"{alert}\n")
    if not args.json:
        sys.stdout.write(f"{len(records)} attempts checked, {len(alerts)} alerts\n")
    return 1 if alerts else 0


def _run_report(args: argparse.Namespace) -> int:
    from ._alerts import Watch
    from ._report import html_report, text_report, usage_of

    records = _records(args, "report")
    if records is None:
        return 2
    alerts = Watch(_thresholds(args), warn=False).check(records)
    usage = usage_of(records, alerts)
    if usage.keys and sys.stdout.isatty() and importlib.util.find_spec("rich") is not None:
        from rich.console import Console

        from ._report import rich_report

        Console().print(rich_report(usage))
        for alert in (a for k in usage.keys for a in k.alerts):
            sys.stdout.write(f"  {alert}\n")
    else:
        sys.stdout.write(text_report(usage))
    if args.html:
        try:
            Path(args.html).write_text(html_report(usage), encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"coinguard audit report: cannot write {args.html}: {exc}\n")
            return 2
        sys.stdout.write(f"HTML report written to {args.html}\n")
    return 0
