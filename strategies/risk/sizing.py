"""Position-sizing arithmetic: stop distance, Kelly fraction, confidence and volatility scaling.

Pure functions on floats and numpy arrays (no Django, no state) so each formula can be tested
by hand. Money is quote currency (USDT); fractions are plain (0.02 = 2 %) unless a name ends in
``_pct`` (a percent number, 2.0 = 2 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KellyStats",
    "kelly_stats",
    "stop_distance_fraction",
    "confidence_multiplier",
    "realized_vol_annual_pct",
    "vol_multiplier",
    "YEAR_MS",
]

YEAR_MS = 365 * 86_400_000  # crypto trades 24/7: 365 days of candles per year


def stop_distance_fraction(price: float, stop_price: float | None, side: str) -> float | None:
    """Distance from entry to stop as a fraction of the entry price: ``|price - stop| / price``.

    Returns ``None`` when there is no stop. Raises ``ValueError`` when the stop is on the wrong
    side (a long's stop must be below the entry, a short's above) or a price is not positive.
    """
    if stop_price is None:
        return None
    if price <= 0 or stop_price <= 0:
        raise ValueError(f"prices must be positive (price {price}, stop {stop_price})")
    if side == "long" and stop_price >= price:
        raise ValueError(f"stop {stop_price:g} is not below entry {price:g} for a long")
    if side == "short" and stop_price <= price:
        raise ValueError(f"stop {stop_price:g} is not above entry {price:g} for a short")
    return abs(price - stop_price) / price


@dataclass(frozen=True, slots=True)
class KellyStats:
    """Realized-trade statistics and the Kelly fraction.

    Attributes:
        trades: number of trades used.
        win_rate: W, fraction of trades with P&L > 0 (break-even trades count as non-wins).
        avg_win_pct / avg_loss_pct: mean P&L of winners / mean absolute P&L of losers, percent.
        payoff: R = avg_win / avg_loss (``inf`` when there is no loser, 0 when no winner).
        f_star: the full Kelly fraction of equity, ``W - (1 - W) / R`` (``W`` when R is
            infinite; ``-1.0`` when there are no winners).
    """

    trades: int
    win_rate: float
    avg_win_pct: float
    avg_loss_pct: float
    payoff: float
    f_star: float


def kelly_stats(pnl_pcts: Sequence[float], lookback: int = 0) -> KellyStats:
    """Kelly criterion from realized trade returns.

    ``pnl_pcts`` are closed trades' P&L in percent of their cost, oldest first; only the last
    ``lookback`` are used (0 = all). The binary-outcome Kelly fraction (Kelly 1956, "A New
    Interpretation of Information Rate"; in Thorp's form for uneven payoffs, Thorp 2006, "The
    Kelly criterion in blackjack, sports betting and the stock market") is
    ``f* = W - (1 - W) / R`` with win rate ``W`` and payoff ratio ``R = avg win / avg loss``.
    Raises ``ValueError`` when there are no trades.
    """
    xs = list(pnl_pcts[-lookback:] if lookback else pnl_pcts)
    n = len(xs)
    if n == 0:
        raise ValueError("kelly_stats needs at least one trade")
    wins = [x for x in xs if x > 0]
    losses = [-x for x in xs if x < 0]
    w = len(wins) / n
    avg_win = sum(wins) / len(wins) if wins else 0.0
    avg_loss = sum(losses) / len(losses) if losses else 0.0
    if not wins:
        return KellyStats(n, w, avg_win, avg_loss, 0.0, -1.0)
    if avg_loss == 0.0:
        return KellyStats(n, w, avg_win, avg_loss, math.inf, w)
    r = avg_win / avg_loss
    return KellyStats(n, w, avg_win, avg_loss, r, w - (1.0 - w) / r)


def confidence_multiplier(confidence: float | None, lo: float, hi: float) -> float:
    """Linear size multiplier from a confidence in ``[0, 1]``: ``lo + (hi - lo) * confidence``.

    The confidence is clipped to ``[0, 1]``; ``None`` (unknown) gives ``1.0``.
    """
    if confidence is None:
        return 1.0
    c = min(1.0, max(0.0, float(confidence)))
    return lo + (hi - lo) * c


def realized_vol_annual_pct(closes: np.ndarray, timeframe_ms: int) -> float | None:
    """Annualized realized volatility in percent from closes (float64, oldest first).

    Sample standard deviation (ddof=1) of log returns × ``sqrt(YEAR_MS / timeframe_ms)`` × 100.
    ``None`` with fewer than 3 closes (2 returns).
    """
    if len(closes) < 3:
        return None
    r = np.diff(np.log(closes))
    return float(np.std(r, ddof=1) * math.sqrt(YEAR_MS / timeframe_ms) * 100.0)


def vol_multiplier(realized_pct: float, target_pct: float, cap: float) -> float:
    """Volatility-targeting multiplier ``min(target / realized, cap)`` (``cap`` when realized is 0)."""
    if realized_pct <= 0.0:
        return cap
    return min(target_pct / realized_pct, cap)
