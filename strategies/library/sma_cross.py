"""``sma_cross``: the smallest useful strategy, proving the strategy API.

Pure numpy + TA-Lib. Long only: buy ``quote_amount`` quote at market when SMA(``fast``)
crosses above SMA(``slow``) on a closed candle; close the position at market when it
crosses back below. Its ``entry_signals`` (the golden crosses) can start Smart DCA deals
(``start_condition="strategy:sma_cross"``).
"""

from __future__ import annotations

import numpy as np
import talib

from strategies.base import BaseStrategy, Param
from strategies.engine.orders import OrderIntent, OrderType, Side
from strategies.registry import register

__all__ = ["SmaCross"]


@register
class SmaCross(BaseStrategy):
    """Moving-average crossover: long on a golden cross, flat on a death cross."""

    name = "sma_cross"
    title = "SMA cross"
    PARAMS = (
        Param("fast", "int", 10, 1, 1000, "candles", "Fast SMA period."),
        Param("slow", "int", 30, 2, 5000, "candles", "Slow SMA period."),
        Param("quote_amount", "float", 100.0, 0.0, 1e12, "quote", "Size of each entry."),
    )

    @classmethod
    def check_params(cls, p):
        return {"fast": "must be smaller than slow"} if p["fast"] >= p["slow"] else {}

    def __init__(self, params=None) -> None:
        super().__init__(params)
        self._feed = None
        self._x: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _crosses(self, c) -> tuple[np.ndarray, np.ndarray]:
        n = len(c)
        f = talib.SMA(c.close, self.params["fast"]) if n >= self.params["fast"] else np.full(n, np.nan)
        s = talib.SMA(c.close, self.params["slow"]) if n >= self.params["slow"] else np.full(n, np.nan)
        with np.errstate(invalid="ignore"):
            above = f > s
        prev = np.concatenate(([False], above[:-1]))
        valid = ~np.isnan(s) & ~np.isnan(np.concatenate(([np.nan], s[:-1])))
        return above & ~prev & valid, ~above & prev & valid

    def entry_signals(self, candles, symbol: str = "") -> np.ndarray:
        return self._crosses(candles)[0]

    def prepare(self, feed) -> None:
        if feed is not self._feed:
            self._feed, self._x = feed, {}

    def _get(self, ctx):
        x = self._x.get(ctx.symbol)
        if x is None:
            up, down = self._crosses(ctx.candles)
            x = self._x[ctx.symbol] = (up, down, np.flatnonzero(up | down))
        return x

    def on_candle(self, ctx):
        up, down, _ = self._get(ctx)
        i = ctx.i
        amt = ctx.position.amount
        if up[i] and amt == 0.0 and not ctx.orders:
            return [
                OrderIntent(
                    ctx.symbol, Side.BUY, OrderType.MARKET, quote_amount=self.params["quote_amount"], tag="entry"
                )
            ]
        if down[i] and amt > 0.0:
            return [OrderIntent(ctx.symbol, Side.SELL, OrderType.MARKET, tag="exit", reduce_only=True)]
        return None

    def next_wake(self, ctx):
        idx = self._get(ctx)[2]
        k = int(np.searchsorted(idx, ctx.i + 1))
        return int(idx[k]) if k < len(idx) else None
