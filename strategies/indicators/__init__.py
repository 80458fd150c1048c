"""Technical indicators for the trading core (pure: numpy + TA-Lib, no Django).

Two faces of the same definitions:

- :mod:`.batch` — whole arrays at once, TA-Lib underneath (backtests, research, features);
- :mod:`.incremental` — O(1) per closed candle with JSON-round-tripping state (the bot
  runner's tick path), matching the batch values to 1e-9 relative after warm-up.

See ``docs/indicators-and-metrics.md`` for conventions, warm-up lengths and sources.
"""

from strategies.indicators import batch
from strategies.indicators.incremental import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    Bollinger,
    BollingerValue,
    MACDValue,
    indicator_from_state,
)

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "Bollinger",
    "BollingerValue",
    "MACDValue",
    "batch",
    "indicator_from_state",
]
