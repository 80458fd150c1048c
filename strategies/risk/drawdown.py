"""Equity-loss measures used by the daily-loss limit and the drawdown protection.

Pure functions (no Django). Inputs are USDT equities; outputs are **percent numbers**
(5.0 = 5 %), positive for a loss. A non-positive reference (peak or day start) gives 0.0 —
there is nothing meaningful to lose from.
"""

from __future__ import annotations

__all__ = ["drawdown_pct", "loss_pct", "DAY_MS"]

DAY_MS = 86_400_000


def loss_pct(reference: float, equity: float) -> float:
    """``(reference - equity) / reference × 100``; negative when equity is above the reference."""
    if reference <= 0.0:
        return 0.0
    return (reference - equity) / reference * 100.0


def drawdown_pct(peak: float, equity: float) -> float:
    """Drawdown from the peak in percent, ``max(0, (peak - equity) / peak × 100)``."""
    return max(0.0, loss_pct(peak, equity))
