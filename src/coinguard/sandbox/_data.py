"""Deterministic, plausible synthetic market data derived from a seed.

Each token has a daily random walk (log-normal steps) starting at ``FIRST_DAY``, scaled so it
closes ``ANCHOR_DAY`` at the token's reference price (its real order of magnitude); each day is
split into 24 hourly candles by a Brownian bridge from the day's open to its close, and the
daily high/low are the extremes of those hours, so every candle is OHLC-consistent.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = ["ANCHOR_DAY", "FIRST_DAY", "Candle", "Market", "Token", "candle_json"]

FIRST_DAY = date(2018, 1, 1)
#: The walk is scaled so that each token closes this day at its reference price below: prices
#: near the present stay near real orders of magnitude however far the walk has come since 2018.
ANCHOR_DAY = date(2026, 6, 1)
_WALK_BLOCK = 256  # days of the walk drawn from one seeded generator
_BAND = 8.0  # a price stays within this factor of its reference price

# (symbol, name, reference USD price near ANCHOR_DAY: each token's real order of magnitude),
# largest market cap first
_UNIVERSE: tuple[tuple[str, str, float], ...] = (
    ("BTC", "Bitcoin", 90000.0),
    ("ETH", "Ethereum", 3000.0),
    ("SOL", "Solana", 140.0),
    ("BNB", "BNB", 850.0),
    ("XRP", "XRP", 2.2),
    ("ADA", "Cardano", 0.45),
    ("DOGE", "Dogecoin", 0.16),
    ("AVAX", "Avalanche", 15.0),
    ("DOT", "Polkadot", 2.8),
    ("MATIC", "Polygon", 0.2),
    ("LINK", "Chainlink", 13.0),
    ("LTC", "Litecoin", 85.0),
    ("TRX", "TRON", 0.28),
    ("ATOM", "Cosmos", 2.8),
    ("UNI", "Uniswap", 6.0),
    ("XLM", "Stellar", 0.25),
    ("ETC", "Ethereum Classic", 14.0),
    ("FIL", "Filecoin", 1.7),
    ("APT", "Aptos", 3.0),
    ("ARB", "Arbitrum", 0.22),
    ("OP", "Optimism", 0.35),
    ("NEAR", "NEAR Protocol", 2.2),
    ("ICP", "Internet Computer", 4.5),
    ("HBAR", "Hedera", 0.15),
    ("VET", "VeChain", 0.015),
    ("ALGO", "Algorand", 0.15),
    ("AAVE", "Aave", 180.0),
    ("MKR", "Maker", 1500.0),
    ("SNX", "Synthetix", 0.6),
    ("GRT", "The Graph", 0.05),
    ("SAND", "The Sandbox", 0.17),
    ("MANA", "Decentraland", 0.17),
    ("AXS", "Axie Infinity", 1.2),
    ("EGLD", "MultiversX", 8.0),
    ("XTZ", "Tezos", 0.5),
    ("THETA", "Theta Network", 0.4),
    ("FTM", "Fantom", 0.5),
    ("EOS", "EOS", 0.4),
    ("FLOW", "Flow", 0.25),
    ("CHZ", "Chiliz", 0.035),
    ("KAVA", "Kava", 0.15),
    ("ZEC", "Zcash", 400.0),
    ("DASH", "Dash", 50.0),
    ("NEO", "Neo", 4.5),
    ("COMP", "Compound", 30.0),
    ("CRV", "Curve DAO", 0.45),
    ("SUSHI", "SushiSwap", 0.45),
    ("YFI", "yearn.finance", 4500.0),
    ("BAT", "Basic Attention Token", 0.2),
    ("ENJ", "Enjin Coin", 0.04),
)


@dataclass(frozen=True)
class Token:
    """One listed token."""

    token_id: int
    symbol: str
    name: str
    base_price: float  # the reference price on ANCHOR_DAY
    volatility: float

    def as_json(self) -> dict[str, Any]:
        """The token as the ``/tokens`` endpoint shows it."""
        return {
            "token_id": self.token_id,
            "symbol": self.symbol,
            "name": self.name,
            "slug": self.name.lower().replace(" ", "-").replace(".", ""),
            "exchange_listed": True,
        }


@dataclass(frozen=True)
class Candle:
    """One OHLCV candle."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class Market:
    """The synthetic market of one seed; pure functions of (seed, token, day).

    >>> m = Market(7)
    >>> len(m.tokens) >= 50, m.by_symbol["BTC"].token_id == m.tokens[0].token_id
    (True, True)
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = random.Random(f"{seed}:tokens")
        self.tokens = tuple(
            Token(3375 + 17 * i, sym, name, base, rng.uniform(0.02, 0.045))
            for i, (sym, name, base) in enumerate(_UNIVERSE)
        )
        self.by_symbol = {t.symbol: t for t in self.tokens}
        self.by_id = {t.token_id: t for t in self.tokens}
        self._closes: dict[str, list[float]] = {}
        self._scale: dict[str, float] = {}
        self._walks: dict[str, random.Random] = {}  # where each token's walk left off
        self._hours: dict[tuple[str, date], tuple[Candle, ...]] = {}

    def _close(self, token: Token, day: date) -> float:
        """Close of ``day``: the walk relative to its ``ANCHOR_DAY`` close, softly bounded to
        within ``_BAND`` times the reference price either way (a monotone squash, so the
        walk's ups and downs keep their order and the candles stay consistent)."""
        anchor = self._scale.get(token.symbol)
        if anchor is None:
            anchor = self._scale[token.symbol] = self._walk(token, ANCHOR_DAY)
        spread = math.log(self._walk(token, day) / anchor)
        limit = math.log(_BAND)
        return token.base_price * math.exp(limit * math.tanh(spread / limit))

    def _walk(self, token: Token, day: date) -> float:
        """The unscaled walk's close of ``day`` (the open of ``day`` is the close before).

        Step ``i`` of the walk draws from the generator of its block of ``_WALK_BLOCK`` days,
        seeded by (seed, token, block) and consumed in order, so a close is the same whatever
        was asked before.
        """
        closes = self._closes.setdefault(token.symbol, [1.0])
        index = max(0, (day - FIRST_DAY).days + 1)
        while len(closes) <= index:
            step = len(closes)
            block, offset = divmod(step - 1, _WALK_BLOCK)
            if offset == 0 or token.symbol not in self._walks:
                self._walks[token.symbol] = random.Random(
                    f"{self.seed}:{token.symbol}:walk:{block}"
                )
            rng = self._walks[token.symbol]
            drift = 0.0003 if step % 700 < 450 else -0.0005
            closes.append(closes[-1] * math.exp(rng.gauss(drift, token.volatility)))
        return closes[index]

    def hourly(self, token: Token, day: date) -> tuple[Candle, ...]:
        """The 24 hourly candles of ``day`` (UTC)."""
        key = (token.symbol, day)
        cached = self._hours.get(key)
        if cached is not None:
            return cached
        start, end = self._close(token, day - timedelta(days=1)), self._close(token, day)
        rng = random.Random(f"{self.seed}:{token.symbol}:{day.isoformat()}")
        step = token.volatility / math.sqrt(24)
        walk = [0.0]
        for _ in range(24):
            walk.append(walk[-1] + rng.gauss(0.0, step))
        target = math.log(end / start)
        # Brownian bridge: pin the walk to the day's close, keeping the intraday wiggle.
        logs = [w - (i / 24) * (walk[-1] - target) for i, w in enumerate(walk)]
        points = [start * math.exp(x) for x in logs]
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        candles = []
        for hour in range(24):
            o, c = points[hour], points[hour + 1]
            wick = abs(rng.gauss(0.0, step / 3))
            volume = rng.lognormvariate(16.0, 0.6) / 24
            candles.append(
                Candle(
                    midnight + timedelta(hours=hour),
                    o,
                    max(o, c) * (1 + wick),
                    min(o, c) * (1 - wick),
                    c,
                    volume,
                )
            )
        result = tuple(candles)
        if len(self._hours) > 50_000:
            self._hours.clear()
        self._hours[key] = result
        return result

    def daily(self, token: Token, day: date) -> Candle:
        """The daily candle of ``day``: extremes of its hourly candles."""
        hours = self.hourly(token, day)
        return Candle(
            hours[0].start,
            hours[0].open,
            max(h.high for h in hours),
            min(h.low for h in hours),
            hours[-1].close,
            sum(h.volume for h in hours),
        )

    def price(self, token: Token, now: float) -> float:
        """Spot price at ``now``: interpolated inside the current hourly candle."""
        moment = datetime.fromtimestamp(now, tz=timezone.utc)
        candle = self.hourly(token, moment.date())[moment.hour]
        frac = (moment.minute * 60 + moment.second) / 3600
        return candle.open + (candle.close - candle.open) * frac

    def grade(self, token: Token, day: date) -> dict[str, Any]:
        """Trader grades of ``day``, driven by the 7-day momentum."""
        close = self._close(token, day)
        week = self._close(token, day - timedelta(days=7))
        prev = self._close(token, day - timedelta(days=1))
        momentum = math.tanh(math.log(close / week) / (token.volatility * 2.6))
        rng = random.Random(f"{self.seed}:{token.symbol}:grade:{day.isoformat()}")
        ta = _clamp(50 + 40 * momentum + rng.gauss(0, 6))
        quant = _clamp(50 + 25 * momentum + rng.gauss(0, 10))
        return {
            "ta_grade": round(ta, 2),
            "quant_grade": round(quant, 2),
            "tm_trader_grade": round(0.6 * ta + 0.4 * quant, 2),
            "tm_trader_grade_24h_pct_change": round(100 * (close / prev - 1), 2),
        }

    def signal(self, token: Token, day: date) -> dict[str, Any]:
        """Trading signal of ``day``: close against its 7-day mean."""
        closes = [self._close(token, day - timedelta(days=i)) for i in range(7)]
        mean = sum(closes) / len(closes)
        gap = closes[0] / mean - 1
        threshold = token.volatility / 2
        signal = 1 if gap > threshold else -1 if gap < -threshold else 0
        return {
            "trading_signal": signal,
            "signal_strength": round(min(1.0, abs(gap) / token.volatility), 3),
            "close": _round_price(closes[0]),
            "ma_7d": _round_price(mean),
        }


def _clamp(value: float) -> float:
    return max(0.0, min(100.0, value))


def _round_price(value: float) -> float:
    """Round to 6 significant digits (enough for $0.0001 tokens and $60k ones)."""
    if value == 0:
        return 0.0
    digits = 5 - math.floor(math.log10(abs(value)))
    return round(value, max(digits, 2))


def candle_json(token: Token, candle: Candle, *, hourly: bool) -> dict[str, Any]:
    """A candle as the OHLCV endpoints show it (rounded after the fact, so OHLC stays ordered)."""
    stamp = (
        candle.start.strftime("%Y-%m-%dT%H:%M:%SZ") if hourly else candle.start.date().isoformat()
    )
    return {
        "token_id": token.token_id,
        "symbol": token.symbol,
        "name": token.name,
        "timestamp" if hourly else "date": stamp,
        "open": _round_price(candle.open),
        "high": _round_price(candle.high),
        "low": _round_price(candle.low),
        "close": _round_price(candle.close),
        "volume": round(candle.volume, 2),
    }
