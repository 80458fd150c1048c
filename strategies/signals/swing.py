"""``swing`` (issue 11 §2): a volume-confirmed breakout above resistance, bought at market.

Pure numpy (no Django). Rule at the close of candle ``i`` (causal):

* resistance ``R`` = highest high of the ``lookback`` (N, default 20) candles *before* ``i``
  (``i−N .. i−1``; the current candle excluded);
* breakout: ``close_i > R`` (strictly above);
* volume ratio ``volume_i ÷ mean(volume_{i−N} .. volume_{i−1})`` (the average of the same N
  previous candles, so the breakout's own volume does not inflate it) must be
  **≥ volume_mult** (default 2).

Exit plan: market entry at the close; ``take_profit = close × (1 + take_profit_pct ÷ 100)``
(15 %), ``stop_loss = close × (1 − stop_loss_pct ÷ 100)`` (5 %), RRR = 15 ÷ 5 = 3;
``extra["trailing_stop_pct"]`` = 7 (the engine trails the exit 7 % below the highest price
since entry), plus ``resistance``, ``volume_ratio``, ``order_type = "market"``.

Confidence (rule-based default until a ``ConfidenceProvider`` model plugs in), a sum in [0, 1]:

* ``setup``: 0.40 when the rule holds;
* ``breakout``: ``0.30 × clip(b ÷ 2 %, 0, 1)`` with ``b = (close ÷ R − 1) × 100`` — full at a
  close 2 % above resistance;
* ``volume``: ``0.30 × clip((ratio − volume_mult) ÷ volume_mult, 0, 1)`` — 0 at 2×, full at 4×.

``passed`` = rule holds and confidence ≥ ``min_confidence`` (0.65).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from strategies.base import Param

from .base import Component, DetectorBase, DetectorInput, Signal, register, rrr
from .windows import clip01, evaluated, resolve_params, rolling_max, rolling_mean, shift1

__all__ = ["SwingDetector"]

SETUP_POINTS = 0.40
BREAKOUT_WEIGHT = 0.30
BREAKOUT_FULL_PCT = 2.0
VOLUME_WEIGHT = 0.30

PARAMS = (
    Param("lookback", "int", 20, 2, 1000, "candles", "Resistance = highest high of this many previous candles."),
    Param("volume_mult", "float", 2.0, 0.1, 100.0, "x", "Breakout volume at least this multiple of the average."),
    Param("take_profit_pct", "float", 15.0, 0.01, 1000.0, "%", "Take profit above the entry."),
    Param("stop_loss_pct", "float", 5.0, 0.01, 99.0, "%", "Stop loss below the entry."),
    Param("trailing_stop_pct", "float", 7.0, 0.0, 99.0, "%", "Trailing stop below the highest price (0 = off)."),
    Param("min_confidence", "float", 0.65, 0.0, 1.0, "", "Minimum confidence to pass."),
)


class SwingDetector(DetectorBase):
    """The ``swing`` strategy's detector (rule, exits and confidence in the module doc)."""

    name = "swing"
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
        n = p["lookback"]
        res = shift1(rolling_max(c.high, n))
        vavg = shift1(rolling_mean(c.volume, n))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = c.volume / vavg
            hold = (c.close > res) & (ratio >= p["volume_mult"])
        ready = np.isfinite(res) & np.isfinite(ratio) & (res > 0)
        idx = evaluated(c.time, since_ms, ready if all_ else ready & hold)
        out: list[Signal] = []
        for i in idx:
            sig = self._signal(data, p, int(i), float(res[i]), float(ratio[i]), bool(hold[i]))
            if sig.passed or all_:
                out.append(sig)
        return out

    def _signal(self, data, p, i, res, ratio, hold) -> Signal:
        close = float(data.candles.close[i])
        b = (close / res - 1.0) * 100.0
        comps = {
            "setup": Component(1.0 if hold else 0.0, SETUP_POINTS if hold else 0.0),
            "breakout": Component(b, BREAKOUT_WEIGHT * clip01(b / BREAKOUT_FULL_PCT) if hold else 0.0),
            "volume": Component(
                ratio, VOLUME_WEIGHT * clip01((ratio - p["volume_mult"]) / p["volume_mult"]) if hold else 0.0
            ),
        }
        score = clip01(sum(x.points for x in comps.values()))
        passed = hold and score >= p["min_confidence"]
        tp = close * (1.0 + p["take_profit_pct"] / 100.0)
        sl = close * (1.0 - p["stop_loss_pct"] / 100.0)
        if hold:
            reason = f"close {b:.2f}% above the {p['lookback']}-candle resistance {res:g} on {ratio:.1f}x volume"
            if not passed:
                reason += f"; confidence {score:.2f} < {p['min_confidence']:.2f}"
        else:
            reason = (
                f"no breakout: close {b:+.2f}% vs resistance {res:g} (needs > 0), "
                f"volume {ratio:.1f}x (needs >= {p['volume_mult']:g}x)"
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
            rrr=rrr(close, sl, tp),
            reason=reason,
            passed=passed,
            extra={
                "order_type": "market",
                "trailing_stop_pct": p["trailing_stop_pct"],
                "resistance": res,
                "volume_ratio": ratio,
            },
        )


register(SwingDetector())
