"""Portfolio risk layer: sizing, limits, daily loss, drawdown, correlation and market regime.

Pure Python + numpy (no Django). The engine builds a :class:`RiskManager` from a
:class:`RiskConfig`, calls :meth:`RiskManager.on_candle` once per stepping candle close and
:meth:`RiskManager.check_entry` before every NEW position; every rule that blocks or resizes
reports a named :class:`~strategies.engine.types.Decision`. See ``docs/risk.md``.
"""

from .config import RiskConfig
from .factory import (
    risk_config_defaults,
    risk_config_validate,
    risk_config_with_symbol_multipliers,
    risk_manager_from_config,
)
from .manager import RiskManager
from .regime import Regime, RegimeMetrics
from .types import EntryRequest, OpenPosition, PortfolioView, RiskDecision

__all__ = [
    "RiskManager",
    "RiskConfig",
    "risk_manager_from_config",
    "risk_config_validate",
    "risk_config_defaults",
    "risk_config_with_symbol_multipliers",
    "EntryRequest",
    "PortfolioView",
    "OpenPosition",
    "RiskDecision",
    "Regime",
    "RegimeMetrics",
]
