"""A usage report from audit records: per provider and key, calls and credits over time,
errors, quota waits, routes and alerts; as text for a terminal or one self-contained HTML page
(inline SVG charts, no script, no external asset) to attach to a ticket.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._alerts import Alert
from ._observe import Attempt

__all__ = ["KeyUsage", "Usage", "html_report", "rich_report", "text_report", "usage_of"]


@dataclass
class KeyUsage:
    """What one key of one provider did."""

    provider: str
    key_fp: str
    key_source: str
    first: float
    last: float
    calls: int = 0
    credits: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    quota_wait: float = 0.0
    calls_over_time: Counter[int] = field(default_factory=Counter)
    credits_over_time: Counter[int] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    #: the most credits spent in any rolling window of that many seconds (quota use per window)
    peaks: dict[float, int] = field(default_factory=dict)
    spent: list[tuple[float, int]] = field(default_factory=list, repr=False)


#: the windows the report gives each key's peak use of: a minute, an hour and a day
PEAK_WINDOWS = {60.0: "peak/min", 3600.0: "peak/h", 86400.0: "peak/day"}


def _peak(spent: list[tuple[float, int]], seconds: float) -> int:
    """The most cost inside any half-open span ``[t, t + seconds)`` (two pointers)."""
    best = total = lo = 0
    for t, cost in spent:
        total += cost
        while spent[lo][0] + seconds <= t:
            total -= spent[lo][1]
            lo += 1
        best = max(best, total)
    return best


@dataclass
class Usage:
    """Every key's usage, and the time buckets (``step`` seconds from ``start``)."""

    keys: list[KeyUsage]
    start: float
    step: float
    buckets: int
    records: int


def _step(span: float) -> float:
    for step in (60.0, 300.0, 3600.0, 6 * 3600.0, 86400.0):
        if span / step <= 48:
            return step
    return 7 * 86400.0


def usage_of(records: Iterable[Attempt], alerts: Sequence[Alert] = ()) -> Usage:
    """Sum up attempts per provider and key."""
    items = list(records)
    if not items:
        return Usage([], 0.0, 3600.0, 0, 0)
    first = min(r.started for r in items)
    last = max(r.started for r in items)
    step = _step(last - first)
    start = first - first % step
    keys: dict[tuple[str, str], KeyUsage] = {}
    for r in items:
        who = (r.provider, r.key_fp or "-")
        usage = keys.get(who)
        if usage is None:
            usage = keys[who] = KeyUsage(
                r.provider, who[1], r.key_source or "-", r.started, r.started
            )
        usage.first, usage.last = min(usage.first, r.started), max(usage.last, r.started)
        usage.calls += 1
        usage.credits += r.cost or 0
        usage.quota_wait += r.quota_wait
        usage.routes[f"{r.method} {r.route}"] += 1
        if r.outcome != "ok":
            usage.errors[r.outcome] += 1
        bucket = int((r.started - start) // step)
        usage.calls_over_time[bucket] += 1
        usage.credits_over_time[bucket] += r.cost or 0
        usage.spent.append((r.started, r.cost or 0))
    for usage in keys.values():
        usage.spent.sort()
        usage.peaks = {seconds: _peak(usage.spent, seconds) for seconds in PEAK_WINDOWS}
    for alert in alerts:
        usage = keys.get((alert.provider, alert.key_fp or "-"))
        if usage is not None:
            usage.alerts.append(alert)
    buckets = int((last - start) // step) + 1
    ordered = sorted(keys.values(), key=lambda k: (k.provider, -k.calls))
    return Usage(ordered, start, step, buckets, len(items))


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")


_HEADER = (
    "provider", "key", "calls", "credits", *PEAK_WINDOWS.values(), "errors", "quota wait",
    "first", "last",
)  # fmt: skip


def _rows(usage: Usage) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for k in usage.keys:
        errors = ", ".join(f"{n} {what}" for what, n in k.errors.most_common()) or "-"
        rows.append(
            (
                k.provider,
                k.key_fp,
                str(k.calls),
                str(k.credits),
                *(str(k.peaks[seconds]) for seconds in PEAK_WINDOWS),
                errors,
                f"{k.quota_wait:.1f}s",
                _when(k.first),
                _when(k.last),
            )
        )
    return rows


def text_report(usage: Usage) -> str:
    """The report as a plain-text table, one row per key, then its alerts."""
    if not usage.keys:
        return "no audit records\n"
    header = _HEADER
    rows = [header, *_rows(usage)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"{usage.records} attempts, {len(usage.keys)} keys"]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    alerts = [a for k in usage.keys for a in k.alerts]
    lines.append(f"alerts: {len(alerts)}")
    lines += [f"  {a}" for a in alerts]
    return "\n".join(lines) + "\n"


def rich_report(usage: Usage) -> Any:
    """The report as a ``rich`` table (the ``report`` extra), for a terminal; its caption
    counts the alerts, which follow it as lines."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"coinguard usage: {usage.records} attempts, {len(usage.keys)} keys",
        caption=f"alerts: {sum(len(k.alerts) for k in usage.keys)}",
    )
    for i, name in enumerate(_HEADER):
        table.add_column(
            name, justify="left" if i < 2 or name in ("errors", "first", "last") else "right"
        )
    for row in _rows(usage):
        table.add_row(*(Text(cell) for cell in row))  # audit fields are text, never markup
    return table


def _chart(title: str, series: str, values: Sequence[int], usage: Usage) -> str:
    """A bar chart as inline SVG; each bar carries its bucket's time and value."""
    width, height, pad = 640, 160, 30
    top = max(values, default=0) or 1
    bar = (width - 2 * pad) / max(len(values), 1)
    bars = []
    for i, value in enumerate(values):
        h = (height - 2 * pad) * value / top
        x = pad + i * bar
        y = height - pad - h
        when = _when(usage.start + i * usage.step)
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
            f'data-time="{when}" data-value="{value}"><title>{when}: {value}</title></rect>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-series="{series}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'class="axis"/><text x="{pad}" y="{pad - 10}">max {top}</text>'
        f"{''.join(bars)}</svg></figure>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
svg.chart rect { fill: #3b6ea8; }
svg.chart[data-series="credits"] rect { fill: #a8743b; }
svg.chart .axis { stroke: #888; }
svg.chart text { font-size: 11px; fill: #555; }
.alert { color: #a00; }
"""


def html_report(usage: Usage, *, title: str = "coinguard usage") -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{usage.records} attempts, {len(usage.keys)} keys; bars per "
        f"{usage.step / 60:g} minutes from {_when(usage.start)} UTC.</p>",
    ]
    for k in usage.keys:
        calls = [k.calls_over_time.get(i, 0) for i in range(usage.buckets)]
        credits = [k.credits_over_time.get(i, 0) for i in range(usage.buckets)]
        errors = "".join(
            f"<tr><td>{e(what)}</td><td>{n}</td></tr>" for what, n in k.errors.most_common()
        )
        routes = "".join(
            f"<tr><td>{e(route)}</td><td>{n}</td></tr>" for route, n in k.routes.most_common(10)
        )
        alerts = "".join(
            f'<li class="alert">{e(a.at)} <b>{e(a.rule)}</b>: {e(a.message)}</li>' for a in k.alerts
        )
        parts += [
            f'<section class="key" data-provider="{e(k.provider)}" data-key="{e(k.key_fp)}">',
            f"<h2>{e(k.provider)} &middot; {e(k.key_fp)}</h2>",
            f"<p>source {e(k.key_source)}; {k.calls} calls, {k.credits} credits, "
            f"{k.quota_wait:.1f}s waiting for quota; {_when(k.first)} to {_when(k.last)} UTC</p>",
            _chart("calls", "calls", calls, usage),
            _chart("credits", "credits", credits, usage),
            f"<table><tr><th>errors</th><th>count</th></tr>{errors}</table>" if errors else "",
            f"<table><tr><th>route</th><th>calls</th></tr>{routes}</table>",
            f"<h3>alerts ({len(k.alerts)})</h3><ul>{alerts}</ul>",
            "</section>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
