"""The engine's state and result types: :class:`EngineState` (what a bot saves between
steps, JSON round-trip) and :class:`RunResult` (what one :meth:`Engine.run` produced).

Pure Python + numpy (no Django). Re-exported by :mod:`strategies.engine.engine`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .orders import ClosedTrade, Fill, Order
from .types import Decision

__all__ = ["EngineState", "RunResult"]


@dataclass
class EngineState:
    """Everything a bot needs to continue where it stopped (JSON-safe, see :meth:`to_json`).

    Attributes:
        capital: starting capital in quote currency.
        last_time: open time (epoch ms) of the last processed stepping candle, or ``None``.
        portfolio: cash, positions and open deals (:meth:`Portfolio.to_dict`).
        open_orders: resting orders (:meth:`Order.to_dict`), oldest first.
        strategy: the strategy's state as a dict. risk: the risk manager's ``state_dict()``.
        order_seq / deal_seq: id counters. peak_equity, day_start_equity (quote), day_index
        (UTC day number of ``day_start_equity``), last_equity: for drawdown and daily-loss rules.
        closed_pnls / closed_pnl_pcts: realized P&L (quote / percent) of the last closed deals.
    """

    capital: float
    last_time: int | None = None
    portfolio: dict[str, Any] = field(default_factory=dict)
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    strategy: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] | None = None
    order_seq: int = 0
    deal_seq: int = 0
    peak_equity: float = 0.0
    day_start_equity: float = 0.0
    day_index: int = -1
    last_equity: float = 0.0
    closed_pnls: list[float] = field(default_factory=list)
    closed_pnl_pcts: list[float] = field(default_factory=list)
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces); floats round-trip exactly."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineState:
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> EngineState:
        return cls.from_dict(json.loads(s))


@dataclass
class RunResult:
    """What one :meth:`Engine.run` produced.

    ``orders``: every order created or changed in this run (final status at the end of the
    run), in first-touch order; ``fills``, ``trades`` (closed deals) and ``decisions`` in time
    order; ``equity_time`` (int64 epoch ms of each candle **close**) and ``equity`` (float64
    quote) — one point per stepping candle processed; ``open_deals``: live view of the deals
    still open (see :meth:`Engine.open_deals`); ``state``: the new :class:`EngineState`.
    """

    state: EngineState
    orders: list[Order]
    fills: list[Fill]
    trades: list[ClosedTrade]
    decisions: list[Decision]
    equity_time: np.ndarray
    equity: np.ndarray
    open_deals: list[dict[str, Any]]
    candles_processed: int = 0
    candle_steps: int = 0
    visits: int = 0  # strategy on_candle calls (not in to_dict: skipping changes it, nothing else)

    @property
    def deals(self) -> list[ClosedTrade]:
        return self.trades

    def equity_points(self) -> list[dict[str, Any]]:
        return [{"time": int(t), "equity": float(e)} for t, e in zip(self.equity_time, self.equity, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe report (``json.dumps(result.to_dict(), sort_keys=True)`` is byte-stable)."""
        return {
            "orders": [o.to_dict() for o in self.orders],
            "fills": [f.to_dict() for f in self.fills],
            "trades": [t.to_dict() for t in self.trades],
            "decisions": [d.to_dict() for d in self.decisions],
            "equity": self.equity_points(),
            "open_deals": self.open_deals,
            "state": self.state.to_dict(),
            "candles_processed": self.candles_processed,
            "candle_steps": self.candle_steps,
        }
