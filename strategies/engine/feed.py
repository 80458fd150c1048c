"""Closed-candle feeds: float64 OHLCV arrays per market and timeframe, and a causal view.

Pure numpy/pandas (no Django). A :class:`Feed` holds, for each ccxt symbol, the closed candles
of the *stepping* timeframe (``Candles``: ``time`` int64 epoch ms UTC of the candle **open**,
``open``/``high``/``low``/``close`` float64 quote, ``volume`` float64 base units) and,
optionally, candles of a lower timeframe used only to resolve the order of events inside
one stepping candle. The same class serves backtests (whole history) and live bot steps
(warm-up history + the new closed candles).

:func:`load_csv` reads the project's gzip CSVs (header ``open_time,open,high,low,close,volume``)
and :meth:`Feed.from_csv_dir` maps ``BTC/USDT`` -> ``spot/BTCUSDT-1h.csv.gz`` and
``BTC/USDT:USDT`` -> ``futures/BTCUSDT-1h.csv.gz``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from market7.timeframes import timeframe_ms as _timeframe_ms

__all__ = ["Candles", "Feed", "FeedView", "load_csv", "symbol_to_filename"]

_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True, eq=False)
class Candles:
    """Closed candles of one market and timeframe, oldest first (all arrays the same length).

    ``time`` is the open time (int64 epoch ms UTC), strictly increasing; prices are float64
    quote currency; ``volume`` is float64 base units.
    """

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in _COLUMNS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"Candles.{name} has {len(getattr(self, name))} rows, time has {n}")
        if n > 1 and not bool(np.all(np.diff(self.time) > 0)):
            raise ValueError("Candles.time must be strictly increasing")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_arrays(cls, time, open, high, low, close, volume=None) -> Candles:  # noqa: A002
        """Build from array-likes (copied to contiguous int64 / float64)."""
        t = np.ascontiguousarray(time, dtype=np.int64)
        v = np.zeros(len(t)) if volume is None else volume
        return cls(
            t,
            *(np.ascontiguousarray(a, dtype=np.float64) for a in (open, high, low, close, v)),
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Candles:
        """From a DataFrame with ``open_time`` (or ``time``, epoch ms) and OHLCV columns.

        A ``DatetimeIndex`` (UTC) is accepted in place of a time column.
        """
        if "open_time" in df.columns:
            t = df["open_time"].to_numpy()
        elif "time" in df.columns:
            t = df["time"].to_numpy()
        elif isinstance(df.index, pd.DatetimeIndex):
            t = df.index.as_unit("ms").asi8
        else:
            raise KeyError("DataFrame needs an 'open_time' (epoch ms) column or a DatetimeIndex")
        if np.issubdtype(np.asarray(t).dtype, np.datetime64):
            t = pd.DatetimeIndex(t).as_unit("ms").asi8
        vol = df["volume"].to_numpy() if "volume" in df.columns else None
        return cls.from_arrays(t, df["open"], df["high"], df["low"], df["close"], vol)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"open_time": self.time, **{c: getattr(self, c) for c in _COLUMNS}})

    def until(self, until_ms: int) -> Candles:
        """The candles with open time ``<= until_ms`` (views, no copy)."""
        n = int(np.searchsorted(self.time, until_ms, side="right"))
        return self[:n]

    def __getitem__(self, sl: slice) -> Candles:
        if not isinstance(sl, slice):
            raise TypeError("Candles supports slicing only; read candles.close[i] for one value")
        return Candles(*(getattr(self, c)[sl] for c in ("time", *_COLUMNS)))

    def index_at(self, time_ms: int) -> int:
        """Index of the candle with open time ``time_ms``; ``KeyError`` if there is none."""
        i = int(np.searchsorted(self.time, time_ms))
        if i >= len(self.time) or self.time[i] != time_ms:
            raise KeyError(f"no candle opening at {time_ms}")
        return i


def load_csv(path: str | Path) -> Candles:
    """Read one candle CSV (optionally gzip) with header ``open_time,open,high,low,close,volume``.

    Floats are parsed with pandas 3's default (round-trip) precision: values equal ``float(text)``.
    Raises ``FileNotFoundError`` / ``KeyError`` (missing column).
    """
    df = pd.read_csv(path)
    return Candles.from_frame(df)


def symbol_to_filename(symbol: str, timeframe: str) -> str:
    """``"BTC/USDT"`` -> ``"spot/BTCUSDT-1h.csv.gz"``; ``"BTC/USDT:USDT"`` -> ``"futures/BTCUSDT-1h.csv.gz"``."""
    base, rest = symbol.split("/")
    quote = rest.split(":")[0]
    folder = "futures" if ":" in rest else "spot"
    return f"{folder}/{base}{quote}-{timeframe}.csv.gz"


class Feed:
    """Closed candles for several markets: a stepping timeframe plus optional lower timeframe.

    Args:
        timeframe: ccxt timeframe of the stepping candles (``"1h"``).
        data: ``{symbol: Candles}`` of the stepping timeframe.
        lower: optional ``{symbol: Candles}`` of ``lower_timeframe`` (``"5m"``/``"1m"``), used by
            the simulated broker to replay the inside of a stepping candle.
        lower_timeframe: the lower timeframe's name (required with ``lower``).
        mark: optional ``{symbol: Candles}`` of **mark-price** candles of perpetuals, same
            timeframe as ``data`` (liquidation triggers on them; see :mod:`.margin`).
        funding: optional ``{symbol: (times int64 epoch ms, rates float64 fraction per event)}``.
    """

    def __init__(
        self,
        timeframe: str = "1h",
        data: Mapping[str, Candles] | None = None,
        lower: Mapping[str, Candles] | None = None,
        lower_timeframe: str | None = None,
        mark: Mapping[str, Candles] | None = None,
        funding: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.timeframe = timeframe
        self._mark: dict[str, Candles] = dict(mark or {})
        self._funding: dict[str, tuple[np.ndarray, np.ndarray]] = {
            s: (np.ascontiguousarray(t, dtype=np.int64), np.ascontiguousarray(r, dtype=np.float64))
            for s, (t, r) in (funding or {}).items()
        }
        self.tf_ms = _timeframe_ms(timeframe)
        self._data: dict[str, Candles] = dict(data or {})
        self._lower: dict[str, Candles] = dict(lower or {})
        if self._lower and not lower_timeframe:
            raise ValueError("lower candles need lower_timeframe")
        self.lower_timeframe = lower_timeframe
        self._cache: dict[tuple, object] = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pd.DataFrame],
        timeframe: str = "1h",
        lower_frames: Mapping[str, pd.DataFrame] | None = None,
        lower_timeframe: str | None = None,
    ) -> Feed:
        """From ``{symbol: DataFrame}`` (see :meth:`Candles.from_frame` for the columns)."""
        return cls(
            timeframe,
            {s: Candles.from_frame(df) for s, df in frames.items()},
            {s: Candles.from_frame(df) for s, df in (lower_frames or {}).items()},
            lower_timeframe,
        )

    @classmethod
    def from_csv_dir(
        cls,
        root: str | Path,
        symbols: Iterable[str],
        timeframe: str = "1h",
        lower_timeframe: str | None = None,
        lower_symbols: Iterable[str] | None = None,
    ) -> Feed:
        """Load ``symbols`` from a folder laid out like ``shared/data/ohlcv`` (see module doc)."""
        root = Path(root)
        data = {s: load_csv(root / symbol_to_filename(s, timeframe)) for s in symbols}
        lower = {}
        if lower_timeframe:
            for s in lower_symbols if lower_symbols is not None else data:
                p = root / symbol_to_filename(s, lower_timeframe)
                if p.exists():
                    lower[s] = load_csv(p)
        return cls(timeframe, data, lower, lower_timeframe if lower else None)

    # -- access ---------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return sorted(self._data)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._data

    def candles(self, symbol: str) -> Candles:
        """Stepping-timeframe candles of ``symbol``; ``KeyError`` naming the known symbols."""
        try:
            return self._data[symbol]
        except KeyError:
            raise KeyError(f"symbol {symbol!r} not in feed (has {', '.join(self.symbols) or 'nothing'})") from None

    def lower(self, symbol: str) -> Candles | None:
        """Lower-timeframe candles of ``symbol`` or ``None``."""
        return self._lower.get(symbol)

    def mark(self, symbol: str) -> Candles | None:
        """Mark-price candles of perpetual ``symbol`` or ``None``."""
        return self._mark.get(symbol)

    def funding(self, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(times epoch ms, rates fraction)`` of perpetual ``symbol`` or ``None``."""
        return self._funding.get(symbol)

    def add(self, symbol: str, candles: Candles, lower: Candles | None = None) -> None:
        self._data[symbol] = candles
        if lower is not None:
            self._lower[symbol] = lower
        self._cache.clear()

    def truncate(self, until_ms: int) -> Feed:
        """A feed holding only candles with open time ``<= until_ms`` (no look-ahead tests).

        Lower-timeframe candles are cut at the end of the last stepping candle.
        """
        lower_until = until_ms + self.tf_ms - 1
        return Feed(
            self.timeframe,
            {s: c.until(until_ms) for s, c in self._data.items()},
            {s: c.until(lower_until) for s, c in self._lower.items()},
            self.lower_timeframe,
            {s: c.until(until_ms) for s, c in self._mark.items()},
            {s: (t[t <= lower_until], r[t <= lower_until]) for s, (t, r) in self._funding.items()},
        )

    def global_times(self, symbols: Iterable[str]) -> np.ndarray:
        """Sorted union of the open times of ``symbols`` (int64 epoch ms). Cached."""
        key = ("times", tuple(symbols))
        if key not in self._cache:
            arrs = [self.candles(s).time for s in key[1]]
            self._cache[key] = np.unique(np.concatenate(arrs)) if arrs else np.zeros(0, np.int64)
        return self._cache[key]  # type: ignore[return-value]

    def aligned_closes(self, symbols: Iterable[str]) -> np.ndarray:
        """``(len(symbols), len(global_times))`` float64 closes, forward-filled over gaps
        (0.0 before a symbol's first candle). Cached. Used to mark positions to market."""
        key = ("closes", tuple(symbols))
        if key not in self._cache:
            g = self.global_times(key[1])
            out = np.zeros((len(key[1]), len(g)))
            for k, s in enumerate(key[1]):
                c = self.candles(s)
                pos = np.searchsorted(g, c.time)
                row = np.full(len(g), np.nan)
                row[pos] = c.close
                row = pd.Series(row).ffill().fillna(0.0).to_numpy()
                out[k] = row
            self._cache[key] = out
        return self._cache[key]  # type: ignore[return-value]

    def view(self, now_ms: int | None = None) -> FeedView:
        """A causal :class:`~strategies.engine.types.MarketDataView` clamped at ``now_ms``."""
        return FeedView(self, now_ms)


class FeedView:
    """Causal read access to a :class:`Feed` (implements ``MarketDataView``).

    Every read is clamped at ``now_ms`` (the open time of the candle being decided on), so a
    rule can never see a candle that has not closed yet even if it asks for a later time.
    """

    __slots__ = ("feed", "now_ms")

    def __init__(self, feed: Feed, now_ms: int | None = None) -> None:
        self.feed = feed
        self.now_ms = now_ms

    def _end(self, symbol: str, until_ms: int) -> tuple[Candles, int]:
        c = self.feed.candles(symbol)
        if self.now_ms is not None and until_ms > self.now_ms:
            until_ms = self.now_ms
        return c, int(np.searchsorted(c.time, until_ms, side="right"))

    def closes(self, symbol: str, until_ms: int, n: int) -> np.ndarray:
        """Last ``n`` (or fewer) closes of ``symbol`` with open time ``<= until_ms`` (and ``<= now``)."""
        c, end = self._end(symbol, until_ms)
        return c.close[max(0, end - n) : end]

    def candles(self, symbol: str, until_ms: int, n: int) -> Candles:
        """Last ``n`` (or fewer) candles of ``symbol`` with open time ``<= until_ms`` (and ``<= now``)."""
        c, end = self._end(symbol, until_ms)
        return c[max(0, end - n) : end]

    def timeframe_ms(self) -> int:
        return self.feed.tf_ms
