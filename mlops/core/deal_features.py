"""Deal-state features of an open DCA deal (for the recovery-odds, DCA-spend and SAFU models).

Pure Python/numpy. Money arrives as ``Decimal`` from the database or float from the engine;
both are converted to float64 here (features are model inputs, not accounting).
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from mlops.core.feature_registry import DEAL_FEATURES

__all__ = ["DEAL_FEATURE_NAMES", "deal_features"]

DEAL_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in DEAL_FEATURES)

Number = float | int | Decimal


def _positive(name: str, value: Number) -> float:
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return x


def deal_features(
    *,
    side: str,
    avg_entry: Number,
    close: Number,
    safety_orders_filled: int,
    safety_orders_max: int,
    spent_quote: Number,
    max_spend_quote: Number,
    opened_at_ms: int,
    now_ms: int,
    take_profit_price: Number | None,
) -> np.ndarray:
    """The float32 row of :data:`DEAL_FEATURE_NAMES` for one open deal.

    - ``side`` ``"long"`` or ``"short"``; ``avg_entry`` / ``close`` / ``take_profit_price``
      quote currency (the TP may be ``None``: its distance is NaN);
    - ``spent_quote`` quote spent by the base and safety orders so far, ``max_spend_quote``
      the most the deal may spend (base + every safety order);
    - ``opened_at_ms`` / ``now_ms`` epoch ms UTC.

    ``deal_pnl_pct`` is the unrealised P&L in percent of the entry: long ``(close / avg - 1)``,
    short ``(avg / close - 1)`` ×100 (a short's P&L per unit of quote it would buy back);
    ``deal_drawdown_pct = max(0, -deal_pnl_pct)``; ``deal_tp_distance_pct`` the move still
    needed toward the TP in percent of close: long ``(tp / close - 1)``, short
    ``(1 - tp / close)`` ×100 (negative once beyond it).

    ``ValueError`` on an unknown side, non-positive prices or max spend, negative or too many
    filled safety orders, negative spend, or ``now_ms < opened_at_ms``.
    """
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    avg = _positive("avg_entry", avg_entry)
    px = _positive("close", close)
    cap = _positive("max_spend_quote", max_spend_quote)
    spent = float(spent_quote)
    if not math.isfinite(spent) or spent < 0:
        raise ValueError(f"spent_quote must be >= 0, got {spent_quote!r}")
    if safety_orders_max < 0 or not 0 <= safety_orders_filled <= safety_orders_max:
        raise ValueError(
            f"safety orders filled {safety_orders_filled} must be within 0..{safety_orders_max} (the max, >= 0)"
        )
    if now_ms < opened_at_ms:
        raise ValueError(f"now_ms {now_ms} is before opened_at_ms {opened_at_ms}")
    pnl = (px / avg - 1.0) * 100.0 if side == "long" else (avg / px - 1.0) * 100.0
    if take_profit_price is None:
        tp_dist = math.nan
    else:
        tp = _positive("take_profit_price", take_profit_price)
        tp_dist = (tp / px - 1.0) * 100.0 if side == "long" else (1.0 - tp / px) * 100.0
    row = (
        pnl,
        max(0.0, -pnl),
        float(safety_orders_filled),
        safety_orders_filled / safety_orders_max if safety_orders_max else 0.0,
        spent / cap,
        (now_ms - opened_at_ms) / 3_600_000,
        tp_dist,
    )
    return np.array(row, dtype=np.float32)
