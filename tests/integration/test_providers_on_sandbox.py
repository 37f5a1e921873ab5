"""The real client profiles against the provider emulations, over loopback sockets: auth,
wrong keys and roots, 429 bodies, usage routes, and credits counted alike on both sides."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import coinguard
from coinguard import (
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimitError,
)
from coinguard._cli import main
from coinguard.sandbox import Faults, ManualClock, Sandbox, SandboxConfig

QUOTES = "/v1/cryptocurrency/quotes/latest"
LISTINGS = "/v1/cryptocurrency/listings/latest"
# a listing's credits fill the client's minute window after the call: the next call may wait
# a whole minute (of the manual clock), longer than the default deadline
SLOW_OK = coinguard.RetryPolicy(deadline=600.0)


@pytest.fixture
def cg() -> Iterator[Sandbox]:
    with Sandbox(profile="coingecko") as sandbox:
        yield sandbox


@pytest.fixture
def cmc() -> Iterator[Sandbox]:
    with Sandbox(profile="coinmarketcap") as sandbox:
        yield sandbox


def _keys(sb: Sandbox) -> list[str]:
    return [value for value in vars(sb.keys).values() if value]


def _assert_no_key(sb: Sandbox, *texts: str) -> None:
    # a bare boolean: a failing assert must not print the key it found
    leaked = any(key in text for key in _keys(sb) for text in texts)
    assert not leaked, "a provisioned key reached an error message or a log line"


def _exhaust(url: str, header: str, key: str, times: int) -> None:
    """Spend a minute window with raw requests, so the client's own quota knows nothing."""
    with httpx.Client(headers={header: key}) as raw:
        for _ in range(times):
            raw.get(url)


# -- CoinGecko -------------------------------------------------------------------------------


def test_coingecko_demo_key_reads(cg: Sandbox) -> None:
    """The demo profile reads prices from the Demo root; verify_key says "demo"."""
    with coinguard.Client(provider="coingecko", base_url=cg.base_url, read_key=cg.keys.read) as c:
        prices = c.get("/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"})
        (report,) = c.verify_key()
    assert prices["bitcoin"]["usd"] > 0
    assert report.permissions.plan == "demo"
    assert cg.ledger.credits(fingerprint=coinguard.fingerprint(cg.keys.read)) == 2


def test_coingecko_pro_verify_key_reports_the_emulations_counts(cg: Sandbox) -> None:
    """After three reads, GET /key (via verify_key) reports the plan, limit and the 3 credits."""
    with coinguard.Client(
        provider="coingecko-pro", base_url=cg.pro_base_url, read_key=cg.keys.pro
    ) as c:
        for page in (1, 2, 3):
            c.get("/coins/markets", params={"vs_currency": "usd", "page": page, "per_page": 10})
        (report,) = c.verify_key()
    minute, month = report.permissions.usage
    assert report.permissions.plan == "Basic"
    assert minute.limit == 250
    assert (month.used, month.limit) == (3, 100_000)
    assert month.used == cg.ledger.credits()


def test_coingecko_wrong_key_is_an_authentication_error(cg: Sandbox, caplog: Any) -> None:
    """An unknown CG- key: AuthenticationError, and no provisioned key in any text."""
    caplog.set_level(logging.DEBUG)
    wrong = "CG-" + "x" * 24
    with (
        coinguard.Client(provider="coingecko", base_url=cg.base_url, read_key=wrong) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.get("/ping")
    assert info.value.status_code == 401
    _assert_no_key(cg, str(info.value), caplog.text)


def test_coingecko_demo_key_on_the_pro_root(cg: Sandbox) -> None:
    """A Demo key sent to the Pro root: ConfigurationError saying to use plan='demo'."""
    with (
        coinguard.Client(
            provider="coingecko-pro", base_url=cg.pro_base_url, read_key=cg.keys.read
        ) as c,
        pytest.raises(ConfigurationError, match="10011") as info,
    ):
        c.get("/ping")
    assert "plan='demo'" in str(info.value)
    _assert_no_key(cg, str(info.value))


def test_coingecko_pro_key_on_the_demo_root(cg: Sandbox) -> None:
    """A Pro key sent to the Demo root: ConfigurationError pointing at coingecko-pro."""
    with (
        coinguard.Client(provider="coingecko", base_url=cg.base_url, read_key=cg.keys.pro) as c,
        pytest.raises(ConfigurationError, match="10010") as info,
    ):
        c.get("/ping")
    assert "coingecko-pro" in str(info.value)
    assert cg.ledger.credits() == 0


@pytest.mark.parametrize("html", [False, True], ids=["json", "cloudflare-html"])
def test_coingecko_429_is_a_rate_limit_error(html: bool) -> None:
    """A spent minute: the 429 (JSON or Cloudflare HTML) is a RateLimitError with retry_after,
    never a decode error."""
    faults = Faults(cloudflare_429_rate=1.0 if html else 0.0)
    with Sandbox(SandboxConfig(profile="coingecko", faults=faults)) as sb:
        _exhaust(sb.base_url + "/ping", "x-cg-demo-api-key", sb.keys.read, 100)
        with (
            coinguard.Client(
                provider="coingecko", base_url=sb.base_url, read_key=sb.keys.read, max_retries=0
            ) as c,
            pytest.raises(RateLimitError) as info,
        ):
            c.get("/ping")
        last = sb.ledger.entries()[-1]
    assert info.value.status_code == 429
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 60
    assert (last.status, last.credits) == (429, 0)
    assert sb.ledger.credits() == 100


def test_coingecko_200_mixed_calls_local_and_server_credits_agree() -> None:
    """200 reads, a quarter of them refused (unknown coin, bad currency): the client's month
    counts only the answers CoinGecko bills (HTTP 200), as the emulation does, while its
    minute counts every request; no minute was overfilled."""
    clock = ManualClock(1_800_000_000.0)
    rng = random.Random(7)
    ok, refused = 0, set()
    with (
        Sandbox(SandboxConfig(profile="coingecko", clock=clock)) as sb,
        coinguard.Client(
            provider="coingecko",
            base_url=sb.base_url,
            read_key=sb.keys.read,
            clock=clock,
            sleep=clock.advance,
            jitter=lambda: 0.0,
            retry=SLOW_OK,
            max_wait=600.0,
        ) as c,
    ):
        for _ in range(200):
            coin = rng.choice(["bitcoin", "ethereum", "no-such-coin"])
            currency = rng.choice(["usd", "usd", "usd", "xyz"])
            try:
                c.get(f"/coins/{coin}/ohlc", params={"vs_currency": currency, "days": 1})
                ok += 1
            except coinguard.APIStatusError as exc:
                refused.add(exc.status_code)
        status = c.quota
        assert status is not None
        month = status.windows[1]
    assert refused == {400, 404}
    assert 50 < ok < 150
    assert month.used == ok == sb.ledger.credits()
    assert sb.ledger.count() == 200
    assert sb.ledger.violations() == []


# -- CoinMarketCap ---------------------------------------------------------------------------


def _cmc_client(sb: Sandbox, **kw: Any) -> coinguard.Client:
    kw.setdefault("read_key", sb.keys.read)
    return coinguard.Client(provider="coinmarketcap", base_url=sb.base_url, **kw)


def _manual_clock() -> tuple[ManualClock, Callable[[float], None]]:
    clock = ManualClock(1_800_000_000.0)
    return clock, clock.advance


def test_cmc_200_mixed_calls_local_and_server_credits_agree() -> None:
    """200 quotes and listings of different sizes: the credits the client debited from
    status.credit_count equal the ledger's and key/info's, and no minute was overfilled."""
    clock, sleep = _manual_clock()
    rng = random.Random(12)
    charged = 0
    with (
        Sandbox(SandboxConfig(profile="coinmarketcap", clock=clock)) as sb,
        _cmc_client(
            sb, clock=clock, sleep=sleep, jitter=lambda: 0.0, retry=SLOW_OK, max_wait=600.0
        ) as c,
    ):
        for _ in range(200):
            if rng.random() < 0.5:
                params = {"symbol": rng.choice(["BTC", "BTC,ETH", "SOL,ADA,DOGE"])}
                if rng.random() < 0.3:
                    params["convert"] = "USD,EUR"
                body = c.get(QUOTES, params=params)
            else:
                limit = rng.choice([20, 100, 150, 250, 420])
                body = c.get(LISTINGS, params={"start": rng.randint(1, 500), "limit": limit})
            charged += body["status"]["credit_count"]
        status = c.quota
        assert status is not None
        month = next(w for w in status.windows if w.calendar)
        server = c.get("/v1/key/info")["data"]["usage"]["current_month"]["credits_used"]
    assert month.used == charged == sb.ledger.credits() == server
    assert charged > 200  # the listings' larger pages did cost more
    assert sb.ledger.count(status=200) == 201
    assert sb.ledger.violations() == []


def test_cmc_verify_key_reports_the_emulations_counts(cmc: Sandbox) -> None:
    """verify_key reads /v1/key/info: the minute's requests and the month's credits."""
    with _cmc_client(cmc) as c:
        c.get(LISTINGS, params={"limit": 250})
        (report,) = c.verify_key()
    minute, month = report.permissions.usage
    assert (minute.used, minute.limit) == (2, 30)
    assert (month.used, month.limit) == (3, 10_000)


def test_cmc_wrong_key_and_missing_plan(cmc: Sandbox) -> None:
    """An unknown key is AuthenticationError (1001); an endpoint outside Basic is 1006."""
    with (
        _cmc_client(cmc, read_key="00000000-0000-4000-8000-000000000000") as c,
        pytest.raises(AuthenticationError, match="1001"),
    ):
        c.get(QUOTES, params={"symbol": "BTC"})
    with _cmc_client(cmc) as c, pytest.raises(PermissionDeniedError, match="1006") as info:
        c.get("/v1/cryptocurrency/listings/historical")
    _assert_no_key(cmc, str(info.value))


def test_cmc_minute_limit_1008_is_a_rate_limit_error(cmc: Sandbox) -> None:
    """30 raw requests spend Basic's minute; the client's call gets 1008 with retry_after."""
    _exhaust(cmc.base_url + "/v1/key/info", "X-CMC_PRO_API_KEY", cmc.keys.read, 30)
    with _cmc_client(cmc, max_retries=0) as c, pytest.raises(RateLimitError, match="1008") as info:
        c.get(QUOTES, params={"symbol": "BTC"})
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 60


def test_cmc_monthly_limit_1010_is_final() -> None:
    """With 2 credits a month, a 3-credit listing is refused with 1010: not retried."""
    with (
        Sandbox(SandboxConfig(profile="coinmarketcap", monthly_credits=2)) as sb,
        _cmc_client(sb) as c,
        pytest.raises(RateLimitError, match="1010") as info,
    ):
        c.get(LISTINGS, params={"limit": 250})
    assert info.value.final
    assert sb.ledger.count(path=LISTINGS) == 1
    assert sb.ledger.credits() == 0


def test_cmc_reads_survive_faults_and_credits_still_agree() -> None:
    """30 % 5xx and 10 % resets: every read succeeds after retries, and the client debits
    exactly the credits of the answers it got (faulted attempts bill nothing)."""
    clock, sleep = _manual_clock()  # retried attempts fill the minute: waits are not slept
    faults = Faults(error_rate=0.3, reset_rate=0.1)
    config = SandboxConfig(profile="coinmarketcap", faults=faults, clock=clock)
    retry = coinguard.RetryPolicy(max_retries=8, deadline=600.0)
    with (
        Sandbox(config) as sb,
        _cmc_client(sb, retry=retry, clock=clock, sleep=sleep, max_wait=600.0) as c,
    ):
        charged = sum(
            c.get(QUOTES, params={"symbol": "BTC,ETH"})["status"]["credit_count"] for _ in range(20)
        )
        faulted = sb.ledger.count(outcome="fault-5xx") + sb.ledger.count(outcome="reset")
        month = next(w for w in c.quota.windows if w.calendar) if c.quota else None
    assert charged == 20 == sb.ledger.credits()
    assert faulted > 0
    # a reset may have been billed (the client cannot know): it stays counted; a 5xx was not
    assert month is not None
    assert month.used == charged + sb.ledger.count(outcome="reset")


@pytest.mark.parametrize(
    ("profile", "provider", "env", "usage"),
    [
        ("coingecko", "coingecko-pro", "COINGECKO_PRO_API_KEY", "this month: 2 of 100,000 used"),
        ("coinmarketcap", "coinmarketcap", "CMC_PRO_API_KEY", "this month: 3 of 10,000 used"),
    ],
)
def test_doctor_verify_prints_the_emulations_plan_and_usage(
    profile: str,
    provider: str,
    env: str,
    usage: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`coinguard doctor --verify` against each emulation reports its usage after two reads
    (CoinGecko: 1 credit each; CoinMarketCap: a 250-row listing, 3 credits), key-free."""
    monkeypatch.delenv("COINGUARD_READ_KEY", raising=False)
    with Sandbox(profile=profile) as sb:  # type: ignore[arg-type]
        key = sb.keys.pro if profile == "coingecko" else sb.keys.read
        assert key is not None
        root = sb.pro_base_url if profile == "coingecko" else sb.base_url
        read = ("/ping", {}) if profile == "coingecko" else (LISTINGS, {"limit": 250})
        with coinguard.Client(provider=provider, base_url=root, read_key=key) as c:
            for _ in range(2 if profile == "coingecko" else 1):
                c.get(read[0], params=read[1])
        monkeypatch.setenv(env, key)
        code = main(["doctor", "--provider", provider, "--base-url", root, "--verify", "--json"])
    out = capsys.readouterr().out
    _assert_no_key(sb, out)
    (report,) = json.loads(out)["keys"]
    assert code == 0
    assert usage in report["usage"][1]


def test_cmc_revoked_key_is_an_authentication_error_naming_1007(cmc: Sandbox) -> None:
    """A revoked key: 403/1007 becomes AuthenticationError with the client's "disabled" hint."""
    cmc.revoke(cmc.keys.read)
    with _cmc_client(cmc) as c, pytest.raises(AuthenticationError, match="disabled") as info:
        c.get(QUOTES, params={"symbol": "BTC"})
    assert info.value.status_code == 403
    _assert_no_key(cmc, str(info.value))


def test_no_provisioned_key_in_any_channel(caplog: pytest.LogCaptureFixture) -> None:
    """Successes, wrong roots, 429s (JSON and HTML) and CMC errors, with DEBUG logs: no key
    reaches a log line, an error's str or repr, or its body."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    kinds: list[str] = []

    def attempt(client: coinguard.Client, path: str, **params: Any) -> None:
        try:
            client.get(path, params=params)
        except coinguard.CoinguardError as exc:
            kinds.append(type(exc).__name__)
            texts.extend([str(exc), repr(exc), repr(getattr(exc, "body", None))])

    faults = Faults(cloudflare_429_rate=0.5)
    with (
        Sandbox(SandboxConfig(profile="coingecko", faults=faults)) as cg,
        Sandbox(profile="coinmarketcap") as cmc,
    ):
        assert cg.keys.pro is not None
        for provider, root, key in (
            ("coingecko", cg.base_url, cg.keys.read),
            ("coingecko", cg.base_url, cg.keys.pro),
            ("coingecko-pro", cg.pro_base_url, cg.keys.read),
            ("coingecko-pro", cg.pro_base_url, cg.keys.pro),
        ):
            with coinguard.Client(
                provider=provider, base_url=root, read_key=key, max_retries=0
            ) as c:
                attempt(c, "/ping")
                attempt(c, "/simple/price", ids="bitcoin")  # 400: vs_currencies missing
        _exhaust(cg.base_url + "/ping", "x-cg-demo-api-key", cg.keys.read, 100)
        with coinguard.Client(  # no local quota: every call reaches the spent window
            provider="coingecko",
            base_url=cg.base_url,
            read_key=cg.keys.read,
            max_retries=0,
            quota=None,
        ) as c:
            for _ in range(4):
                attempt(c, "/ping")
        with _cmc_client(cmc, max_retries=0) as c:
            attempt(c, QUOTES, symbol="NOPE")
            attempt(c, "/v1/cryptocurrency/listings/historical")
            attempt(c, "/v1/nope")
        texts.append(caplog.text)
        keys = [k for sb in (cg, cmc) for k in _keys(sb)]
        outcomes = {e.outcome for e in cg.ledger.entries()}
        limited = [e.status for e in cg.ledger.entries()[-4:]]
    leaked = any(key in text for key in keys for text in texts)
    assert not leaked, "a provisioned key reached an error, a body or a log line"
    assert {"error-10010", "error-10011", "limited", "bad-request"} <= outcomes
    assert limited == [429] * 4
    assert kinds.count("RateLimitError") == 4
    assert len(texts) > 8


@pytest.mark.parametrize("profile", ["coingecko-pro", "coinmarketcap"])
def test_verify_on_start_teaches_the_quota_what_the_provider_counted(
    cg: Sandbox, cmc: Sandbox, profile: str
) -> None:
    """Credits spent elsewhere (another machine, a raw script): a new client's month window
    starts from what the usage route reports, not from zero."""
    if profile == "coingecko-pro":
        sb, url, header, key = cg, cg.pro_base_url, "x-cg-pro-api-key", cg.keys.pro
        path, params = "/simple/price", {"ids": "bitcoin", "vs_currencies": "usd"}
    else:
        sb, url, header, key = cmc, cmc.base_url, "X-CMC_PRO_API_KEY", cmc.keys.read
        path, params = QUOTES, {"symbol": "BTC"}
    assert key is not None
    with httpx.Client(headers={header: key}) as raw:
        for _ in range(7):
            assert raw.get(url + path, params=params).status_code == 200
    spent = sb.ledger.credits()
    assert spent >= 7
    with coinguard.Client(
        provider=profile,
        base_url=url,
        read_key=key,
        verify_on_start=True,
        quota_store=coinguard.MemoryStore(),
    ) as client:
        status = client.quota
    assert status is not None
    month = next(w for w in status.windows if w.name.endswith("/month"))
    assert month.used >= spent
