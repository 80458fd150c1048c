"""Portfolio risk layer: sizing, limits, daily loss, drawdown, correlation and market regime.

Pure Python + numpy (no Django). The engine builds a :class:`RiskManager` from a
:class:`RiskConfig`, calls :meth:`RiskManager.on_candle` once per stepping candle close and
:meth:`RiskManager.check_entry` before every NEW position; every rule that blocks or resizes
reports a named :class:`~strategies.engine.types.Decision`. See ``docs/risk.md``.
"""

from .config import RiskConfig
from .manager import RiskManager
from .regime import Regime, RegimeMetrics
from .types import EntryRequest, OpenPosition, PortfolioView, RiskDecision

__all__ = [
    "RiskManager",
    "RiskConfig",
    "EntryRequest",
    "PortfolioView",
    "OpenPosition",
    "RiskDecision",
    "Regime",
    "RegimeMetrics",
]
