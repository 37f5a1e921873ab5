"""Four worker processes against the real sandbox share one audit log: every call is in it,
matching the sandbox's own ledger request for request, and the alert rules see a clean run
as clean and a 401 storm as exactly that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest

import coinguard
from coinguard.sandbox import Sandbox, SandboxConfig, Window

WORKER = textwrap.dedent(
    """
    import os, sys
    import coinguard
    path, calls = sys.argv[1], int(sys.argv[2])
    retry = coinguard.RetryPolicy(max_retries=8, backoff_initial=0.01, backoff_max=0.05)
    with coinguard.Client(provider="sandbox", base_url=os.environ["SB_URL"],
                          read_key=os.environ["SB_KEY"], audit=path, retry=retry) as client:
        for i in range(calls):
            try:
                client.get("/price", params={"symbol": "BTC"})
            except coinguard.AuthenticationError:
                pass
    """
)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _workers(sb: Sandbox, path: Path, key: str, count: int, calls: int) -> None:
    env = {**os.environ, "SB_URL": sb.base_url, "SB_KEY": key}
    env.pop("COINGUARD_AUDIT_LOG", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(calls)], env=env)
        for _ in range(count)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * count


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coinguard._cli", "audit", "check", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_four_processes_write_one_consistent_log(sb: Sandbox, tmp_path: Path) -> None:
    """4 x 30 reads: no torn line, one line per request the sandbox saw (same request ids),
    and no alert over the clean run; then a 401 storm raises exactly ``auth_failures``."""
    path = tmp_path / "pipeline.jsonl"
    _workers(sb, path, sb.keys.read, count=4, calls=30)
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a torn line would not parse
    fp = coinguard.fingerprint(sb.keys.read)
    seen = {e.request_id for e in sb.ledger.entries() if e.fingerprint == fp}
    journaled = {r["request_id"] for r in records if r["status"] is not None}
    assert journaled == seen
    assert len(records) == len(seen)  # nothing sent twice, nothing journaled twice
    assert sum(1 for r in records if r["outcome"] == "ok") == 4 * 30
    assert sb.keys.read not in path.read_text()
    clean = _check(path)
    assert (clean.returncode, clean.stdout) == (0, "")
    _workers(sb, path, "revoked-or-stolen-key-0123456789", count=1, calls=6)
    storm = _check(path)
    assert storm.returncode == 1
    assert [json.loads(line)["rule"] for line in storm.stdout.splitlines()] == ["auth_failures"]


def test_key_findings_are_counted_without_a_key_label(sb: Sandbox) -> None:
    """verify_key() on the sandbox's over-privileged read key: Metrics counts a ``can_trade``
    and a ``can_withdraw`` finding (and the age finding) by provider and scope only."""
    registry = prometheus_client.CollectorRegistry()
    key = sb.keys.overprivileged
    assert key is not None
    with (
        coinguard.Client(
            provider="sandbox",
            base_url=sb.base_url,
            read_key=key,
            observers=[coinguard.Metrics(registry)],
        ) as client,
        pytest.warns(coinguard.KeyAgeWarning),
        pytest.raises(coinguard.OverPrivilegedKeyError),
    ):
        client.verify_key()

    def found(finding: str) -> float | None:
        labels = {"provider": "sandbox", "scope": "read", "finding": finding}
        return registry.get_sample_value("coinguard_key_findings_total", labels)

    assert (found("can_trade"), found("can_withdraw")) == (1.0, 1.0)
    assert (found("age") or 0) >= 1
    exposition = prometheus_client.generate_latest(registry).decode()
    assert key not in exposition
    assert "fp:" not in exposition


PHASES = textwrap.dedent(
    """
    import os, sys
    import coinguard
    path = sys.argv[1]
    now = [1_795_780_800.0]
    with coinguard.Client(provider="sandbox", base_url=os.environ["SB_URL"],
                          read_key=os.environ["SB_KEY"], audit=path, clock=lambda: now[0],
                          quota=None) as client:
        for step, calls, route in ((4.0, 1000, "/price"), (0.1, 150, "/price"),
                                   (4.0, 1, "/daily-ohlcv")):
            for _ in range(calls):
                client.get(route, params={"symbol": "BTC"})
                now[0] += step
    """
)


def test_injected_anomalies_raise_exactly_their_alerts(tmp_path: Path) -> None:
    """Against the real sandbox, with the client's clock compressed (4 s per call): 67 minutes
    of clean reads raise nothing; then a burst (150 calls in 15 s) raises ``rate``, a route the
    key never used raises ``new_route``, and nothing else fires."""
    config = SandboxConfig(windows=(Window(100_000, 60.0),))
    path = tmp_path / "phases.jsonl"
    with Sandbox(config) as sb:
        env = {**os.environ, "SB_URL": sb.base_url, "SB_KEY": sb.keys.read}
        env.pop("COINGUARD_AUDIT_LOG", None)
        done = subprocess.run(
            [sys.executable, "-c", PHASES, str(path)], env=env, timeout=300, check=False
        )
        assert done.returncode == 0
        assert sb.ledger.count(fingerprint=coinguard.fingerprint(sb.keys.read)) == 1151
    records = list(coinguard.read_audit(path))
    clean = coinguard.Watch(warn=False).check(records[:1000])
    assert clean == []
    alerts = _check(path)
    assert alerts.returncode == 1
    rules = [json.loads(line)["rule"] for line in alerts.stdout.splitlines()]
    assert rules == ["rate", "new_route"]
