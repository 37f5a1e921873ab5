"""The built-in provider profiles: plans, hosts and headers, error codes, key checks.

Answers are the providers' documented shapes, served by ``httpx.MockTransport``; the sandbox
emulations of each provider (real sockets) are the next step of the providers work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import coinguard
from coinguard.providers import names

KEY = "CG-providers-test-key-0123"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("COINGUARD_PLAN", "COINGUARD_BASE_URL", "COINGUARD_READ_KEY"):
        monkeypatch.delenv(var, raising=False)


def _client(
    provider: str,
    answers: list[httpx.Response],
    seen: list[httpx.Request],
    **kw: Any,
) -> coinguard.Client:
    replies: Iterator[httpx.Response] = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(replies)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return coinguard.Client(
        provider=provider,
        read_key=KEY,
        http_client=http,
        clock=lambda: NOW,
        sleep=lambda s: None,
        quota_store=coinguard.MemoryStore(),
        **kw,
    )


def test_the_built_in_profiles() -> None:
    """Each named provider resolves, set to a plan when it has plans."""
    assert names() == [
        "binance",
        "coinbase",
        "coingecko",
        "coingecko-pro",
        "coinmarketcap",
        "generic",
        "kraken",
        "sandbox",
        "tokenmetrics",
    ]
    plans = {name: coinguard.get_provider(name).plan for name in names()}
    assert plans == {
        "binance": None,
        "coinbase": None,
        "coingecko": "demo",
        "coingecko-pro": "basic",
        "coinmarketcap": "basic",
        "generic": None,
        "kraken": None,
        "sandbox": None,
        "tokenmetrics": "advanced",
    }


@pytest.mark.parametrize(
    ("plan", "host", "header", "limits"),
    [
        ("demo", "api.coingecko.com", "x-cg-demo-api-key", [100, 10_000]),
        ("basic", "pro-api.coingecko.com", "x-cg-pro-api-key", [250, 100_000]),
        ("analyst", "pro-api.coingecko.com", "x-cg-pro-api-key", [500, 500_000]),
    ],
)
def test_a_coingecko_plan_picks_host_header_and_quota(
    plan: str, host: str, header: str, limits: list[int]
) -> None:
    """Demo and Pro keys look alike: the plan says which host and header a key goes to."""
    seen: list[httpx.Request] = []
    with _client("coingecko", [httpx.Response(200, json={})], seen, plan=plan) as client:
        client.get("/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"})
        status = client.quota
    assert seen[0].url.host == host
    assert seen[0].headers[header] == KEY
    assert status is not None
    assert [w.limit for w in status.windows] == limits


def test_the_plan_comes_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``COINGUARD_PLAN`` picks the plan of a provider that has plans."""
    monkeypatch.setenv("COINGUARD_PLAN", "premium")
    seen: list[httpx.Request] = []
    with _client("tokenmetrics", [], seen) as client:
        assert client.provider.plan == "premium"
        assert "plan='premium'" in repr(client)
    with _client("sandbox", [], seen, base_url="http://127.0.0.1:9/v2") as client:
        assert client.provider.plan is None  # no plans: the variable does not apply


def test_an_unknown_plan_names_the_plans() -> None:
    """A plan the provider does not have: a ConfigurationError listing its plans."""
    with pytest.raises(coinguard.ConfigurationError, match="advanced, premium, vip"):
        coinguard.Client(provider="tokenmetrics", read_key=KEY, plan="gold")


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        (10011, 400, "Demo key sent to the Pro root: pass plan='demo'"),
        (10010, 401, "Pro key sent to the demo root"),
    ],
)
def test_a_key_on_the_wrong_coingecko_host_says_which_plan(
    code: int, status: int, hint: str
) -> None:
    """10010/10011: a ConfigurationError that says which plan the key belongs to."""
    body = {"status": {"error_code": code, "error_message": "change your root URL"}}
    seen: list[httpx.Request] = []
    plan = "basic" if code == 10011 else "demo"
    with (
        _client("coingecko", [httpx.Response(status, json=body)], seen, plan=plan) as client,
        pytest.raises(coinguard.ConfigurationError, match=hint),
    ):
        client.get("/ping")
    assert len(seen) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            429,
            json={"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit"}},
            headers={"retry-after": "119"},
        ),
        httpx.Response(
            429, text="<html><title>Just a moment...</title></html>", headers={"retry-after": "9"}
        ),
    ],
    ids=["json", "cloudflare-html"],
)
def test_a_coingecko_429_is_a_rate_limit_whatever_its_body(answer: httpx.Response) -> None:
    """CoinGecko's JSON 429 and Cloudflare's HTML one are both RateLimitError with the wait."""
    seen: list[httpx.Request] = []
    with (
        _client("coingecko", [answer], seen, max_retries=0) as client,
        pytest.raises(coinguard.RateLimitError) as info,
    ):
        client.get("/ping")
    assert info.value.retry_after in (119.0, 9.0)


def _cmc(code: int, status: int) -> httpx.Response:
    return httpx.Response(
        status,
        json={"status": {"error_code": code, "error_message": "limit", "credit_count": 0}},
    )


def test_cmc_daily_limit_waits_for_the_utc_day_and_is_not_retried() -> None:
    """1009: retry_after runs to 00:00 UTC (12 h from noon), and nothing is re-sent."""
    seen: list[httpx.Request] = []
    with (
        _client("coinmarketcap", [_cmc(1009, 429)] * 4, seen) as client,
        pytest.raises(coinguard.RateLimitError, match="daily credit limit") as info,
    ):
        client.get("/v1/cryptocurrency/quotes/latest", params={"symbol": "BTC"})
    assert info.value.retry_after == 12 * 3600
    assert len(seen) == 1


def test_cmc_monthly_limit_is_final() -> None:
    """1010: never retried, ``final`` set, retry_after runs to the next UTC month."""
    seen: list[httpx.Request] = []
    with (
        _client("coinmarketcap", [_cmc(1010, 429)] * 4, seen) as client,
        pytest.raises(coinguard.RateLimitError) as info,
    ):
        client.get("/v1/cryptocurrency/listings/latest")
    assert info.value.final
    assert info.value.retry_after == (datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp() - NOW)
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (1001, 401, coinguard.AuthenticationError),
        (1002, 401, coinguard.AuthenticationError),
        (1003, 402, coinguard.PermissionDeniedError),
        (1006, 403, coinguard.PermissionDeniedError),
        (1007, 403, coinguard.AuthenticationError),
        (1011, 429, coinguard.RateLimitError),
    ],
)
def test_cmc_error_codes_map_onto_the_error_tree(
    code: int, status: int, error: type[Exception]
) -> None:
    """Each documented code becomes the coinguard error its meaning calls for."""
    seen: list[httpx.Request] = []
    with (
        _client("coinmarketcap", [_cmc(code, status)], seen, max_retries=0) as client,
        pytest.raises(error) as info,
    ):
        client.get("/v1/key/info")
    assert f"coinmarketcap error {code}" in str(info.value)


def test_cmc_error_code_on_http_200_is_an_error() -> None:
    """ "Check error_code even on HTTP 200": a 200 carrying 1006 is PermissionDeniedError."""
    seen: list[httpx.Request] = []
    with (
        _client("coinmarketcap", [_cmc(1006, 200)], seen) as client,
        pytest.raises(coinguard.PermissionDeniedError, match="does not include"),
    ):
        client.get("/v2/cryptocurrency/ohlcv/historical")
    ok = {"status": {"error_code": "0", "credit_count": 1}, "data": {"x": 1}}
    with _client("coinmarketcap", [httpx.Response(200, json=ok)], seen) as client:
        assert client.get("/v1/cryptocurrency/map")["data"] == {"x": 1}


KEY_INFO = {
    "data": {
        "plan": {
            "credit_limit_monthly": 10000,
            "credit_limit_monthly_reset_timestamp": "2026-12-01T00:00:00.000Z",
            "rate_limit_minute": 30,
        },
        "usage": {
            "current_minute": {"requests_made": 3, "requests_left": 27},
            "current_day": {"credits_used": 120, "credits_left": None},
            "current_month": {"credits_used": 7850, "credits_left": 2150},
        },
    },
    "status": {"error_code": 0, "credit_count": 0},
}
CG_KEY = {
    "plan": "Analyst",
    "rate_limit_request_per_minute": 500,
    "monthly_call_credit": 500000,
    "current_total_monthly_calls": 32,
    "current_remaining_monthly_calls": 499968,
}


@pytest.mark.parametrize(
    ("provider", "plan", "answer", "path", "expect"),
    [
        ("coinmarketcap", None, KEY_INFO, "/v1/key/info", "this month: 7,850 of 10,000 used"),
        ("coingecko", "analyst", CG_KEY, "/api/v3/key", "this month: 32 of 500,000 used"),
    ],
)
def test_verify_key_reports_plan_and_usage(
    provider: str, plan: str | None, answer: dict[str, Any], path: str, expect: str
) -> None:
    """The usage route's figures come back in the key report; no privilege finding."""
    seen: list[httpx.Request] = []
    kw = {"plan": plan} if plan else {}
    with _client(provider, [httpx.Response(200, json=answer)], seen, **kw) as client:
        (report,) = client.verify_key()
    assert seen[0].url.path == path
    assert report.findings == ()
    assert [str(u) for u in report.permissions.usage if str(u).startswith(expect)]


def test_token_metrics_verify_says_what_it_could_not_check() -> None:
    """No key-info route: one cheap read shows the key works, and the report says the scopes
    were not checked instead of failing."""
    seen: list[httpx.Request] = []
    body = {"success": True, "message": "ok", "length": 1, "data": [{"token_id": 3375}]}
    with _client("tokenmetrics", [httpx.Response(200, json=body)], seen) as client:
        (report,) = client.verify_key()
    assert str(seen[0].url).endswith("/v2/tokens?limit=1")
    assert "scopes and usage were not checked" in report.permissions.note


def test_doctor_prints_plan_and_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    """``coinguard doctor --provider coinmarketcap --verify`` shows what key/info said."""
    from coinguard._doctor import diagnose, render

    real = httpx.Client

    def mocked(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(lambda r: httpx.Response(200, json=KEY_INFO))
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "Client", mocked)
    monkeypatch.setenv("CMC_PRO_API_KEY", "0b5b7f2e-5c2a-4d1e-9d0e-cmc-key")
    report = diagnose(provider="coinmarketcap", verify=True)
    text = render(report)
    assert "coinmarketcap (basic plan)" in text
    assert "usage        this month: 7,850 of 10,000 used" in text
    assert json.dumps(report.to_dict())  # JSON-ready


def test_every_profile_reads_like_a_form() -> None:
    """Every provider module has a docstring that says where its facts come from."""
    from coinguard import providers

    for module in (providers.tokenmetrics, providers.coingecko, providers.coinmarketcap):
        assert "Sourced:" in (module.__doc__ or "")
        assert isinstance(module.PROFILE, coinguard.Provider)


def test_a_plan_after_another_falls_back_to_the_profile_not_the_previous_plan() -> None:
    """Demo after a Pro plan: the demo host, header and variable, not the Pro ones kept."""
    demo = coinguard.get_provider("coingecko").with_plan("basic").with_plan("demo")
    assert demo.base_url == "https://api.coingecko.com/api/v3"
    assert demo.auth == coinguard.HeaderKey("x-cg-demo-api-key")
    assert demo.read_key_env == "COINGECKO_DEMO_API_KEY"
    seen: list[httpx.Request] = []
    pro = coinguard.get_provider("coingecko").with_plan("analyst")
    with _client("coingecko", [], seen, plan="demo") as client:
        assert client.provider.base_url == demo.base_url
    assert coinguard.Client(provider=pro, read_key=KEY, plan="demo").provider.auth == demo.auth


@pytest.mark.parametrize("status", [429, 200])
def test_a_daily_limit_named_by_the_body_holds_every_worker_until_the_day_ends(
    status: int,
) -> None:
    """1009 (on a 429 or a 200): the penalty box holds the key for the 12 hours to 00:00 UTC,
    so the next call is refused locally instead of reaching the provider again."""
    seen: list[httpx.Request] = []
    with _client("coinmarketcap", [_cmc(1009, status)] * 3, seen, max_wait=5.0) as client:
        with pytest.raises(coinguard.RateLimitError):
            client.get("/v1/cryptocurrency/quotes/latest")
        status_now = client.quota
        with pytest.raises(coinguard.QuotaExceededError):
            client.get("/v1/cryptocurrency/quotes/latest")
    assert len(seen) == 1
    assert status_now is not None
    assert status_now.blocked_until is not None
    assert status_now.blocked_until.timestamp() - NOW == pytest.approx(12 * 3600)


@pytest.mark.parametrize("code", [1006.0, [1006], {"n": 1006}])
def test_an_error_code_of_an_odd_type_is_not_taken_for_success(code: object) -> None:
    """A float, list or object where the code should be: an error, never returned as data."""
    body = {"status": {"error_code": code, "credit_count": 0}, "data": {"x": 1}}
    seen: list[httpx.Request] = []
    with (
        _client("coinmarketcap", [httpx.Response(200, json=body)], seen) as client,
        pytest.raises(coinguard.APIStatusError),
    ):
        client.get("/v1/cryptocurrency/map")


def test_a_store_url_password_is_masked_in_reprs_and_errors() -> None:
    """``redis://:pw@...?password=...``: Settings' repr and a bad-URL error show ``***``."""
    url = "redis://:Hunter2RedisPw@127.0.0.1:6421/0?password=Hunter3&socket_timeout=abc"
    assert "Hunter" not in repr(coinguard.Settings(quota_store=url))
    with pytest.raises(coinguard.ConfigurationError) as info:
        coinguard.RedisStore(url)
    assert "Hunter" not in str(info.value)


def test_a_plan_keeps_a_host_and_header_the_caller_changed() -> None:
    """A profile pointed at a proxy keeps the proxy's host and header whatever plan is set
    (``plan=`` or ``COINGUARD_PLAN``): the key never goes to the vendor behind its back."""
    import dataclasses

    proxied = dataclasses.replace(
        coinguard.get_provider("coingecko"),
        base_url="https://proxy.example.com/cg",
        auth=coinguard.HeaderKey("x-proxy-key"),
    )
    for plan in ("demo", "basic", "analyst"):
        chosen = proxied.with_plan(plan)
        assert (chosen.base_url, chosen.auth.name) == (
            "https://proxy.example.com/cg",
            "x-proxy-key",
        )
    assert [w.limit for w in proxied.with_plan("analyst").quota.windows] == [500, 500_000]
