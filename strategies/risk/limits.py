"""Portfolio exposure limits: capital at risk of open positions and of a new entry.

Pure functions (no Django). "Capital at risk" of a position is what it loses if its stop is
hit: ``notional × |entry - stop| / entry``; a position **without a stop** counts its whole
notional as at risk (nothing bounds its loss). Amounts are USDT floats.
"""

from __future__ import annotations

from collections.abc import Iterable

from .types import OpenPosition

__all__ = ["position_risk", "capital_at_risk", "entry_risk"]


def position_risk(pos: OpenPosition) -> float:
    """USDT at risk in one open position: ``notional × |entry - stop| / entry``, or the whole
    notional when it has no stop (or a non-positive entry price)."""
    if pos.stop_price is None or pos.entry_price <= 0:
        return abs(pos.notional)
    return abs(pos.notional) * abs(pos.entry_price - pos.stop_price) / pos.entry_price


def capital_at_risk(positions: Iterable[OpenPosition]) -> float:
    """Sum of :func:`position_risk` over ``positions``, USDT."""
    return sum(position_risk(p) for p in positions)


def entry_risk(quote_amount: float, stop_fraction: float | None) -> float:
    """USDT at risk in a new entry of ``quote_amount`` with the given stop distance fraction
    (``None`` = no stop = the whole amount)."""
    return quote_amount if stop_fraction is None else quote_amount * stop_fraction
