"""``channel`` (issue 11 §2): trade a horizontal range from its edges, target the other edge.

Pure numpy (no Django). Rule at the close of candle ``i`` (causal), over the window of the
``lookback`` (default 50) candles *before* ``i`` (``i−L .. i−1``):

* support ``S`` = the window's lowest low, resistance ``R`` = its highest high (``R > S``);
* a support touch is a candle of the window whose low is within ``tolerance_pct`` (0.5 %) of
  ``S``: ``low ≤ S + S × tol ÷ 100``; a resistance touch: ``high ≥ R − R × tol ÷ 100``
  (every such candle counts, adjacent ones too); both counts must be **≥ min_touches** (3);
* the close must still be inside the range (``S ≤ close ≤ R``; outside, the range broke);
* position ``pos = (close − S) ÷ (R − S)``: **long** when ``pos ≤ entry_zone_pct ÷ 100``
  (bottom 30 %), **short** when ``pos ≥ 1 − entry_zone_pct ÷ 100`` (top 30 %; only with
  ``allow_short``).

Exit plan: entry at the close; long ``take_profit = R``, ``stop_loss = S × (1 −
stop_buffer_pct ÷ 100)`` (0.5 % below support); short ``take_profit = S``, ``stop_loss = R ×
(1 + stop_buffer_pct ÷ 100)``. ``rrr`` = |TP − entry| ÷ |entry − SL| must be **≥ min_rrr**
(1.5). ``extra["exit_on_break"] = True``: leave when a close leaves the range (the trading part
applies it), with ``support``, ``resistance``, ``position``, the touch counts.

Confidence (rule-based default until a ``ConfidenceProvider`` model plugs in), a sum in [0, 1]:

* ``support_touches`` / ``resistance_touches``: ``0.25 × clip(touches ÷ (2 × min_touches),
  0, 1)`` each — 0.125 each at 3 touches, full at 6;
* ``position``: ``0.5 × clip(1 − pos ÷ zone, 0, 1)`` for a long (full at support, 0 at the
  zone's edge), ``0.5 × clip((pos − (1 − zone)) ÷ zone, 0, 1)`` for a short.

``passed`` = rule holds, confidence ≥ ``min_confidence`` (0.30) and RRR ≥ ``min_rrr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from strategies.base import Param

from .base import Component, DetectorBase, DetectorInput, Signal, register, rrr
from .windows import clip01, evaluated, resolve_params

__all__ = ["ChannelDetector", "range_stats"]

TOUCH_WEIGHT = 0.25
POSITION_WEIGHT = 0.5

PARAMS = (
    Param("lookback", "int", 50, 5, 2000, "candles", "Window of previous candles the range is measured on."),
    Param("tolerance_pct", "float", 0.5, 0.0, 20.0, "%", "A low/high this close to the range's edge is a touch."),
    Param("min_touches", "int", 3, 1, 100, "", "Touches of support and of resistance at least."),
    Param("entry_zone_pct", "float", 30.0, 1.0, 50.0, "%", "Buy in the bottom / short in the top of the range."),
    Param("stop_buffer_pct", "float", 0.5, 0.0, 20.0, "%", "Stop loss this far beyond the range's edge."),
    Param("min_rrr", "float", 1.5, 0.0, 100.0, "x", "Minimum risk-reward ratio to pass."),
    Param("min_confidence", "float", 0.30, 0.0, 1.0, "", "Minimum confidence to pass."),
    Param("allow_short", "bool", True, help="Also short in the top of the range."),
)


def range_stats(high: np.ndarray, low: np.ndarray, lookback: int, tolerance_pct: float):
    """Per candle ``i``: support, resistance, support touches, resistance touches over the
    ``lookback`` candles before ``i`` (NaN / 0 where the window is not full)."""
    n = len(high)
    sup = np.full(n, np.nan)
    res = np.full(n, np.nan)
    st = np.zeros(n, dtype=np.int64)
    rt = np.zeros(n, dtype=np.int64)
    if n > lookback:
        lw = sliding_window_view(low, lookback)[:-1]  # row k = window ending at candle k + L − 1
        hw = sliding_window_view(high, lookback)[:-1]
        s = lw.min(axis=1)
        r = hw.max(axis=1)
        sup[lookback:] = s
        res[lookback:] = r
        st[lookback:] = (lw <= (s + s * tolerance_pct / 100.0)[:, None]).sum(axis=1)
        rt[lookback:] = (hw >= (r - r * tolerance_pct / 100.0)[:, None]).sum(axis=1)
    return sup, res, st, rt


class ChannelDetector(DetectorBase):
    """The ``channel`` strategy's detector (rule, exits and confidence in the module doc)."""

    name = "channel"
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
        sup, res, st, rt = range_stats(c.high, c.low, p["lookback"], p["tolerance_pct"])
        zone = p["entry_zone_pct"] / 100.0
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = (c.close - sup) / (res - sup)
            ranged = (st >= p["min_touches"]) & (rt >= p["min_touches"]) & (pos >= 0) & (pos <= 1)
            hold = ranged & ((pos <= zone) | ((pos >= 1 - zone) & p["allow_short"]))
        ready = np.isfinite(sup) & np.isfinite(res) & (res > sup)
        idx = evaluated(c.time, since_ms, ready if all_ else ready & hold)
        out: list[Signal] = []
        for i in idx:
            sig = self._signal(data, p, int(i), float(sup[i]), float(res[i]), int(st[i]), int(rt[i]), bool(hold[i]))
            if sig.passed or all_:
                out.append(sig)
        return out

    def _signal(self, data, p, i, sup, res, st, rt, hold) -> Signal:
        close = float(data.candles.close[i])
        zone = p["entry_zone_pct"] / 100.0
        pos = (close - sup) / (res - sup)
        long_ = pos <= zone or not p["allow_short"] or (not hold and pos < 0.5)
        if long_:
            side, tp, sl = "long", res, sup * (1.0 - p["stop_buffer_pct"] / 100.0)
            pos_pts = POSITION_WEIGHT * clip01(1.0 - pos / zone)
        else:
            side, tp, sl = "short", sup, res * (1.0 + p["stop_buffer_pct"] / 100.0)
            pos_pts = POSITION_WEIGHT * clip01((pos - (1.0 - zone)) / zone)
        m2 = 2.0 * p["min_touches"]
        comps = {
            "support_touches": Component(float(st), TOUCH_WEIGHT * clip01(st / m2) if hold else 0.0),
            "resistance_touches": Component(float(rt), TOUCH_WEIGHT * clip01(rt / m2) if hold else 0.0),
            "position": Component(pos, pos_pts if hold else 0.0),
        }
        score = clip01(sum(x.points for x in comps.values()))
        ratio = rrr(close, sl, tp)
        passed = hold and score >= p["min_confidence"] and ratio is not None and ratio >= p["min_rrr"]
        where = "bottom" if side == "long" else "top"
        if hold:
            reason = (
                f"{side} in the {where} of the range {sup:g}-{res:g} ({pos:.0%} up, "
                f"{st} support / {rt} resistance touches), target {tp:g}"
            )
            if not passed:
                reason += f"; confidence {score:.2f} (min {p['min_confidence']:.2f}), RRR {ratio or 0:.2f}"
                reason += f" (min {p['min_rrr']:g})"
        else:
            reason = (
                f"no channel entry: {st} support / {rt} resistance touches (needs {p['min_touches']}), "
                f"close at {pos:.0%} of {sup:g}-{res:g}"
            )
        return Signal(
            symbol=data.symbol,
            timeframe=data.timeframe,
            time=int(data.candles.time[i]),
            strategy=self.name,
            side=side,
            score=score,
            components=comps,
            entry=close,
            stop_loss=sl,
            take_profit=tp,
            rrr=ratio,
            reason=reason,
            passed=passed,
            extra={
                "exit_on_break": True,
                "support": sup,
                "resistance": res,
                "position": pos,
                "support_touches": st,
                "resistance_touches": rt,
            },
        )


register(ChannelDetector())
