"""``dca_detector`` (Crypto ML seed, issue 11 §2): buy a sharp dip with a grid of limit buys.

Pure numpy + TA-Lib (no Django). Rule at the close of candle ``i`` (all inputs causal):

* ``high_4h`` = highest high of the last ``lookback_hours`` (default 4 h), *current candle
  included*, converted to candles as ``n = max(1, round(lookback_hours × 3 600 000 ÷
  timeframe_ms))`` — 4 candles at 1h, 48 at 5m, 16 at 15m, 1 at 4h and above;
* ``drop% = (high_4h − close) ÷ high_4h × 100`` must be **≥ drop_pct** (default 5 %);
* ``RSI(rsi_period)`` (Wilder, TA-Lib, default 14) must be **< rsi_max** (default 30).

Grid (``extra["grid"]``): ``grid_levels`` (5) limit buys at ``price_k = close × (1 − k ×
grid_step_pct ÷ 100)``, ``k = 0 .. levels−1`` (1 % apart, the first at the signal price),
each ``weight = 1 ÷ levels`` of the quote budget (equal quote per level). The average entry of
the whole grid filled is then the quantity-weighted mean ``avg = levels ÷ Σ (1 ÷ price_k)``
(harmonic mean). Signal fields: ``entry`` = the signal price (close, grid level 0);
``take_profit = avg × (1 + take_profit_pct ÷ 100)`` (10 %); ``stop_loss = avg × (1 −
stop_loss_pct ÷ 100)`` (8 %); ``rrr`` measured from the average entry the exits are set on:
``(TP − avg) ÷ (avg − SL)`` (= 10 ÷ 8 = 1.25 with the defaults); ``extra["average_entry"]``.
These are the prices *if the whole grid fills*. ``extra["take_profit_pct"]`` /
``extra["stop_loss_pct"]`` carry the percentages, so the trading strategy
(:mod:`strategies.library.signal_strategy`) sets TP / SL on the **actual** average entry of
the levels that filled, re-placing them when another level fills.

Confidence (rule-based default until a ``ConfidenceProvider`` model plugs in), a sum of
components in [0, 1]:

* ``setup``: 0.30 when the rule holds (0 otherwise);
* ``drop``: ``0.35 × clip((drop% − drop_pct) ÷ drop_pct, 0, 1)`` — 0 at 5 %, full at 10 %;
* ``rsi``: ``0.35 × clip((rsi_max − RSI) ÷ 20, 0, 1)`` — 0 at 30, full at RSI 10.

``passed`` = rule holds and confidence ≥ ``min_confidence`` (0.60).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from market7.timeframes import timeframe_ms
from strategies.base import Param
from strategies.indicators.batch import rsi as rsi_fn

from .base import Component, DetectorBase, DetectorInput, Signal, register, rrr
from .windows import clip01, evaluated, resolve_params, rolling_max

__all__ = ["DCADetector", "lookback_candles", "grid_levels"]

SETUP_POINTS = 0.30
DROP_WEIGHT = 0.35
RSI_WEIGHT = 0.35
RSI_FULL_SPAN = 20.0  # RSI points below rsi_max for the full RSI component

PARAMS = (
    Param(
        "lookback_hours", "float", 4.0, 0.01, 720.0, "hours", "Window of the highest high the drop is measured from."
    ),
    Param("drop_pct", "float", 5.0, 0.1, 90.0, "%", "Close at least this far below the window's highest high."),
    Param("rsi_period", "int", 14, 2, 200, "candles", "RSI period."),
    Param("rsi_max", "float", 30.0, 1.0, 99.0, "RSI", "RSI strictly below this."),
    Param("grid_levels", "int", 5, 1, 50, "", "Limit buys in the grid."),
    Param("grid_step_pct", "float", 1.0, 0.01, 20.0, "%", "Distance between grid levels (of the signal price)."),
    Param("take_profit_pct", "float", 10.0, 0.01, 1000.0, "%", "Take profit above the grid's average entry."),
    Param("stop_loss_pct", "float", 8.0, 0.01, 99.0, "%", "Stop loss below the grid's average entry."),
    Param("min_confidence", "float", 0.60, 0.0, 1.0, "", "Minimum confidence to pass."),
)


def lookback_candles(lookback_hours: float, timeframe: str) -> int:
    """Candles covering ``lookback_hours`` on ``timeframe``: ``max(1, round(h × 3.6e6 ÷ tf_ms))``."""
    return max(1, round(lookback_hours * 3_600_000 / timeframe_ms(timeframe)))


def grid_levels(price: float, levels: int, step_pct: float) -> tuple[list[dict[str, float]], float]:
    """The grid ``[{price, weight}]`` from ``price`` down in steps of ``step_pct`` % of it, equal
    weights, and its average entry with equal quote per level (harmonic mean of the prices)."""
    prices = [price * (1.0 - k * step_pct / 100.0) for k in range(levels)]
    grid = [{"price": p, "weight": 1.0 / levels} for p in prices]
    return grid, levels / sum(1.0 / p for p in prices)


class DCADetector(DetectorBase):
    """The ``dca_detector`` strategy's detector (rule, grid and confidence in the module doc)."""

    name = "dca_detector"
    PARAMS = PARAMS

    def detect(
        self,
        data: DetectorInput,
        params: Mapping[str, Any] | None = None,
        *,
        since_ms: int | None = None,
        all_: bool = False,
    ) -> list[Signal]:
        p = resolve_params(self.PARAMS, params)
        c = data.candles
        if len(c) == 0:
            return []
        n = lookback_candles(p["lookback_hours"], data.timeframe)
        hh = rolling_max(c.high, n)
        r = rsi_fn(c.close, p["rsi_period"]) if len(c) > p["rsi_period"] else np.full(len(c), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            drop = (hh - c.close) / hh * 100.0
            hold = (drop >= p["drop_pct"]) & (r < p["rsi_max"])
        ready = np.isfinite(hh) & np.isfinite(r) & (hh > 0)
        idx = evaluated(c.time, since_ms, ready if all_ else ready & hold)
        out: list[Signal] = []
        for i in idx:
            sig = self._signal(data, p, int(i), float(drop[i]), float(r[i]), bool(hold[i]), n, float(hh[i]))
            if sig.passed or all_:
                out.append(sig)
        return out

    def _signal(self, data, p, i, drop, rsi_v, hold, n, hh) -> Signal:
        close = float(data.candles.close[i])
        grid, avg = grid_levels(close, p["grid_levels"], p["grid_step_pct"])
        tp = avg * (1.0 + p["take_profit_pct"] / 100.0)
        sl = avg * (1.0 - p["stop_loss_pct"] / 100.0)
        comps = {
            "setup": Component(1.0 if hold else 0.0, SETUP_POINTS if hold else 0.0),
            "drop": Component(drop, DROP_WEIGHT * clip01((drop - p["drop_pct"]) / p["drop_pct"]) if hold else 0.0),
            "rsi": Component(rsi_v, RSI_WEIGHT * clip01((p["rsi_max"] - rsi_v) / RSI_FULL_SPAN) if hold else 0.0),
        }
        score = clip01(sum(x.points for x in comps.values()))
        passed = hold and score >= p["min_confidence"]
        if hold:
            reason = (
                f"close {drop:.2f}% below the {n}-candle high {hh:g}, RSI {rsi_v:.1f} < {p['rsi_max']:g}: "
                f"grid of {p['grid_levels']} buys {p['grid_step_pct']:g}% apart"
            )
            if not passed:
                reason += f"; confidence {score:.2f} < {p['min_confidence']:.2f}"
        else:
            reason = (
                f"no dip: drop {drop:.2f}% (needs >= {p['drop_pct']:g}%), RSI {rsi_v:.1f} (needs < {p['rsi_max']:g})"
            )
        return Signal(
            symbol=data.symbol,
            timeframe=data.timeframe,
            time=int(data.candles.time[i]),
            strategy=self.name,
            side="long",
            score=score,
            components=comps,
            entry=close,
            stop_loss=sl,
            take_profit=tp,
            rrr=rrr(avg, sl, tp),
            reason=reason,
            passed=passed,
            extra={
                "grid": grid,
                "average_entry": avg,
                "take_profit_pct": p["take_profit_pct"],
                "stop_loss_pct": p["stop_loss_pct"],
                "lookback_candles": n,
                "high": hh,
            },
        )


register(DCADetector())
