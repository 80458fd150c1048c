"""A tiny in-memory :class:`~strategies.engine.types.MarketDataView` for tests and notebooks.

Pure numpy (no Django). :class:`ArrayMarketData` holds, per symbol, sorted candle open times
(epoch ms UTC, int64) and closes (float64, quote currency) and answers ``closes()`` with a
binary search, never returning a candle whose open time is after ``until_ms``.
:func:`make_view` builds a :class:`~strategies.risk.PortfolioView` with sensible defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .types import OpenPosition, PortfolioView

__all__ = ["ArrayMarketData", "make_view"]


class ArrayMarketData:
    """``MarketDataView`` over arrays: ``ArrayMarketData({"BTC/USDT": (times, closes)}, 3_600_000)``.

    Raises ``ValueError`` when a symbol's arrays differ in length or its times are not strictly
    increasing.
    """

    def __init__(self, series: Mapping[str, tuple[Sequence[int], Sequence[float]]], timeframe_ms: int) -> None:
        self._tf = int(timeframe_ms)
        self._times: dict[str, np.ndarray] = {}
        self._closes: dict[str, np.ndarray] = {}
        for sym, (times, closes) in series.items():
            t = np.asarray(times, dtype=np.int64)
            c = np.asarray(closes, dtype=np.float64)
            if t.shape != c.shape:
                raise ValueError(f"{sym}: {len(t)} times but {len(c)} closes")
            if len(t) > 1 and not np.all(np.diff(t) > 0):
                raise ValueError(f"{sym}: times must be strictly increasing")
            self._times[sym] = t
            self._closes[sym] = c

    @classmethod
    def regular(cls, series: Mapping[str, Sequence[float]], start_ms: int, timeframe_ms: int) -> ArrayMarketData:
        """Closes on a regular grid: the i-th close has open time ``start_ms + i * timeframe_ms``."""
        return cls(
            {s: (start_ms + np.arange(len(c), dtype=np.int64) * timeframe_ms, c) for s, c in series.items()},
            timeframe_ms,
        )

    def closes(self, symbol: str, until_ms: int, n: int) -> np.ndarray:
        """Last ``n`` (or fewer) closes with open time ``<= until_ms``, oldest first; ``KeyError``
        for an unknown symbol."""
        t = self._times[symbol]
        end = int(np.searchsorted(t, until_ms, side="right"))
        return self._closes[symbol][max(0, end - n) : end]

    def timeframe_ms(self) -> int:
        return self._tf


def make_view(
    equity: float = 10_000.0,
    *,
    time_ms: int = 0,
    cash: float | None = None,
    peak_equity: float | None = None,
    day_start_equity: float | None = None,
    positions: Iterable[OpenPosition] = (),
    closed_pnls: Iterable[float] = (),
    closed_pnl_pcts: Iterable[float] = (),
    market: ArrayMarketData | None = None,
) -> PortfolioView:
    """A :class:`PortfolioView` (USDT amounts); cash, peak and day start default to ``equity``."""
    return PortfolioView(
        time_ms=time_ms,
        equity=equity,
        cash=equity if cash is None else cash,
        peak_equity=equity if peak_equity is None else peak_equity,
        day_start_equity=equity if day_start_equity is None else day_start_equity,
        positions=list(positions),
        closed_pnls=list(closed_pnls),
        closed_pnl_pcts=list(closed_pnl_pcts),
        market=market,
    )
