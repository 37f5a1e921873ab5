"""Rate limits: 429 and Retry-After, header styles, endpoint costs and calendar windows."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime

import http_sf
import pytest

from coinguard.sandbox import ManualClock, SandboxConfig, Window, parse_limit
from coinguard.sandbox._limits import AccountLimiter


def _config(clock: ManualClock, *windows: Window, **kwargs) -> SandboxConfig:
    return SandboxConfig(clock=clock, windows=windows, **kwargs)


def test_limiter_admits_up_to_the_limit_then_gives_the_exact_wait() -> None:
    """The sliding log admits `limit` units per window and says exactly when room frees up."""
    lim = AccountLimiter((Window(3, 10.0),))
    assert [lim.take(1, t).admitted for t in (0.0, 2.0, 4.0)] == [True, True, True]
    refused = lim.take(1, 5.0)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(5.0)  # the request at 0.0 leaves at 10.0
    assert lim.take(1, 10.0).admitted
    assert lim.take(2, 10.5).retry_after == pytest.approx(3.5)  # needs 2.0 and 4.0 gone


def test_limiter_refusals_do_not_count() -> None:
    """A refused request takes nothing from the window."""
    lim = AccountLimiter((Window(1, 1.0),))
    assert lim.take(1, 0.0).admitted
    for _ in range(10):
        assert not lim.take(1, 0.5).admitted
    assert lim.take(1, 1.0).admitted


def test_limiter_cost_over_limit_never_fits() -> None:
    """A cost larger than a window's limit is refused with an infinite wait."""
    assert math.isinf(AccountLimiter((Window(2, 1.0),)).take(3, 0.0).retry_after)


def test_calendar_window_resets_on_the_boundary() -> None:
    """A calendar minute refills at the next multiple of 60 s, not 60 s after the first use."""
    lim = AccountLimiter((Window(2, 60.0, calendar=True),))
    assert lim.take(1, 118.0).admitted
    assert lim.take(1, 119.0).admitted
    assert lim.take(1, 119.5).retry_after == pytest.approx(0.5)
    assert lim.take(1, 120.0).admitted


def test_month_window_spans_the_utc_month() -> None:
    """Window.month refills on the first of the next UTC month."""
    lim = AccountLimiter((Window.month(1),))
    nov_30 = 1_701_388_800.0 - 3600  # 2023-11-30T23:00Z
    assert lim.take(1, nov_30).admitted
    assert lim.take(1, nov_30 + 1800).retry_after == pytest.approx(1800)


def test_parse_limit_forms() -> None:
    """CLI limit strings map to windows."""
    assert parse_limit("20/s") == Window(20, 1.0)
    assert parse_limit("600/min") == Window(600, 60.0)
    assert parse_limit("5/10s") == Window(5, 10.0)
    assert parse_limit("100/hour").seconds == 3600
    assert parse_limit("1000/month").by_month
    with pytest.raises(ValueError, match="bad limit"):
        parse_limit("lots")


def test_429_with_retry_after_seconds(coinguard_sandbox_factory, http, clock) -> None:
    """Over the window: 429 envelope, Retry-After in whole seconds rounded up, nothing counted."""
    sb = coinguard_sandbox_factory(_config(clock, Window(2, 10.0)))
    client = http(sb, sb.keys.read)
    assert [client.get("/tokens").status_code for _ in range(2)] == [200, 200]
    clock.advance(2.5)
    limited = client.get("/tokens")
    assert limited.status_code == 429
    assert limited.json()["success"] is False
    assert limited.headers["retry-after"] == "8"  # 7.5 s rounded up
    clock.advance(7.5)
    assert client.get("/tokens").status_code == 200
    assert sb.ledger.count(status=429) == 1
    assert sb.ledger.max_in_window(10.0) == 2


def test_429_with_retry_after_http_date(coinguard_sandbox_factory, http, clock) -> None:
    """retry_after="http-date" gives the moment the window has room, rounded up to the second."""
    sb = coinguard_sandbox_factory(_config(clock, Window(1, 10.0), retry_after="http-date"))
    client = http(sb, sb.keys.read)
    client.get("/tokens")
    clock.advance(0.5)
    moment = parsedate_to_datetime(client.get("/tokens").headers["retry-after"])
    assert moment.timestamp() == 1_700_000_010


def test_costs_per_endpoint(coinguard_sandbox_factory, http, clock) -> None:
    """An endpoint's cost is taken from the window; an unlisted one costs 1."""
    config = _config(clock, Window(5, 60.0), costs={"/daily-ohlcv": 2})
    sb = coinguard_sandbox_factory(config)
    client = http(sb, sb.keys.read)
    statuses = [client.get("/daily-ohlcv", params={"symbol": "BTC"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # 2 + 2, and a third would make 6
    assert client.get("/tokens").status_code == 200  # 1 unit still fits
    assert sb.ledger.max_in_window(60.0) == 5
    assert [e.cost for e in sb.ledger.entries()] == [2, 2, 2, 1]


def test_ietf_headers(coinguard_sandbox_factory, http, clock) -> None:
    """RateLimit-Policy and RateLimit are structured-field lists with one member per window."""
    sb = coinguard_sandbox_factory(_config(clock, Window(5, 1.0), Window(100, 60.0)))
    r = http(sb, sb.keys.read).get("/tokens")
    policy = http_sf.parse(r.headers["ratelimit-policy"].encode(), tltype="list")
    state = http_sf.parse(r.headers["ratelimit"].encode(), tltype="list")
    assert [(name, dict(params)) for name, params in policy] == [
        ("w1", {"q": 5, "w": 1}),
        ("w60", {"q": 100, "w": 60}),
    ]
    assert [(name, params["r"], params["t"]) for name, params in state] == [
        ("w1", 4, 1),
        ("w60", 99, 60),
    ]


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("delta", "10"),
        ("epoch", "1700000010"),
        ("epoch-ms", "1700000010000"),
        ("http-date", "Tue, 14 Nov 2023 22:13:30 GMT"),
    ],
)
def test_legacy_headers(coinguard_sandbox_factory, http, clock, form, expected) -> None:
    """Legacy X-RateLimit-* describe the tightest window, with the reset in the configured form."""
    config = _config(clock, Window(3, 10.0), Window(100, 60.0), header_style="legacy")
    sb = coinguard_sandbox_factory(SandboxConfig(**{**config.__dict__, "legacy_reset": form}))
    r = http(sb, sb.keys.read).get("/tokens")
    assert r.headers["x-ratelimit-limit"] == "3"
    assert r.headers["x-ratelimit-remaining"] == "2"
    assert r.headers["x-ratelimit-reset"] == expected
    assert "ratelimit" not in r.headers


def test_no_headers_style(coinguard_sandbox_factory, http, clock) -> None:
    """header_style="none" sends no rate-limit headers, but 429 still has Retry-After."""
    sb = coinguard_sandbox_factory(_config(clock, Window(1, 10.0), header_style="none"))
    client = http(sb, sb.keys.read)
    first, second = client.get("/tokens"), client.get("/tokens")
    assert not any(h.startswith(("ratelimit", "x-ratelimit")) for h in first.headers)
    assert second.status_code == 429
    assert second.headers["retry-after"] == "10"


def test_limits_are_per_account(coinguard_sandbox_factory, http, clock) -> None:
    """Exhausting the read key's account leaves the over-privileged key's account alone."""
    sb = coinguard_sandbox_factory(_config(clock, Window(1, 10.0)))
    assert http(sb, sb.keys.read).get("/tokens").status_code == 200
    assert http(sb, sb.keys.read).get("/tokens").status_code == 429
    assert http(sb, sb.keys.overprivileged).get("/tokens").status_code == 200


def test_401_and_403_do_not_count(coinguard_sandbox_factory, http, clock) -> None:
    """Requests refused by auth or scope never take quota."""
    sb = coinguard_sandbox_factory(_config(clock, Window(1, 10.0)))
    client = http(sb, sb.keys.read)
    for _ in range(3):
        assert client.get("/orders").status_code == 403
    assert client.get("/tokens").status_code == 200
