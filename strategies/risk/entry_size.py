"""Entry sizing steps of :meth:`strategies.risk.RiskManager.check_entry`: the base size of a
``sizing_mode`` (with its fallback) and the volatility-scaling multiplier.

Pure Python + numpy (no Django). Money is USDT float64; config percents are percent numbers.
"""

from __future__ import annotations

import math

from .config import RiskConfig
from .sizing import kelly_stats, realized_vol_annual_pct, vol_multiplier
from .types import EntryRequest, PortfolioView

__all__ = ["base_size", "vol_step"]


def base_size(cfg: RiskConfig, req: EntryRequest, view: PortfolioView, frac: float | None) -> tuple[float, str] | str:
    """``(amount, explanation)`` for the configured mode (explanation ``""`` = strategy's
    size kept silently), or a refusal sentence."""
    eq = float(view.equity)
    mode = cfg.sizing_mode
    if mode == "strategy":
        return req.quote_amount, ""
    if mode == "fixed":
        return cfg.fixed_quote, f"fixed size {cfg.fixed_quote:.2f} USDT"
    if mode == "equity_pct":
        amount = eq * cfg.equity_pct / 100.0
        return amount, f"{cfg.equity_pct:.2f}% of equity {eq:.2f} = {amount:.2f} USDT"
    if mode == "risk_per_trade":
        if frac is None:
            return _fallback(cfg, req, eq, "no stop price for risk_per_trade sizing")
        amount = eq * cfg.risk_per_trade_pct / 100.0 / frac
        return amount, (
            f"risk {cfg.risk_per_trade_pct:.2f}% of equity {eq:.2f} over stop distance {frac * 100.0:.2f}% "
            f"= {amount:.2f} USDT"
        )
    # kelly
    pcts = view.closed_pnl_pcts
    used = min(len(pcts), cfg.kelly_lookback_trades) if cfg.kelly_lookback_trades else len(pcts)
    if used < cfg.kelly_min_trades:
        return _fallback(cfg, req, eq, f"kelly needs {cfg.kelly_min_trades} closed trades, have {used}")
    ks = kelly_stats(pcts, cfg.kelly_lookback_trades)
    payoff = "inf" if math.isinf(ks.payoff) else f"{ks.payoff:.2f}"
    stats = f"f*={ks.f_star:.4f} (W={ks.win_rate * 100.0:.2f}%, R={payoff}, {ks.trades} trades)"
    if ks.f_star <= 0.0:
        return f"kelly sees no edge: {stats}"
    frac_eq = cfg.kelly_fraction * ks.f_star
    cap = cfg.kelly_cap_pct / 100.0
    capped = ""
    if frac_eq > cap:
        frac_eq = cap
        capped = f", capped at {cfg.kelly_cap_pct:.2f}%"
    amount = eq * frac_eq
    return amount, (
        f"kelly {stats} x {cfg.kelly_fraction:g}{capped} = {frac_eq * 100.0:.2f}% of equity {eq:.2f} "
        f"= {amount:.2f} USDT"
    )


def _fallback(cfg: RiskConfig, req: EntryRequest, eq: float, why: str) -> tuple[float, str]:
    fb = cfg.sizing_fallback
    if fb == "fixed":
        return cfg.fixed_quote, f"{why}; fallback fixed size {cfg.fixed_quote:.2f} USDT"
    if fb == "equity_pct":
        amount = eq * cfg.equity_pct / 100.0
        return amount, f"{why}; fallback {cfg.equity_pct:.2f}% of equity {eq:.2f} = {amount:.2f} USDT"
    return req.quote_amount, f"{why}; fallback to the strategy's size {req.quote_amount:.2f} USDT"


def vol_step(cfg: RiskConfig, req: EntryRequest, view: PortfolioView) -> tuple[str, float, str] | None:
    market = view.market
    try:
        closes = market.closes(req.symbol, req.time_ms, cfg.vol_window + 1)
    except KeyError:
        return None
    if len(closes) < cfg.vol_window + 1:
        return None
    rv = realized_vol_annual_pct(closes, market.timeframe_ms())
    if rv is None:
        return None
    m = vol_multiplier(rv, cfg.vol_target_pct, cfg.vol_max_mult)
    if m == 1.0:
        return None
    return (
        "volatility_scaling",
        m,
        f"realized vol {rv:.2f}% vs target {cfg.vol_target_pct:.2f}% (annualized, {cfg.vol_window} candles)",
    )
