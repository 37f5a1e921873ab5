"""Market-data endpoints: shapes, determinism, pagination and every bad input."""

from __future__ import annotations

import pytest

from coinguard.sandbox import ManualClock, Sandbox, SandboxConfig

READ_PATHS = (
    "/tokens",
    "/price",
    "/daily-ohlcv",
    "/hourly-ohlcv",
    "/trader-grades",
    "/trading-signals",
)


@pytest.fixture
def sb(coinguard_sandbox_factory, clock: ManualClock) -> Sandbox:
    """A sandbox on a frozen clock with no practical rate limit."""
    from coinguard.sandbox import Window

    return coinguard_sandbox_factory(SandboxConfig(clock=clock, windows=(Window(10**6, 1.0),)))


@pytest.fixture
def client(sb: Sandbox, http):
    """An httpx client sending the read key."""
    return http(sb, sb.keys.read)


@pytest.mark.parametrize("path", READ_PATHS)
def test_read_endpoints_answer_an_envelope(client, path: str) -> None:
    """Each read endpoint answers 200 with success, message, length and a list of rows."""
    body = client.get(path, params={"limit": 3}).json()
    assert body["success"] is True
    assert isinstance(body["message"], str)
    assert body["length"] == len(body["data"]) == 3
    assert {"token_id", "symbol", "name"} <= body["data"][0].keys()


def test_tokens_lists_about_fifty(client) -> None:
    """/tokens lists at least fifty unique tokens across pages."""
    rows = client.get("/tokens", params={"limit": 1000}).json()["data"]
    assert len(rows) >= 50
    assert len({r["symbol"] for r in rows}) == len(rows)


def test_price_by_symbol_and_token_id(client) -> None:
    """/price accepts comma-separated symbols (any case) or token ids."""
    by_symbol = client.get("/price", params={"symbol": "btc,ETH"}).json()["data"]
    assert [r["symbol"] for r in by_symbol] == ["BTC", "ETH"]
    assert all(r["price"] > 0 for r in by_symbol)
    ids = ",".join(str(r["token_id"]) for r in by_symbol)
    assert client.get("/price", params={"token_id": ids}).json()["data"] == by_symbol


def test_daily_ohlcv_is_consistent(client) -> None:
    """Every daily candle has low <= open, close <= high and one row per day."""
    params = {"symbol": "BTC,DOGE", "startDate": "2023-01-01", "endDate": "2023-03-31"}
    rows = client.get("/daily-ohlcv", params={**params, "limit": 1000}).json()["data"]
    assert len(rows) == 90 * 2
    for r in rows:
        assert r["low"] <= min(r["open"], r["close"]) <= max(r["open"], r["close"]) <= r["high"]
        assert r["volume"] > 0
    assert rows[0]["date"] == "2023-01-01"
    assert rows[-1]["date"] == "2023-03-31"


def test_hourly_ohlcv_stops_at_the_current_hour(client) -> None:
    """Hourly candles of today end at the hour in progress (22:xx on the test clock)."""
    rows = client.get("/hourly-ohlcv", params={"symbol": "ETH", "limit": 1000}).json()["data"]
    assert len(rows) == 23
    assert rows[-1]["timestamp"] == "2023-11-14T22:00:00Z"
    assert all(r["low"] <= r["open"] <= r["high"] for r in rows)


def test_daily_closes_chain_into_next_open(client) -> None:
    """The close of one day is the open of the next, as in a real series."""
    params = {"symbol": "SOL", "startDate": "2022-05-01", "endDate": "2022-05-03"}
    rows = client.get("/daily-ohlcv", params=params).json()["data"]
    assert rows[0]["close"] == rows[1]["open"]
    assert rows[1]["close"] == rows[2]["open"]


def test_same_seed_same_data_different_seed_different_data(
    coinguard_sandbox_factory, http, clock: ManualClock
) -> None:
    """Two sandboxes with the same seed serve identical data; another seed differs."""
    params = {"symbol": "BTC", "startDate": "2023-06-01", "endDate": "2023-06-10"}

    def fetch(seed: int) -> list[object]:
        sb = coinguard_sandbox_factory(SandboxConfig(seed=seed, clock=clock))
        client = http(sb, sb.keys.read)
        return [client.get(p, params=params).json()["data"] for p in READ_PATHS]

    assert fetch(7) == fetch(7)
    assert fetch(7) != fetch(8)


def test_pagination_walks_every_row_once(client) -> None:
    """Pages of a listing concatenate to the full listing; past the end is empty."""
    full = client.get("/tokens", params={"limit": 1000}).json()["data"]
    pages = [client.get("/tokens", params={"limit": 7, "page": p}).json() for p in range(1, 9)]
    assert [row for page in pages for row in page["data"]] == full
    assert pages[0]["length"] == 7
    assert client.get("/tokens", params={"limit": 7, "page": 99}).json()["data"] == []


def test_default_limit_is_fifty(client) -> None:
    """Without limit a page holds 50 rows."""
    assert client.get("/price").json()["length"] == 50


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/tokens", {"limit": "abc"}, "limit"),
        ("/tokens", {"limit": "0"}, "limit"),
        ("/tokens", {"limit": "1001"}, "limit"),
        ("/tokens", {"page": "0"}, "page"),
        ("/tokens", {"page": "-1"}, "page"),
        ("/price", {"symbol": "NOPE"}, "symbol"),
        ("/price", {"symbol": "BTC,,ETH"}, "symbol"),
        ("/price", {"token_id": "abc"}, "token_id"),
        ("/daily-ohlcv", {"startDate": "2023-13-01"}, "startDate"),
        ("/daily-ohlcv", {"startDate": "01/02/2023"}, "startDate"),
        ("/daily-ohlcv", {"endDate": "yesterday"}, "endDate"),
        ("/daily-ohlcv", {"startDate": "2010-01-01"}, "startDate"),
        ("/daily-ohlcv", {"startDate": "2023-05-02", "endDate": "2023-05-01"}, "startDate"),
        ("/trader-grades", {"startDate": "2099-01-01"}, "startDate"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, path, params, named) -> None:
    """Malformed parameters get a 400 envelope whose message names the parameter."""
    r = client.get(path, params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False
    assert f"'{named}'" in body["message"]
    assert body["data"] is None


def test_bad_requests_count_against_the_quota(sb: Sandbox, client) -> None:
    """A 400 with a valid key is admitted (it reached the handler) and recorded as bad-request."""
    client.get("/tokens", params={"limit": "abc"})
    (entry,) = sb.ledger.entries()
    assert entry.admitted
    assert entry.outcome == "bad-request"


def test_a_candle_does_not_depend_on_what_was_asked_before() -> None:
    """A candle is a pure function of (seed, token, day), whatever was asked before."""
    from datetime import date

    from coinguard.sandbox._data import Market

    fresh, warmed = Market(7), Market(7)
    token = fresh.by_symbol["BTC"]
    warmed.daily(token, date(2018, 3, 9))
    warmed.hourly(token, date(2019, 6, 30))
    assert warmed.daily(token, date(2024, 1, 1)) == fresh.daily(token, date(2024, 1, 1))
    assert warmed.hourly(token, date(2020, 2, 2)) == fresh.hourly(token, date(2020, 2, 2))


def test_prices_sit_near_each_tokens_real_order_of_magnitude() -> None:
    """On the anchor day every token closes at its reference price; a year on, every price is
    still within a factor of ten of it (no SOL at 1.60 USD, no ETC at 0.017)."""
    from datetime import date, timedelta

    from coinguard.sandbox._data import ANCHOR_DAY, Market

    market = Market(7)
    for token in market.tokens:
        assert market.daily(token, ANCHOR_DAY).close == pytest.approx(token.base_price)
        for offset in (-180, 90, 365):
            close = market.daily(token, ANCHOR_DAY + timedelta(days=offset)).close
            assert token.base_price / 10 < close < token.base_price * 10, token.symbol
    assert market.by_symbol["BTC"].base_price > 10_000 > market.by_symbol["ETH"].base_price
    assert date(2018, 1, 1) <= ANCHOR_DAY


def test_spot_price_lies_inside_the_current_candles() -> None:
    """The spot price is inside the current hourly candle and the day's candle."""
    from datetime import datetime, timezone

    from coinguard.sandbox._data import Market

    market = Market(7)
    now = datetime(2026, 11, 29, 13, 20, tzinfo=timezone.utc)
    for token in market.tokens:
        spot = market.price(token, now.timestamp())
        hour = market.hourly(token, now.date())[now.hour]
        day = market.daily(token, now.date())
        assert hour.low <= spot <= hour.high
        assert day.low <= spot <= day.high
