"""Value types at the seam between the engine and the portfolio risk layer.

Pure Python (no Django). The engine builds a :class:`PortfolioView` per call and an
:class:`EntryRequest` per new position; the risk manager answers with a :class:`RiskDecision`.
All money is quote currency (USDT) as float64; times are epoch **milliseconds** UTC (candle
open times, as everywhere in the core).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strategies.engine.types import Decision, MarketDataView

__all__ = ["EntryRequest", "OpenPosition", "PortfolioView", "RiskDecision", "LONG", "SHORT"]

LONG = "long"
SHORT = "short"


@dataclass(slots=True)
class EntryRequest:
    """A strategy's wish to open a NEW position (never a DCA safety order).

    Attributes:
        time_ms: open time of the candle the decision is taken on, epoch ms UTC.
        symbol: ccxt unified symbol (``"BTC/USDT"``).
        side: ``"long"`` or ``"short"``.
        quote_amount: the size the strategy asks for, USDT notional (> 0).
        price: the expected entry price, quote currency (> 0).
        stop_price: the protective stop, quote currency, or ``None`` (no stop).
        confidence: the strategy's confidence in ``[0, 1]`` or ``None`` (unknown).
    """

    time_ms: int
    symbol: str
    side: str
    quote_amount: float
    price: float
    stop_price: float | None = None
    confidence: float | None = None


@dataclass(slots=True)
class OpenPosition:
    """One open position as the risk layer sees it.

    Attributes:
        symbol: ccxt unified symbol.
        side: ``"long"`` or ``"short"``.
        notional: current absolute size in USDT (amount × price, > 0).
        entry_price: average entry price, quote currency.
        stop_price: the protective stop, or ``None`` when the position has none.
    """

    symbol: str
    side: str
    notional: float
    entry_price: float
    stop_price: float | None = None


@dataclass(slots=True)
class PortfolioView:
    """The portfolio at one candle close, read-only for the risk layer.

    Attributes:
        time_ms: open time of the stepping candle, epoch ms UTC.
        equity: cash + marked positions, USDT.
        cash: free quote balance, USDT.
        peak_equity: highest equity the engine has seen, USDT (the risk manager also tracks
            its own peak and uses the larger of the two).
        day_start_equity: the engine's equity at the start of the UTC day, USDT. Only used to
            seed the risk manager on its very first call; after that its own day tracking is
            authoritative (see :class:`~strategies.risk.RiskManager`).
        positions: the open positions.
        closed_pnls: realized P&L of closed trades, USDT, oldest first.
        closed_pnl_pcts: the same trades' P&L as percent of their cost (5.0 = +5 %), oldest first.
        market: causal market data (may be ``None``; then market-based rules are skipped).
    """

    time_ms: int
    equity: float
    cash: float
    peak_equity: float
    day_start_equity: float
    positions: list[OpenPosition] = field(default_factory=list)
    closed_pnls: list[float] = field(default_factory=list)
    closed_pnl_pcts: list[float] = field(default_factory=list)
    market: MarketDataView | None = None


@dataclass(slots=True)
class RiskDecision:
    """The risk layer's answer to an :class:`EntryRequest`.

    Attributes:
        approved: ``True`` when the entry may go ahead.
        quote_amount: the size to use, USDT (possibly resized); ``0.0`` when refused.
        decisions: the reasons — one :class:`Decision` per rule that blocked or resized (plus
            any INFO decisions, e.g. a regime change, noticed during this call).
    """

    approved: bool
    quote_amount: float
    decisions: list[Decision] = field(default_factory=list)
