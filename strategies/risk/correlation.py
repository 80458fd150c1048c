"""Rolling return correlation between symbols, for the correlation limit.

Pure numpy (no Django). The correlation of two symbols is the Pearson correlation coefficient
of their last ``window`` log returns, each series taken as the ``window + 1`` latest closes up to
the decision time (alignment by count of latest closes, as the engine's feed steps all symbols
on the same clock; a symbol with a gap in its history is therefore slightly misaligned).
"""

from __future__ import annotations

import numpy as np

from strategies.engine.types import MarketDataView

__all__ = ["pearson", "log_returns", "rolling_correlation"]


def log_returns(closes: np.ndarray) -> np.ndarray:
    """``log(c[i] / c[i-1])`` for float64 closes, oldest first; length ``len(closes) - 1``."""
    c = np.asarray(closes, dtype=np.float64)
    return np.diff(np.log(c))


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson product-moment correlation of two equal-length series.

    ``sum((x - mean x)(y - mean y)) / sqrt(sum((x - mean x)^2) · sum((y - mean y)^2))``.
    ``None`` when fewer than 2 points or either series is constant (undefined). Raises
    ``ValueError`` on unequal lengths.
    """
    if len(x) != len(y):
        raise ValueError(f"series lengths differ: {len(x)} != {len(y)}")
    if len(x) < 2:
        return None
    dx = x - x.mean()
    dy = y - y.mean()
    den = float(np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    if den == 0.0:
        return None
    return max(-1.0, min(1.0, float(np.dot(dx, dy)) / den))


def rolling_correlation(market: MarketDataView, a: str, b: str, until_ms: int, window: int) -> float | None:
    """Correlation of the last ``window`` log returns of symbols ``a`` and ``b`` with candle
    open times ``<= until_ms``.

    ``None`` when either symbol is unknown to ``market`` or has fewer than ``window + 1``
    closes, or a series is constant. Same symbol gives ``1.0`` without reading data.
    """
    if a == b:
        return 1.0
    try:
        ca = market.closes(a, until_ms, window + 1)
        cb = market.closes(b, until_ms, window + 1)
    except KeyError:
        return None
    if len(ca) < window + 1 or len(cb) < window + 1:
        return None
    return pearson(log_returns(ca), log_returns(cb))
