"""The response models of the typed endpoints (see ``client.endpoints``).

>>> from coinguard.models import Candle
>>> Candle(time=0, open=1, high=1, low=1, close=1).time.year
1970
"""

from ._models import (
    BinanceAccount,
    BinanceBalance,
    BinanceOrder,
    BinancePrice,
    Candle,
    CmcCoin,
    CmcOhlcv,
    CmcOhlcvQuote,
    CmcQuote,
    Grade,
    Market,
    MarketChart,
    Model,
    Price,
    Signal,
    SimplePrice,
    Token,
    UTCDateTime,
)

__all__ = [
    "BinanceAccount",
    "BinanceBalance",
    "BinanceOrder",
    "BinancePrice",
    "Candle",
    "CmcCoin",
    "CmcOhlcv",
    "CmcOhlcvQuote",
    "CmcQuote",
    "Grade",
    "Market",
    "MarketChart",
    "Model",
    "Price",
    "Signal",
    "SimplePrice",
    "Token",
    "UTCDateTime",
]
