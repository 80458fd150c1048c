"""ccxt timeframes and their lengths, plus epoch-ms <-> datetime helpers (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in milliseconds. Unknown timeframe: ValueError naming it."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_MS)}") from None


def ms_to_dt(ms: int) -> datetime:
    """Epoch milliseconds -> timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(dt: datetime) -> int:
    """Timezone-aware datetime -> epoch milliseconds. Naive datetimes: ValueError."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime; Market7 times are timezone-aware UTC")
    return int(dt.timestamp() * 1000)
