"""Parsing what the server says: rate-limit headers, Retry-After, credit counts."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from coinguard._headers import (
    ServerWindow,
    parse_reset,
    parse_retry_after,
    parse_server_quota,
    retry_after,
)

NOW = 1_800_000_000.0


def test_ietf_policy_and_remaining() -> None:
    """RateLimit-Policy and RateLimit are joined by policy name."""
    q = parse_server_quota(
        {
            "RateLimit-Policy": '"permin";q=50;w=60, "day";q=5000;w=86400',
            "RateLimit": '"permin";r=12;t=30, "day";r=4000;t=3600',
        },
        now=NOW,
    )
    assert q.windows == (
        ServerWindow(limit=50, remaining=12, reset=30.0, seconds=60.0, name="permin"),
        ServerWindow(limit=5000, remaining=4000, reset=3600.0, seconds=86400.0, name="day"),
    )


def test_legacy_headers() -> None:
    """X-RateLimit-* give limit, remaining and reset without a window length."""
    q = parse_server_quota(
        {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "20"},
        now=NOW,
    )
    assert q.windows == (ServerWindow(limit=100, remaining=7, reset=20.0, name="x-ratelimit"),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20", 20.0),
        ("0", 0.0),
        (str(int(NOW) + 45), 45.0),
        (str(int(NOW * 1000) + 2500), 2.5),
        ("Fri, 15 Jan 2027 08:01:00 GMT", 60.0),
        (str(int(NOW) - 100), 0.0),
    ],
)
def test_reset_conventions(value: str, expected: float) -> None:
    """Delta, epoch seconds, epoch milliseconds and HTTP dates are told apart by magnitude."""
    assert parse_reset(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": "Fri, 15 Jan 2027 08:00:30 GMT"}, 30.0),
        ({"retry-after-ms": "1500", "Retry-After": "2"}, 1.5),
        ({"RETRY-AFTER": " 3 "}, 3.0),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float) -> None:
    """Retry-After as seconds or a date, and retry-after-ms, in any header case."""
    assert parse_server_quota(headers, now=NOW).retry_after == pytest.approx(expected)


def test_binance_weight() -> None:
    """X-MBX-USED-WEIGHT-1M is the weight used in the clock minute."""
    q = parse_server_quota({"X-MBX-USED-WEIGHT-1M": "1180", "x-mbx-used-weight": "1180"}, now=NOW)
    assert q.windows == (ServerWindow(used=1180, seconds=60.0, name="x-mbx-used-weight-1m"),)


def test_coinmarketcap_credit_count() -> None:
    """The credits charged come from status.credit_count in the body."""
    body = {"status": {"error_code": 0, "credit_count": 3}, "data": []}
    assert parse_server_quota({}, body, now=NOW).cost == 3


GARBAGE: list[tuple[dict[str, Any], Any]] = [
    ({"Retry-After": "NaN"}, None),
    ({"Retry-After": "-5"}, None),
    ({"Retry-After": "1e400"}, None),
    ({"Retry-After": ""}, None),
    ({"Retry-After": "Blursday, 99 Foo 2027"}, None),
    ({"retry-after-ms": "inf"}, None),
    ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Limit": "5"}, None),
    ({"X-RateLimit-Remaining": "1.5"}, None),
    ({"X-RateLimit-Remaining": "lots"}, None),
    ({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "nan"}, None),
    ({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "-7"}, None),
    ({"RateLimit": '"a";r=1;;', "RateLimit-Policy": '"a";q=5;w=1'}, None),
    ({"RateLimit": '"a";r=NaN'}, None),
    ({"RateLimit": '"a";r=-3;t=1'}, None),
    ({"RateLimit": '"a";r=?1;t=1'}, None),
    ({"RateLimit": '"a";r=1.5'}, None),
    ({"RateLimit": "(1 2);r=3", "RateLimit-Policy": "\u00e9"}, None),
    ({"RateLimit": '"a";r=999999999999999'}, None),
    ({"x-mbx-used-weight-1m": "many"}, None),
    ({"x-mbx-used-weight-99999999d": "5"}, None),
    ({}, {"status": "nope"}),
    ({}, {"status": {"credit_count": "3x"}}),
    ({}, {"status": {"credit_count": True}}),
    ({}, ["not", "a", "dict"]),
    ({}, b"\xff"),
]


@pytest.mark.parametrize(("headers", "body"), GARBAGE)
def test_garbage_is_ignored(headers: dict[str, Any], body: Any) -> None:
    """Malformed values yield no reading, never an exception."""
    q = parse_server_quota(headers, body, now=NOW)
    assert q.retry_after is None
    assert q.cost is None
    assert all(w.remaining is not None or w.used is not None for w in q.windows)
    for w in q.windows:
        assert w.reset is None or w.reset >= 0
        assert w.remaining is None or 0 <= w.remaining <= 10**12


def test_non_mapping_headers_are_ignored() -> None:
    """Headers that are not a mapping of strings give an empty reading."""
    assert parse_server_quota(None, now=NOW).windows == ()  # type: ignore[arg-type]


def test_retry_after_none() -> None:
    """A missing header is None."""
    assert parse_retry_after(None, now=NOW) is None
    assert parse_reset(None, now=NOW) is None


RA_NOW = 1_800_000_000.0
_RA_DATE = format_datetime(datetime.fromtimestamp(RA_NOW + 120, timezone.utc), usegmt=True)
_RA_PAST = format_datetime(datetime.fromtimestamp(RA_NOW - 120, timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": _RA_DATE}, 120.0),
        ({"Retry-After": _RA_PAST}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "junk", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "NaN"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "Mon, 99 Foo 2026"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_table(headers: dict[str, str], expected: float | None) -> None:
    """Every Retry-After form is understood; garbage gives None, never an exception."""
    got = retry_after(headers, RA_NOW)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert math.isclose(got, expected, abs_tol=1.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": str(463 * 86400)},
        {"Retry-After": "99999999999"},
        {"retry-after-ms": str(463 * 86400 * 1000)},
        {
            "Retry-After": format_datetime(
                datetime.fromtimestamp(RA_NOW + 463 * 86400, timezone.utc), usegmt=True
            )
        },
    ],
)
def test_a_very_long_retry_after_is_kept_not_dropped(headers: dict[str, str]) -> None:
    """A Retry-After beyond any cap is reported as asked, so the caller is not retried early."""
    got = retry_after(headers, RA_NOW)
    assert got is not None
    assert got > 400 * 86400
