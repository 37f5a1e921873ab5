"""Deterministic, plausible synthetic market data derived from a seed.

Each token has a daily random walk (log-normal steps) starting at ``FIRST_DAY``; each day is
split into 24 hourly candles by a Brownian bridge from the day's open to its close, and the
daily high/low are the extremes of those hours, so every candle is OHLC-consistent.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = ["FIRST_DAY", "Candle", "Market", "Token", "candle_json"]

FIRST_DAY = date(2018, 1, 1)
_WALK_BLOCK = 256  # days of the walk drawn from one seeded generator

# (symbol, name, rough price on FIRST_DAY in USD)
_UNIVERSE: tuple[tuple[str, str, float], ...] = (
    ("BTC", "Bitcoin", 14000.0),
    ("ETH", "Ethereum", 750.0),
    ("SOL", "Solana", 1.5),
    ("BNB", "BNB", 8.0),
    ("XRP", "XRP", 2.2),
    ("ADA", "Cardano", 0.7),
    ("DOGE", "Dogecoin", 0.009),
    ("AVAX", "Avalanche", 4.0),
    ("DOT", "Polkadot", 3.0),
    ("MATIC", "Polygon", 0.01),
    ("LINK", "Chainlink", 0.7),
    ("LTC", "Litecoin", 230.0),
    ("TRX", "TRON", 0.05),
    ("ATOM", "Cosmos", 3.0),
    ("UNI", "Uniswap", 3.0),
    ("XLM", "Stellar", 0.4),
    ("ETC", "Ethereum Classic", 30.0),
    ("FIL", "Filecoin", 5.0),
    ("APT", "Aptos", 8.0),
    ("ARB", "Arbitrum", 1.2),
    ("OP", "Optimism", 1.5),
    ("NEAR", "NEAR Protocol", 1.0),
    ("ICP", "Internet Computer", 30.0),
    ("HBAR", "Hedera", 0.05),
    ("VET", "VeChain", 0.01),
    ("ALGO", "Algorand", 0.5),
    ("AAVE", "Aave", 60.0),
    ("MKR", "Maker", 700.0),
    ("SNX", "Synthetix", 2.0),
    ("GRT", "The Graph", 0.3),
    ("SAND", "The Sandbox", 0.05),
    ("MANA", "Decentraland", 0.1),
    ("AXS", "Axie Infinity", 0.5),
    ("EGLD", "MultiversX", 20.0),
    ("XTZ", "Tezos", 4.0),
    ("THETA", "Theta Network", 0.2),
    ("FTM", "Fantom", 0.03),
    ("EOS", "EOS", 9.0),
    ("FLOW", "Flow", 5.0),
    ("CHZ", "Chiliz", 0.02),
    ("KAVA", "Kava", 1.0),
    ("ZEC", "Zcash", 500.0),
    ("DASH", "Dash", 1000.0),
    ("NEO", "Neo", 80.0),
    ("COMP", "Compound", 100.0),
    ("CRV", "Curve DAO", 1.5),
    ("SUSHI", "SushiSwap", 3.0),
    ("YFI", "yearn.finance", 10000.0),
    ("BAT", "Basic Attention Token", 0.3),
    ("ENJ", "Enjin Coin", 0.2),
)


@dataclass(frozen=True)
class Token:
    """One listed token."""

    token_id: int
    symbol: str
    name: str
    base_price: float
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
            Token(3375 + 17 * i, sym, name, base, rng.uniform(0.025, 0.07))
            for i, (sym, name, base) in enumerate(_UNIVERSE)
        )
        self.by_symbol = {t.symbol: t for t in self.tokens}
        self.by_id = {t.token_id: t for t in self.tokens}
        self._closes: dict[str, list[float]] = {}
        self._walks: dict[str, random.Random] = {}  # where each token's walk left off
        self._hours: dict[tuple[str, date], tuple[Candle, ...]] = {}

    def _close(self, token: Token, day: date) -> float:
        """Close of ``day`` (the open of ``day`` is the close of the day before).

        Step ``i`` of the walk draws from the generator of its block of ``_WALK_BLOCK`` days,
        seeded by (seed, token, block) and consumed in order, so a close is the same whatever
        was asked before.
        """
        closes = self._closes.setdefault(token.symbol, [token.base_price])
        index = max(0, (day - FIRST_DAY).days + 1)
        while len(closes) <= index:
            step = len(closes)
            block, offset = divmod(step - 1, _WALK_BLOCK)
            if offset == 0 or token.symbol not in self._walks:
                self._walks[token.symbol] = random.Random(
                    f"{self.seed}:{token.symbol}:walk:{block}"
                )
            rng = self._walks[token.symbol]
            drift = 0.0004 if step % 700 < 450 else -0.0006
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
