"""Smart DCA's 3Commas formulas (safety-order deviations, prices, sizes; take profit), pure.

Floats in, floats out (percent and quote currency as named); no Django. See the package doc.
"""

from __future__ import annotations

__all__ = ["HOUR_MS", "deal_take_profit_price", "so_deviations", "so_prices", "so_sizes", "take_profit_price"]

_INF = float("inf")
HOUR_MS = 3_600_000


def so_deviations(price_deviation: float, step_scale: float, n: int) -> list[float]:
    """Cumulative deviations (percent of the base order price) of safety orders 1..n."""
    out, cum = [], 0.0
    for k in range(n):
        cum = cum + price_deviation * step_scale**k
        out.append(cum)
    return out


def so_prices(base_price: float, price_deviation: float, step_scale: float, n: int, side: str = "long") -> list[float]:
    """Unrounded prices (quote) of safety orders 1..n (see module doc)."""
    sign = -1.0 if side == "long" else 1.0
    return [base_price * (1.0 + sign * d / 100.0) for d in so_deviations(price_deviation, step_scale, n)]


def so_sizes(safety_order_size: float, volume_scale: float, n: int) -> list[float]:
    """Sizes (quote) of safety orders 1..n: ``size x volume_scale^(k-1)``."""
    return [safety_order_size * volume_scale**k for k in range(n)]


def take_profit_price(avg_entry: float, take_profit_pct: float, side: str = "long") -> float:
    """3Commas TP of total volume: ``avg x (1 + tp/100)`` long, ``avg x (1 - tp/100)`` short."""
    return (
        avg_entry * (1.0 + take_profit_pct / 100.0) if side == "long" else avg_entry * (1.0 - take_profit_pct / 100.0)
    )


def deal_take_profit_price(
    take_profit_pct: float,
    side: str,
    *,
    tp_type: str,
    avg_entry: float,
    entry_cost: float,
    base_cost: float,
    amount: float,
) -> float:
    """The deal's unrounded take-profit price (quote) for the strategy's ``tp_type``.

    ``"total"``: :func:`take_profit_price` of ``avg_entry``; ``"base"``: the price where the
    profit equals ``take_profit_pct`` % of the base order's cost ``base_cost``:
    ``(entry_cost + base_cost x tp/100) / amount`` long, ``(entry_cost - base_cost x tp/100) /
    amount`` short (``entry_cost`` quote spent by the entries, ``amount`` base held > 0).
    Smart DCA places its TP order here (rounded to the market's tick) and the ML labels read
    the same formula for the deal-state features.
    """
    if tp_type == "total":
        return take_profit_price(avg_entry, take_profit_pct, side)
    target = base_cost * take_profit_pct / 100.0
    return (entry_cost + target) / amount if side == "long" else (entry_cost - target) / amount


def _quote_ccy(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"USDT"``; ``"BTC/USDT:USDT"`` -> ``"USDT"``."""
    return symbol.split("/")[-1].split(":")[0]
