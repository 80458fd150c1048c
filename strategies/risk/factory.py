"""The one way a :class:`~strategies.risk.RiskManager` is built from a JSON ``risk`` block.

Pure Python (no Django). The backtest (``strategies.backtest``) and the bot runner
(``trading.services.runner``) both call :func:`risk_manager_from_config`, and the bot services
validate a bot's block with :func:`risk_config_validate`, so a bot and a backtest given the
same block apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .config import RiskConfig
from .manager import RiskManager

__all__ = [
    "risk_config_validate",
    "risk_config_with_symbol_multipliers",
    "risk_manager_from_config",
    "risk_config_defaults",
]


def risk_config_defaults() -> dict[str, Any]:
    """The default ``risk`` block (every :class:`RiskConfig` field with its default), JSON-safe."""
    return RiskConfig().to_dict()


def risk_config_validate(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a ``risk`` block and return it complete (missing keys take their defaults).

    Raises ``ValueError("<field>: ...")`` for an unknown key, a wrong type or a bad value.
    """
    try:
        return RiskConfig.from_dict(config).to_dict()
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def risk_manager_from_config(config: dict[str, Any] | None, *, markets: Iterable[Any] = ()) -> RiskManager | None:
    """A :class:`RiskManager` for a ``risk`` block, or ``None`` when there is none (``None``).

    ``markets``: the traded :class:`~strategies.engine.MarketSpec` objects; their ``min_cost``
    (USDT) and ``min_amount`` (base units) become the manager's market minimums, so an entry
    the risk rules shrank below the exchange's minimum is refused with a reason instead of
    being rejected by the broker. Raises ``ValueError`` for an invalid block.
    """
    if config is None:
        return None
    cfg = RiskConfig.from_dict(risk_config_validate(config))
    minimums = {m.symbol: (float(m.min_cost or 0.0), float(m.min_amount or 0.0)) for m in markets}
    return RiskManager(cfg, market_minimums=minimums)


def risk_config_with_symbol_multipliers(
    config: dict[str, Any] | None, multipliers: dict[str, float]
) -> dict[str, Any] | None:
    """``config`` with ``multipliers`` (``{symbol: factor}``, e.g. a user's watchlist) added to
    its ``symbol_multipliers`` **under** the ones it sets itself: a symbol the block names keeps
    the block's factor. ``None`` (no risk block) stays ``None``: without portfolio risk nothing
    resizes an entry. Returns a new dict; ``config`` is not changed."""
    if config is None or not multipliers:
        return config
    own = dict(config.get("symbol_multipliers") or {})
    return {**config, "symbol_multipliers": {**dict(multipliers), **own}}
