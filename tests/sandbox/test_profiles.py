"""The provider emulations, sans-I/O: CoinGecko's roots, errors, limits and credits, and
CoinMarketCap's error table, limits, credit rule and usage route (a manual clock, no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coinguard.providers import coingecko, coinmarketcap
from coinguard.sandbox import Faults, ManualClock, SandboxConfig
from coinguard.sandbox._app import App, Request
from coinguard.sandbox._coingecko import MESSAGES, RATE_LIMIT
from coinguard.sandbox._coinmarketcap import ERRORS, credits_for
from coinguard.sandbox._wire import Reply

START = 1_800_000_000.0  # 2027-01-15, mid-month


def _app(profile: str, **kw: Any) -> tuple[App, ManualClock]:
    clock = ManualClock(START)
    return App(SandboxConfig(profile=profile, clock=clock, **kw)), clock  # type: ignore[arg-type]


def _get(app: App, target: str, headers: dict[str, str] | None = None) -> Reply:
    return app.handle(Request("GET", target, headers or {}))


def _json(reply: Reply) -> Any:
    return json.loads(reply.body)


def _cg(app: App, target: str, *, pro: bool = False) -> Reply:
    assert app.keys.pro is not None
    if pro:
        return _get(app, "/pro/api/v3" + target, {"x-cg-pro-api-key": app.keys.pro})
    return _get(app, "/api/v3" + target, {"x-cg-demo-api-key": app.keys.read})


def _cmc(app: App, target: str) -> Reply:
    return _get(app, target, {"x-cmc_pro_api_key": app.keys.read})


# -- configuration ---------------------------------------------------------------------------


def test_profile_is_checked_and_defaults_to_token_metrics() -> None:
    """An unknown profile is refused; the default serves the Token-Metrics-style API."""
    with pytest.raises(ValueError, match="profile"):
        SandboxConfig(profile="bitstamp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="plan"):
        SandboxConfig(plan="basic")
    assert SandboxConfig().profile == "tokenmetrics"


def test_unknown_plan_names_the_plans() -> None:
    """A plan the client's table does not have is refused, listing the ones it has."""
    with pytest.raises(ValueError, match="analyst"):
        _app("coingecko", plan="gold")
    with pytest.raises(ValueError, match="hobbyist"):
        _app("coinmarketcap", plan="gold")


# -- CoinGecko -------------------------------------------------------------------------------


def test_coingecko_keys_share_the_cg_prefix() -> None:
    """Demo and Pro keys both start with CG-, as CoinGecko's do, and differ."""
    app, _ = _app("coingecko")
    assert app.keys.read.startswith("CG-")
    assert app.keys.pro is not None
    assert app.keys.pro.startswith("CG-")
    assert app.keys.read != app.keys.pro


def test_coingecko_limits_come_from_the_client_plans() -> None:
    """The emulated per-minute limits and credits are the client's plan figures."""
    app, _ = _app("coingecko", plan="analyst")
    assert app.keys.pro is not None
    body = _json(_cg(app, "/key", pro=True))
    analyst = coingecko.PLANS["analyst"].quota
    assert analyst is not None
    assert [body["rate_limit_request_per_minute"], body["monthly_call_credit"]] == [
        w.limit for w in analyst.windows
    ]
    assert body["plan"] == "Analyst"


def test_coingecko_error_codes_are_the_clients() -> None:
    """Every code the emulation answers is one the client's profile maps."""
    assert set(MESSAGES) <= set(coingecko.ERROR_CODES)
    assert MESSAGES["10011"][0] == 400
    assert MESSAGES["10010"][0] == 401


def test_coingecko_missing_key_is_10002_nested() -> None:
    """No key: HTTP 401 with 10002 in CoinGecko's nested error shape."""
    app, _ = _app("coingecko")
    reply = _get(app, "/api/v3/ping")
    assert reply.status == 401
    assert _json(reply)["error"]["status"]["error_code"] == 10002


def test_coingecko_wrong_root_codes() -> None:
    """A Pro key on the Demo root is 401/10010; a Demo key on the Pro root 400/10011."""
    app, _ = _app("coingecko")
    assert app.keys.pro is not None
    pro_on_demo = _get(app, "/api/v3/ping", {"x-cg-pro-api-key": app.keys.pro})
    demo_on_pro = _get(app, "/pro/api/v3/ping", {"x-cg-demo-api-key": app.keys.read})
    assert (pro_on_demo.status, _json(pro_on_demo)["status"]["error_code"]) == (401, 10010)
    assert (demo_on_pro.status, _json(demo_on_pro)["status"]["error_code"]) == (400, 10011)
    assert app.ledger.credits() == 0


def test_coingecko_query_key_works_and_is_never_recorded() -> None:
    """The x_cg_demo_api_key query form authenticates; the ledger keeps no trace of it."""
    app, _ = _app("coingecko")
    reply = _get(app, f"/api/v3/ping?x_cg_demo_api_key={app.keys.read}")
    assert reply.status == 200
    leaked = app.keys.read in repr(app.ledger.entries())
    assert not leaked, "the ledger holds the key"


def test_coingecko_key_route_is_pro_only() -> None:
    """GET /key on the Demo root answers 10005 (plan does not include the endpoint)."""
    app, _ = _app("coingecko")
    assert _json(_cg(app, "/key"))["status"]["error_code"] == 10005


def test_coingecko_minute_limit_429_with_retry_after() -> None:
    """The 101st Demo call in a minute is a 429 in CoinGecko's shape; a minute later, room."""
    app, clock = _app("coingecko")
    assert all(_cg(app, "/ping").status == 200 for _ in range(100))
    clock.advance(30)
    refused = _cg(app, "/ping")
    assert refused.status == 429
    assert _json(refused) == {"status": {"error_code": 429, "error_message": RATE_LIMIT}}
    assert dict(refused.headers)["retry-after"] == "30"
    clock.advance(30)
    assert _cg(app, "/ping").status == 200
    assert app.ledger.violations() == []


def test_coingecko_429_as_cloudflare_html() -> None:
    """With cloudflare_429_rate=1 the 429 is an HTML page, still with retry-after."""
    app, _ = _app("coingecko", faults=Faults(cloudflare_429_rate=1.0))
    for _ in range(100):
        _cg(app, "/ping")
    refused = _cg(app, "/ping")
    headers = dict(refused.headers)
    assert refused.status == 429
    assert headers["content-type"].startswith("text/html")
    assert b"Cloudflare" in refused.body
    assert "retry-after" in headers


def test_coingecko_only_200_spends_credits_and_key_reports_them() -> None:
    """A 400 and a 404 bill nothing; /key counts exactly the 200s (and is free itself)."""
    app, _ = _app("coingecko")
    assert _cg(app, "/simple/price?ids=bitcoin&vs_currencies=usd", pro=True).status == 200
    assert _cg(app, "/simple/price?ids=bitcoin", pro=True).status == 400
    assert _cg(app, "/coins/nope/ohlc?vs_currency=usd", pro=True).status == 404
    assert _cg(app, "/ping", pro=True).status == 200
    body = _json(_cg(app, "/key", pro=True))
    assert body["current_total_monthly_calls"] == 2 == app.ledger.credits()
    assert body["api_key_current_total_monthly_calls"] == 2
    assert body["current_remaining_monthly_calls"] == body["monthly_call_credit"] - 2


def test_coingecko_monthly_credits_run_out() -> None:
    """With 3 credits a month the 4th data call is a 429 that bills nothing."""
    app, _ = _app("coingecko", monthly_credits=3)
    assert [_cg(app, "/ping").status for _ in range(4)] == [200, 200, 200, 429]
    assert app.ledger.credits() == 3
    assert app.ledger.entries()[-1].outcome == "month-limit"


def test_coingecko_simple_price_and_markets_pages() -> None:
    """Prices per id and currency; /coins/markets pages are disjoint and ranked."""
    app, _ = _app("coingecko")
    prices = _json(_cg(app, "/simple/price?ids=bitcoin,nope&vs_currencies=usd,eur,btc"))
    assert list(prices) == ["bitcoin"]
    assert prices["bitcoin"]["btc"] == 1.0
    first = _json(_cg(app, "/coins/markets?vs_currency=usd&per_page=20&page=1"))
    second = _json(_cg(app, "/coins/markets?vs_currency=usd&per_page=20&page=2"))
    ranks = [row["market_cap_rank"] for row in first + second]
    assert ranks == list(range(1, 41))
    caps = [row["market_cap"] for row in first + second]
    assert caps == sorted(caps, reverse=True)


def test_coingecko_ohlc_candles_are_consistent() -> None:
    """OHLC rows are [ms, o, h, l, c] with low <= open, close <= high, oldest first."""
    app, _ = _app("coingecko")
    rows = _json(_cg(app, "/coins/bitcoin/ohlc?vs_currency=usd&days=7"))
    assert len(rows) >= 7
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert all(r[3] <= min(r[1], r[4]) and max(r[1], r[4]) <= r[2] for r in rows)


# -- CoinMarketCap ---------------------------------------------------------------------------


def test_cmc_error_table_matches_the_clients() -> None:
    """The emulated codes are exactly the client's; every rate-limit code answers 429."""
    assert set(ERRORS) == set(coinmarketcap.ERROR_CODES)
    for code, (status, _message) in ERRORS.items():
        assert (status == 429) == (coinmarketcap.ERROR_CODES[code].kind == "rate_limit"), code


def test_cmc_credit_rule() -> None:
    """1 credit per 100 data points (rounded up), +1 per extra convert currency."""
    assert [credits_for(n) for n in (1, 100, 101, 200, 201, 5000)] == [1, 1, 2, 2, 3, 50]
    assert credits_for(10, converts=3) == 3


def test_cmc_missing_and_invalid_keys() -> None:
    """No key: 401/1002; an unknown key: 401/1001; both bodies carry credit_count 0."""
    app, _ = _app("coinmarketcap")
    missing = _get(app, "/v1/key/info")
    invalid = _get(app, "/v1/key/info", {"x-cmc_pro_api_key": "0" * 36})
    for reply, code in ((missing, 1002), (invalid, 1001)):
        status = _json(reply)["status"]
        assert (reply.status, status["error_code"], status["credit_count"]) == (401, code, 0)
        assert set(status) >= {"timestamp", "error_code", "error_message", "elapsed"}


def test_cmc_success_status_reports_credits_charged() -> None:
    """A 250-row listing says credit_count 3; the ledger bills the same."""
    app, _ = _app("coinmarketcap")
    body = _json(_cmc(app, "/v1/cryptocurrency/listings/latest?start=1&limit=250"))
    assert body["status"]["error_code"] == 0
    assert body["status"]["credit_count"] == 3 == app.ledger.credits()
    assert len(body["data"]) == 250
    assert [c["cmc_rank"] for c in body["data"][:3]] == [1, 2, 3]


def test_cmc_quotes_by_symbol_and_unknown_symbol() -> None:
    """Quotes keyed by symbol cost 1 credit; an unknown symbol is a free 400."""
    app, _ = _app("coinmarketcap")
    body = _json(_cmc(app, "/v1/cryptocurrency/quotes/latest?symbol=BTC,ETH&convert=USD,EUR"))
    assert set(body["data"]) == {"BTC", "ETH"}
    assert set(body["data"]["BTC"]["quote"]) == {"USD", "EUR"}
    assert body["status"]["credit_count"] == 2
    bad = _cmc(app, "/v1/cryptocurrency/quotes/latest?symbol=NOPE")
    assert bad.status == 400
    assert _json(bad)["status"]["credit_count"] == 0
    assert app.ledger.credits() == 2


def test_cmc_minute_limit_1008() -> None:
    """Basic allows 30 requests a minute (the client's figure): the 31st is 429/1008."""
    app, clock = _app("coinmarketcap")
    assert all(_cmc(app, "/v1/key/info").status == 200 for _ in range(30))
    refused = _cmc(app, "/v1/key/info")
    assert (refused.status, _json(refused)["status"]["error_code"]) == (429, 1008)
    clock.advance(60)
    assert _cmc(app, "/v1/key/info").status == 200
    assert app.ledger.violations() == []


def test_cmc_daily_and_monthly_caps() -> None:
    """Daily cap 2: the call that would pass it is 1009; monthly cap 3 gives 1010 after a day."""
    app, clock = _app("coinmarketcap", daily_credits=2, monthly_credits=3)
    quote = "/v1/cryptocurrency/quotes/latest?symbol=BTC"
    assert [_cmc(app, quote).status for _ in range(2)] == [200, 200]
    assert _json(_cmc(app, quote))["status"]["error_code"] == 1009
    clock.advance(86_400)
    assert _cmc(app, quote).status == 200
    assert _json(_cmc(app, quote))["status"]["error_code"] == 1010
    assert app.ledger.credits() == 3


def test_cmc_plan_gate_1006() -> None:
    """Basic does not include historical listings: 403/1006; a Standard key gets them."""
    basic, _ = _app("coinmarketcap")
    refused = _cmc(basic, "/v1/cryptocurrency/listings/historical")
    assert (refused.status, _json(refused)["status"]["error_code"]) == (403, 1006)
    standard, _ = _app("coinmarketcap", plan="standard")
    assert _cmc(standard, "/v1/cryptocurrency/listings/historical").status == 200


def test_cmc_key_info_from_counters() -> None:
    """key/info reports the minute's requests and the month's credits; daily fields only with
    a daily cap; the route itself is free."""
    app, _ = _app("coinmarketcap")
    _cmc(app, "/v1/cryptocurrency/listings/latest?limit=150")
    info = _json(_cmc(app, "/v1/key/info"))
    plan, usage = info["data"]["plan"], info["data"]["usage"]
    assert plan["rate_limit_minute"] == 30
    assert plan["credit_limit_monthly"] == 10_000
    assert "credit_limit_daily" not in plan
    assert usage["current_minute"] == {"requests_made": 2, "requests_left": 28}
    assert usage["current_month"] == {"credits_used": 2, "credits_left": 9998}
    assert info["status"]["credit_count"] == 0
    daily, _ = _app("coinmarketcap", daily_credits=100)
    assert _json(_cmc(daily, "/v1/key/info"))["data"]["plan"]["credit_limit_daily"] == 100


def test_ledger_of_an_emulation_never_holds_a_key() -> None:
    """Header and query keys: no ledger entry's repr contains either."""
    app, _ = _app("coinmarketcap")
    _cmc(app, "/v1/key/info")
    _get(app, f"/v1/key/info?CMC_PRO_API_KEY={app.keys.read}")
    entries = app.ledger.entries()
    assert [e.status for e in entries] == [200, 200]
    leaked = app.keys.read in repr(entries)
    assert not leaked, "the ledger holds the key"


def test_later_keys_get_their_tiers_plan() -> None:
    """A key issued later with the scope "pro" is a Pro key: the Pro root takes it, the Demo
    root answers 10010, and /key reports the Pro plan."""
    app, _ = _app("coingecko")
    extra = app.issue(("pro",), None, 0.0)
    assert extra.startswith("CG-")
    on_pro = _get(app, "/pro/api/v3/key", {"x-cg-pro-api-key": extra})
    on_demo = _get(app, "/api/v3/ping", {"x-cg-pro-api-key": extra})
    assert _json(on_pro)["rate_limit_request_per_minute"] == 250
    assert _json(on_demo)["status"]["error_code"] == 10010


def test_rotated_emulation_key_keeps_its_account_and_prefix() -> None:
    """Rotation issues a UUID-shaped CoinMarketCap key on the same account and credits."""
    app, _ = _app("coinmarketcap")
    _cmc(app, "/v1/cryptocurrency/quotes/latest?symbol=BTC")
    new = app.rotate(app.keys.read, 0.0)
    assert len(new) == 36
    assert new.count("-") == 4
    info = _json(_get(app, "/v1/key/info", {"x-cmc_pro_api_key": new}))
    assert info["data"]["usage"]["current_month"]["credits_used"] == 1


def test_emulation_faults_bill_nothing() -> None:
    """A 5xx fault answers in the provider's shape, a reset cuts the connection; neither bills."""
    app, _ = _app("coingecko", faults=Faults(error_rate=1.0))
    failed = _cg(app, "/ping")
    assert failed.status in (500, 502, 503)
    assert "error" in _json(failed)
    cmc, _ = _app("coinmarketcap", faults=Faults(reset_rate=1.0))
    cut = _cmc(cmc, "/v1/cryptocurrency/quotes/latest?symbol=BTC")
    assert cut.action == "reset"
    entry = cmc.ledger.entries()[-1]
    assert (entry.status, entry.outcome, entry.admitted) == (None, "reset", True)
    assert app.ledger.credits() + cmc.ledger.credits() == 0


def test_cmc_revoked_key_is_disabled_1007() -> None:
    """A key the emulation issued and revoked answers 403/1007 (disabled), not 1001."""
    app, _ = _app("coinmarketcap")
    app.revoke(app.keys.read)
    reply = _cmc(app, "/v1/key/info")
    assert (reply.status, _json(reply)["status"]["error_code"]) == (403, 1007)


def test_coingecko_market_chart_hourly_then_daily() -> None:
    """market_chart gives aligned prices, caps and volumes: hourly for 2 days, daily for 120."""
    app, _ = _app("coingecko")
    short = _json(_cg(app, "/coins/ethereum/market_chart?vs_currency=usd&days=2"))
    long = _json(_cg(app, "/coins/ethereum/market_chart?vs_currency=eur&days=120"))
    assert set(short) == {"prices", "market_caps", "total_volumes"}
    assert 46 <= len(short["prices"]) <= 49
    assert 119 <= len(long["prices"]) <= 121
    assert [p[0] for p in short["prices"]] == [v[0] for v in short["total_volumes"]]
    assert app.ledger.credits() == 2
