"""Smart DCA's ``start_condition="fork_signal"``: a deal may start at the close of a candle where
the ``fork_score`` detector (default parameters) passes. Pure numpy (no Django); causal, with
BTC/USDT's candles from the feed as the market condition when the feed holds them."""

from __future__ import annotations

import numpy as np

__all__ = ["fork_signal_mask"]


def fork_signal_mask(feed, symbol: str, n: int) -> np.ndarray:
    """Boolean array over ``symbol``'s ``n`` candles: True where ``fork_score`` passes."""
    from strategies.library.signal_strategy import passing_signals

    out = np.zeros(n, dtype=bool)
    idx = list(passing_signals("fork_score", {}, feed, symbol))
    out[idx] = True
    return out
