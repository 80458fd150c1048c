"""Configuration of the portfolio risk layer: one validated, JSON-safe dataclass.

Pure Python (no Django). :class:`RiskConfig` holds every knob of :class:`~strategies.risk.RiskManager`.
Money is quote currency (USDT, float64); every ``*_pct`` field is a **percent number**
(``5.0`` means 5 %), every ``*_mult`` / multiplier a plain factor (``0.5`` halves a size).
``None`` switches an optional rule off. ``docs/risk.md`` is the reference for each field.

The defaults are mostly permissive: the strategy's own size is kept, there is no daily-loss,
drawdown, position-count or capital-at-risk limit; only the market-regime circuit breaker
(PANIC blocks new longs) and the correlation limit (halve an entry correlated > 0.7 with an
open position) are on, because they only act in unusual markets or on doubled-up exposure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RiskConfig", "SIZING_MODES", "CORRELATION_ACTIONS", "REGIMES"]

SIZING_MODES = ("strategy", "fixed", "equity_pct", "risk_per_trade", "kelly")
FALLBACK_MODES = ("strategy", "fixed", "equity_pct")
CORRELATION_ACTIONS = ("off", "shrink", "block")
REGIMES = ("panic", "caution", "normal", "euphoria")

DEFAULT_UNIVERSE = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "AVAX/USDT",
    "DOGE/USDT",
    "LINK/USDT",
    "LTC/USDT",
)


def _default_long_mults() -> dict[str, float]:
    return {"panic": 0.0, "caution": 0.5, "normal": 1.0, "euphoria": 0.75}


def _default_short_mults() -> dict[str, float]:
    # A short in a crash goes with the move but into squeeze-prone volatility (2024-08-06
    # rebounded +14 % market-wide within 6 hours), and a short into euphoria fights the move.
    return {"panic": 0.5, "caution": 0.75, "normal": 1.0, "euphoria": 0.5}


@dataclass
class RiskConfig:
    """Every setting of the portfolio risk layer (see ``docs/risk.md`` for the full reference).

    Units: quote-currency amounts are USDT floats; ``*_pct`` are percent numbers (5.0 = 5 %);
    multipliers are factors; windows are counted in candles of the stepping timeframe unless
    the name says ``_hours``. Constructing an instance validates it (``ValueError`` naming the
    field); :meth:`from_dict` also rejects unknown keys.
    """

    # -- sizing -----------------------------------------------------------------------------
    sizing_mode: str = "strategy"
    fixed_quote: float = 100.0
    equity_pct: float = 10.0
    risk_per_trade_pct: float = 1.0
    sizing_fallback: str = "strategy"
    kelly_fraction: float = 0.5
    kelly_cap_pct: float = 25.0
    kelly_min_trades: int = 20
    kelly_lookback_trades: int = 100
    confidence_scaling: bool = False
    confidence_min_mult: float = 0.5
    confidence_max_mult: float = 1.0
    vol_target_pct: float | None = None
    vol_window: int = 48
    vol_max_mult: float = 2.0
    symbol_multipliers: dict[str, float] = field(default_factory=dict)
    min_quote: float = 0.0
    # -- limits -----------------------------------------------------------------------------
    max_positions: int | None = None
    max_capital_at_risk_pct: float | None = None
    # -- daily loss -------------------------------------------------------------------------
    daily_loss_limit_pct: float | None = None
    # -- drawdown ---------------------------------------------------------------------------
    drawdown_reduce_pct: float | None = None
    drawdown_size_mult: float = 0.5
    drawdown_pause_pct: float | None = None
    drawdown_auto_resume_pct: float | None = None
    # -- correlation ------------------------------------------------------------------------
    correlation_action: str = "shrink"
    correlation_max: float = 0.7
    correlation_window: int = 48
    correlation_shrink_mult: float = 0.5
    # -- circuit breaker (market regime) ----------------------------------------------------
    regime_enabled: bool = True
    regime_symbol: str = "BTC/USDT"
    regime_universe: tuple[str, ...] = DEFAULT_UNIVERSE
    regime_min_universe: int = 3
    regime_update_minutes: int = 60
    regime_min_hold_hours: float = 3.0
    regime_return_hours: int = 24
    regime_vol_short_hours: int = 24
    regime_vol_long_hours: int = 720
    panic_btc_return_pct: float = -8.0
    panic_market_return_pct: float = -12.0
    panic_vol_ratio: float = 2.0
    caution_btc_return_pct: float = -4.0
    caution_market_return_pct: float = -6.0
    caution_vol_ratio: float = 1.75
    euphoria_btc_return_pct: float = 8.0
    euphoria_market_return_pct: float = 12.0
    regime_long_multipliers: dict[str, float] = field(default_factory=_default_long_mults)
    regime_short_multipliers: dict[str, float] = field(default_factory=_default_short_mults)

    def __post_init__(self) -> None:
        self.validate()

    # -- (de)serialisation ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskConfig:
        """Build and validate from a JSON-like dict; missing keys take their defaults.

        Raises ``ValueError`` naming the field for an unknown key or a bad value.
        """
        if not isinstance(data, dict):
            raise ValueError("RiskConfig: expected a dict")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ValueError(f"{key}: unknown RiskConfig field")
        kwargs = dict(data)
        if "regime_universe" in kwargs and isinstance(kwargs["regime_universe"], list):
            kwargs["regime_universe"] = tuple(kwargs["regime_universe"])
        for key in ("regime_long_multipliers", "regime_short_multipliers"):
            if key in kwargs and isinstance(kwargs[key], dict):
                # a partial dict overrides only the regimes it names
                base = _default_long_mults() if key == "regime_long_multipliers" else _default_short_mults()
                base.update(kwargs[key])
                kwargs[key] = base
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists); ``from_dict(to_dict())`` gives an equal config."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, dict):
                v = dict(v)
            out[f.name] = v
        return out

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError("<field>: ...")`` on the first bad value."""
        _choice(self, "sizing_mode", SIZING_MODES)
        _choice(self, "sizing_fallback", FALLBACK_MODES)
        _choice(self, "correlation_action", CORRELATION_ACTIONS)
        _num(self, "fixed_quote", lo=0.0, lo_open=True)
        _num(self, "equity_pct", lo=0.0, hi=10_000.0, lo_open=True)
        _num(self, "risk_per_trade_pct", lo=0.0, hi=100.0, lo_open=True)
        _num(self, "kelly_fraction", lo=0.0, hi=1.0, lo_open=True)
        _num(self, "kelly_cap_pct", lo=0.0, hi=10_000.0, lo_open=True)
        _int(self, "kelly_min_trades", lo=1)
        _int(self, "kelly_lookback_trades", lo=0)
        _bool(self, "confidence_scaling")
        _num(self, "confidence_min_mult", lo=0.0)
        _num(self, "confidence_max_mult", lo=0.0)
        if self.confidence_max_mult < self.confidence_min_mult:
            raise ValueError("confidence_max_mult: must be >= confidence_min_mult")
        _num(self, "vol_target_pct", lo=0.0, lo_open=True, optional=True)
        _int(self, "vol_window", lo=2)
        _num(self, "vol_max_mult", lo=0.0, lo_open=True)
        _mult_dict(self, "symbol_multipliers", keys=None)
        _num(self, "min_quote", lo=0.0)
        _int(self, "max_positions", lo=0, optional=True)
        _num(self, "max_capital_at_risk_pct", lo=0.0, lo_open=True, optional=True)
        _num(self, "daily_loss_limit_pct", lo=0.0, hi=100.0, lo_open=True, optional=True)
        _num(self, "drawdown_reduce_pct", lo=0.0, hi=100.0, lo_open=True, optional=True)
        _num(self, "drawdown_size_mult", lo=0.0)
        _num(self, "drawdown_pause_pct", lo=0.0, hi=100.0, lo_open=True, optional=True)
        _num(self, "drawdown_auto_resume_pct", lo=0.0, hi=100.0, optional=True)
        if self.drawdown_auto_resume_pct is not None:
            if self.drawdown_pause_pct is None:
                raise ValueError("drawdown_auto_resume_pct: needs drawdown_pause_pct")
            if self.drawdown_auto_resume_pct >= self.drawdown_pause_pct:
                raise ValueError("drawdown_auto_resume_pct: must be below drawdown_pause_pct")
        _num(self, "correlation_max", lo=-1.0, hi=1.0)
        _int(self, "correlation_window", lo=2)
        _num(self, "correlation_shrink_mult", lo=0.0, hi=1.0)
        _bool(self, "regime_enabled")
        if not isinstance(self.regime_symbol, str) or not self.regime_symbol:
            raise ValueError("regime_symbol: must be a non-empty ccxt symbol")
        if not isinstance(self.regime_universe, tuple) or not all(
            isinstance(s, str) and s for s in self.regime_universe
        ):
            raise ValueError("regime_universe: must be a list of ccxt symbols")
        _int(self, "regime_min_universe", lo=1)
        _int(self, "regime_update_minutes", lo=1)
        _num(self, "regime_min_hold_hours", lo=0.0)
        _int(self, "regime_return_hours", lo=1)
        _int(self, "regime_vol_short_hours", lo=2)
        _int(self, "regime_vol_long_hours", lo=2)
        if self.regime_vol_long_hours <= self.regime_vol_short_hours:
            raise ValueError("regime_vol_long_hours: must be longer than regime_vol_short_hours")
        for name in (
            "panic_btc_return_pct",
            "panic_market_return_pct",
            "caution_btc_return_pct",
            "caution_market_return_pct",
        ):
            _num(self, name, hi=0.0, hi_open=True)
        for name in ("euphoria_btc_return_pct", "euphoria_market_return_pct"):
            _num(self, name, lo=0.0, lo_open=True)
        _num(self, "panic_vol_ratio", lo=0.0, lo_open=True)
        _num(self, "caution_vol_ratio", lo=0.0, lo_open=True)
        if self.panic_btc_return_pct > self.caution_btc_return_pct:
            raise ValueError("panic_btc_return_pct: must be <= caution_btc_return_pct")
        if self.panic_market_return_pct > self.caution_market_return_pct:
            raise ValueError("panic_market_return_pct: must be <= caution_market_return_pct")
        _mult_dict(self, "regime_long_multipliers", keys=REGIMES)
        _mult_dict(self, "regime_short_multipliers", keys=REGIMES)


# -- validators (each raises ValueError naming the field) -----------------------------------
def _choice(cfg: RiskConfig, name: str, choices: tuple[str, ...]) -> None:
    v = getattr(cfg, name)
    if v not in choices:
        raise ValueError(f"{name}: {v!r} is not one of {', '.join(choices)}")


def _bool(cfg: RiskConfig, name: str) -> None:
    if not isinstance(getattr(cfg, name), bool):
        raise ValueError(f"{name}: must be true or false")


def _num(
    cfg: RiskConfig,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> None:
    v = getattr(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name}: must be a finite number, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}, got {v!r}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise ValueError(f"{name}: must be {'<' if hi_open else '<='} {hi:g}, got {v!r}")
    setattr(cfg, name, float(v))


def _int(cfg: RiskConfig, name: str, lo: int | None = None, optional: bool = False) -> None:
    v = getattr(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name}: must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {v!r}")


def _mult_dict(cfg: RiskConfig, name: str, keys: tuple[str, ...] | None) -> None:
    d = getattr(cfg, name)
    if not isinstance(d, dict):
        raise ValueError(f"{name}: must be a mapping")
    if keys is not None:
        missing = [k for k in keys if k not in d]
        extra = [k for k in d if k not in keys]
        if missing or extra:
            raise ValueError(f"{name}: keys must be exactly {', '.join(keys)}")
    for k, v in d.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"{name}: keys must be non-empty strings")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: multiplier for {k!r} must be a number >= 0, got {v!r}")
        d[k] = float(v)
