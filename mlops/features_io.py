"""Read side of the feature set: candles from the database -> feature rows, and their CSV.

A selector module (reads only): :func:`feature_rows_load` loads each symbol's candles of a
timeframe in ``[start - lookback, end)`` plus BTC/USDT's (the market reference) and computes
:func:`mlops.core.features.compute_features` over them, keeping the rows whose open time is in
``[start, end)``; the lookback (:data:`LOOKBACK_CANDLES`, the longest feature window) makes the
first rows equal to the rows of the whole stored history, wherever that history exists.
:func:`feature_rows_write_csv` writes them, one row per (symbol, candle): ``time`` (ISO UTC),
``symbol``, then :data:`~mlops.core.features.FEATURE_NAMES` (float32 values, shortest round-trip
text; empty = NaN).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from market7.timeframes import dt_to_ms, timeframe_ms
from mlops.core.feature_math import W_LONG
from mlops.core.features import BTC_SYMBOL, FEATURE_NAMES, FeatureFrame, compute_features
from strategies.engine.feed import Candles
from trading.models import Market
from trading.selectors.candles import candles_arrays

LOOKBACK_CANDLES = W_LONG


class FeatureRowsError(ValueError):
    """Bad inputs to a feature export; the message is one line, for users."""


@dataclass(frozen=True)
class FeatureRows:
    """Feature frames per symbol (order given), each restricted to ``[start_ms, end_ms)``."""

    timeframe: str
    start_ms: int
    end_ms: int
    frames: dict[str, FeatureFrame]

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.frames.values())


def parse_utc(text: str, name: str) -> datetime:
    """``YYYY-MM-DD`` or ISO 8601 -> aware UTC datetime (naive means UTC); else FeatureRowsError."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FeatureRowsError(f"--{name} {text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _candles(market: Market, timeframe: str, start: int, end: int) -> Candles:
    a = candles_arrays(market=market, timeframe=timeframe, start=start, end=end)
    return Candles.from_arrays(a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"])


def feature_rows_load(
    *,
    symbols: Sequence[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    exchange: str = "binance",
    lookback: int = LOOKBACK_CANDLES,
) -> FeatureRows:
    """Features of ``symbols`` for candles opening in ``[start, end)`` (aware datetimes).

    BTC/USDT's candles (when stored) are the market reference of every symbol (its own for
    itself); without them the ``btc`` features are NaN. ``FeatureRowsError`` on an unknown
    timeframe or symbol, ``start >= end``, or a symbol without candles in the window."""
    try:
        tf = timeframe_ms(timeframe)
    except ValueError as exc:
        raise FeatureRowsError(str(exc)) from None
    symbols = list(dict.fromkeys(s.strip() for s in symbols if s.strip()))
    if not symbols:
        raise FeatureRowsError("no symbols given")
    if start.tzinfo is None or end.tzinfo is None:
        raise FeatureRowsError("start and end must be timezone-aware (UTC)")
    start_ms, end_ms = dt_to_ms(start), dt_to_ms(end)
    if start_ms >= end_ms:
        raise FeatureRowsError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    found = {m.symbol: m for m in Market.objects.filter(exchange__code=exchange, symbol__in=[*symbols, BTC_SYMBOL])}
    if missing := [s for s in symbols if s not in found]:
        raise FeatureRowsError(f"unknown symbol(s) on {exchange}: {', '.join(missing)}")
    window = (start_ms - lookback * tf, end_ms)
    btc = _candles(found[BTC_SYMBOL], timeframe, *window) if BTC_SYMBOL in found else None
    frames: dict[str, FeatureFrame] = {}
    for symbol in symbols:
        candles = btc if symbol == BTC_SYMBOL and btc is not None else _candles(found[symbol], timeframe, *window)
        keep = slice(int(np.searchsorted(candles.time, start_ms)), len(candles))
        if keep.start >= keep.stop:
            raise FeatureRowsError(
                f"no {timeframe} candles of {symbol} between {start.isoformat()} and {end.isoformat()}"
            )
        ff = compute_features(candles, btc if btc is not None and len(btc) else None)
        frames[symbol] = FeatureFrame(ff.time[keep], ff.names, ff.values[keep])
    return FeatureRows(timeframe, start_ms, end_ms, frames)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feature_rows_write_csv(rows: FeatureRows, path: str | Path) -> int:
    """Write ``time,symbol,<features>`` rows (symbol by symbol, oldest first); returns the count.

    A float32 value is written as the shortest text that reads back to the same float32
    (``np.float32(text) == value``); NaN as an empty field."""
    n = 0
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "symbol", *FEATURE_NAMES])
        for symbol, frame in rows.frames.items():
            for t, values in zip(frame.time.tolist(), frame.values, strict=True):
                w.writerow([_iso(t), symbol, *("" if v != v else str(v) for v in values)])
                n += 1
    return n
