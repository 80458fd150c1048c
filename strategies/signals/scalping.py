"""``scalping`` (ULTIMATE): the seed's additive score over nine components, batch over arrays.

Pure core (no Django), vectorised numpy; element ``i`` uses candles ``0..i`` only (causal).
Indicators are TA-Lib's (:mod:`strategies.indicators.batch`). Points (fractions) are the
seed's, fixed; the thresholds are parameters (seed values as defaults). Each component
(name: value unit — rule → points, vote):

- ``sma_alignment`` (value +1 / −1 / 0): SMA5 > SMA10 > SMA20 → +0.30 long;
  SMA5 < SMA10 < SMA20 → +0.30 short. "Greater" means beyond float noise
  (:func:`sma_alignment`): with ``d1 = SMA5 − SMA10``, ``d2 = SMA10 − SMA20`` and
  ``eps = SMA_ALIGN_TOL·|SMA20|`` (relative 1e-9), long when ``d1 > eps`` and ``d2 > eps``, short
  when ``d1 < −eps`` and ``d2 < −eps``, else 0 — so a flat series (whose running-sum SMAs
  differ in the last bit) has no alignment. The tick path evaluates the same expression.
- ``momentum`` (%: ``(close[i]/close[i−5] − 1)·100``): > +0.1 → +0.25 long; < −0.1 → +0.25 short.
- ``rsi`` (RSI 14, 0..100): < 30 → +0.20 long (oversold); > 70 → +0.20 short (overbought);
  40 < RSI < 60 → −0.10 (no vote).
- ``macd_cross`` (hist = MACD(12,26,9) line − signal): ``hist[i−1] ≤ 0 < hist[i]`` → +0.25 long;
  ``hist[i−1] ≥ 0 > hist[i]`` → +0.25 short.
- ``macd_hist`` (hist): growing histogram ``|hist[i]| > |hist[i−1]|`` → +0.10, votes the sign
  of ``hist[i]`` (no vote at 0).
- ``bollinger`` (%B = (close − lower)/(upper − lower), Bollinger(20, 2), population std):
  close ≤ lower → +0.20 long; close ≥ upper → +0.20 short.
- ``band_width`` ((upper − lower)/middle, fraction): < 0.02 → +0.15; > 0.08 → −0.10 (no vote).
- ``order_flow`` (imbalance = (Σ up-candle volume − Σ down-candle volume) / Σ volume over the
  20 candles ``i−19..i``; up: close > open, down: close < open; NaN when Σ volume is 0):
  > 0.3 → +0.20 long; < −0.3 → +0.20 short.
- ``volume`` (ratio ``volume[i]`` ÷ mean volume of the 20 candles before, ``i−20..i−1``):
  > 1.5 → +0.15 (no vote).

**Direction**: the long votes' points and the short votes' points are summed; the larger side
wins; a tie (no vote at all included) has no direction and never trades. **Strength** =
clip(Σ all points, 0, 1) — every component counts, as in the seed, whichever way it voted.
A signal **passes** at strength ≥ ``min_strength`` (0.65). Exits: SL = entry ∓
``atr_sl_mult``·ATR(14) (1.5), TP = entry ± ``reward_risk``·(SL distance) (2 : 1);
``sl_pct`` / ``tp_pct`` > 0 replace them by fixed percentages of the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from strategies.base import Param
from strategies.indicators import batch as ind

from ._paramcheck import shift, since_mask, validate
from .base import Component, DetectorBase, DetectorInput, Signal, register, rrr

__all__ = ["PARAMS", "POINTS", "SMA_ALIGN_TOL", "Scalping", "scalping_arrays", "sma_alignment"]

# The seed's points (fractions of the score).
POINTS = {
    "sma_alignment": 0.30,
    "momentum": 0.25,
    "rsi_extreme": 0.20,
    "rsi_neutral": -0.10,
    "macd_cross": 0.25,
    "macd_hist": 0.10,
    "bollinger": 0.20,
    "band_narrow": 0.15,
    "band_wide": -0.10,
    "order_flow": 0.20,
    "volume": 0.15,
}
COMPONENTS = (
    "sma_alignment",
    "momentum",
    "rsi",
    "macd_cross",
    "macd_hist",
    "bollinger",
    "band_width",
    "order_flow",
    "volume",
)

# Relative tolerance of the SMA order: two SMAs closer than 1e-9 of the slow SMA are equal.
# TA-Lib's running-sum SMAs of a flat series differ by an ulp or two (0.07 × 200 candles: SMA5 <
# SMA10 < SMA20 on 181 candles), far below any price tick; this keeps such noise from voting.
SMA_ALIGN_TOL = 1e-9

_G = "score"
PARAMS = (
    Param("sma_fast", "int", 5, 2, 500, "candles", "Fast SMA of the alignment.", group=_G),
    Param("sma_mid", "int", 10, 2, 500, "candles", "Middle SMA of the alignment.", group=_G),
    Param("sma_slow", "int", 20, 2, 1000, "candles", "Slow SMA of the alignment.", group=_G),
    Param("momentum_candles", "int", 5, 1, 500, "candles", "Momentum window.", group=_G),
    Param("momentum_pct", "float", 0.1, 0.0, 100.0, "%", "Momentum beyond ± this counts.", group=_G),
    Param("rsi_period", "int", 14, 2, 500, "candles", "RSI period.", group=_G),
    Param("rsi_oversold", "float", 30.0, 0.0, 100.0, "RSI", "Below: +0.20, votes long.", group=_G),
    Param("rsi_overbought", "float", 70.0, 0.0, 100.0, "RSI", "Above: +0.20, votes short.", group=_G),
    Param("rsi_neutral_low", "float", 40.0, 0.0, 100.0, "RSI", "Neutral zone low end (−0.10).", group=_G),
    Param("rsi_neutral_high", "float", 60.0, 0.0, 100.0, "RSI", "Neutral zone high end (−0.10).", group=_G),
    Param("macd_fast", "int", 12, 2, 500, "candles", "MACD fast EMA.", group=_G),
    Param("macd_slow", "int", 26, 3, 1000, "candles", "MACD slow EMA.", group=_G),
    Param("macd_signal", "int", 9, 2, 500, "candles", "MACD signal EMA.", group=_G),
    Param("bb_period", "int", 20, 2, 1000, "candles", "Bollinger period.", group=_G),
    Param("bb_dev", "float", 2.0, 0.1, 10.0, "σ", "Bollinger width in standard deviations.", group=_G),
    Param("bb_narrow", "float", 0.02, 0.0, 10.0, "", "Band width below this: +0.15.", group=_G),
    Param("bb_wide", "float", 0.08, 0.0, 10.0, "", "Band width above this: −0.10.", group=_G),
    Param("flow_candles", "int", 20, 1, 1000, "candles", "Order-flow imbalance window.", group=_G),
    Param("flow_threshold", "float", 0.3, 0.0, 1.0, "", "Imbalance beyond ± this counts.", group=_G),
    Param("volume_candles", "int", 20, 1, 1000, "candles", "Mean volume window (before).", group=_G),
    Param("volume_mult", "float", 1.5, 0.0, 100.0, "x", "Volume above this × mean: +0.15.", group=_G),
    Param("min_strength", "float", 0.65, 0.0, 1.0, "", "Trade at this strength or more.", group="gate"),
    Param("atr_period", "int", 14, 1, 500, "candles", "ATR of the stop loss.", group="exits"),
    Param("atr_sl_mult", "float", 1.5, 0.01, 100.0, "x ATR", "Stop-loss distance.", group="exits"),
    Param("reward_risk", "float", 2.0, 0.01, 100.0, "x", "TP distance ÷ SL distance.", group="exits"),
    Param("sl_pct", "float", 0.0, 0.0, 100.0, "%", "Fixed stop loss from entry (0 = ATR).", group="exits"),
    Param("tp_pct", "float", 0.0, 0.0, 1000.0, "%", "Fixed take profit from entry (0 = R:R).", group="exits"),
)


def _check(p: dict[str, Any]) -> dict[str, str]:
    errors = {}
    if not p["sma_fast"] < p["sma_mid"] < p["sma_slow"]:
        errors["sma_fast"] = "need sma_fast < sma_mid < sma_slow"
    if p["macd_fast"] >= p["macd_slow"]:
        errors["macd_fast"] = "must be below macd_slow"
    return errors


def sma_alignment(f: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """+1 / −1 / 0 per candle for fast / middle / slow SMAs ``f``, ``m``, ``s`` (float64 arrays,
    quote currency): +1 when ``f − m > eps`` and ``m − s > eps``, −1 when both are ``< −eps``,
    ``eps = SMA_ALIGN_TOL × |s|``; NaN where an SMA is NaN. The tick path
    (:mod:`strategies.signals.scalping_tick`) evaluates the same float expressions per candle,
    so both agree bit for bit, equality and float noise included."""
    with np.errstate(invalid="ignore"):
        eps = SMA_ALIGN_TOL * np.abs(s)
        d1 = f - m
        d2 = m - s
        align = np.where((d1 > eps) & (d2 > eps), 1.0, np.where((d1 < -eps) & (d2 < -eps), -1.0, 0.0))
    align[~(np.isfinite(f) & np.isfinite(m) & np.isfinite(s))] = np.nan
    return align


def _rolling_sum(a: np.ndarray, k: int) -> np.ndarray:
    """Σ ``a[i−k+1..i]`` at each ``i`` (NaN before ``k`` values), exact (no cumsum drift)."""
    out = np.full(len(a), np.nan)
    if len(a) >= k:
        out[k - 1 :] = np.lib.stride_tricks.sliding_window_view(a, k).sum(axis=1)
    return out


def scalping_arrays(data: DetectorInput, p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per-candle arrays (``p`` = validated params): ``<name>_value``, ``<name>_points`` and
    ``<name>_vote`` (+1 long, −1 short, 0) for each of :data:`COMPONENTS`, then ``long``/``short``
    (vote points), ``side`` (+1/−1/0), ``strength``, ``sl_dist``, ``tp_dist`` (quote), ``valid`` and ``passed``."""
    c = data.candles
    close, P = c.close, POINTS
    out: dict[str, np.ndarray] = {}

    def put(name, value, points, vote):
        out[f"{name}_value"], out[f"{name}_points"] = value, points
        out[f"{name}_vote"] = np.asarray(vote, dtype=np.int8) * np.ones(len(close), dtype=np.int8)

    with np.errstate(invalid="ignore", divide="ignore"):
        f, m, s = (ind.sma(close, p[k]) for k in ("sma_fast", "sma_mid", "sma_slow"))
        align = sma_alignment(f, m, s)
        put("sma_alignment", align, np.where(align != 0, P["sma_alignment"], 0.0), np.nan_to_num(align))

        mom = (close / shift(close, p["momentum_candles"]) - 1.0) * 100.0
        mvote = np.where(mom > p["momentum_pct"], 1, np.where(mom < -p["momentum_pct"], -1, 0))
        put("momentum", mom, np.where(mvote != 0, P["momentum"], 0.0), mvote)

        r = ind.rsi(close, p["rsi_period"])
        rvote = np.where(r < p["rsi_oversold"], 1, np.where(r > p["rsi_overbought"], -1, 0))
        neutral = (r > p["rsi_neutral_low"]) & (r < p["rsi_neutral_high"])
        put("rsi", r, np.where(rvote != 0, P["rsi_extreme"], np.where(neutral, P["rsi_neutral"], 0.0)), rvote)

        hist = ind.macd(close, p["macd_fast"], p["macd_slow"], p["macd_signal"]).hist
        prev = shift(hist, 1)
        cvote = np.where((prev <= 0) & (hist > 0), 1, np.where((prev >= 0) & (hist < 0), -1, 0))
        put("macd_cross", hist, np.where(cvote != 0, P["macd_cross"], 0.0), cvote)
        growing = np.abs(hist) > np.abs(prev)
        put("macd_hist", hist - prev, np.where(growing, P["macd_hist"], 0.0), np.where(growing, np.sign(hist), 0))

        up, mid, lo = ind.bollinger(close, p["bb_period"], p["bb_dev"], p["bb_dev"])
        pct_b = (close - lo) / (up - lo)
        bvote = np.where(close <= lo, 1, np.where(close >= up, -1, 0))
        put("bollinger", pct_b, np.where(bvote != 0, P["bollinger"], 0.0), bvote)
        width = (up - lo) / mid
        wpts = np.where(width < p["bb_narrow"], P["band_narrow"], np.where(width > p["bb_wide"], P["band_wide"], 0.0))
        put("band_width", width, wpts, 0)

        v = c.volume
        signed = np.where(close > c.open, v, np.where(close < c.open, -v, 0.0))
        k = p["flow_candles"]
        total = _rolling_sum(v, k)
        flow = np.where(total > 0, _rolling_sum(signed, k) / total, np.nan)
        fvote = np.where(flow > p["flow_threshold"], 1, np.where(flow < -p["flow_threshold"], -1, 0))
        put("order_flow", flow, np.where(fvote != 0, P["order_flow"], 0.0), fvote)

        mean_before = shift(_rolling_sum(v, p["volume_candles"]) / p["volume_candles"], 1)
        vratio = np.where(mean_before > 0, v / mean_before, np.nan)
        put("volume", vratio, np.where(vratio > p["volume_mult"], P["volume"], 0.0), 0)

        atr = ind.atr(c.high, c.low, close, p["atr_period"])

    pts = [out[f"{n}_points"] for n in COMPONENTS]
    votes = [out[f"{n}_vote"] for n in COMPONENTS]
    long_ = sum(np.where(vt > 0, pt, 0.0) for pt, vt in zip(pts, votes, strict=True))
    short = sum(np.where(vt < 0, pt, 0.0) for pt, vt in zip(pts, votes, strict=True))
    side = np.sign(np.round(long_ - short, 12)).astype(np.int8)
    strength = np.clip(np.round(sum(pts), 12), 0.0, 1.0)
    sl_dist = np.where(p["sl_pct"] > 0, close * p["sl_pct"] / 100.0, p["atr_sl_mult"] * atr)
    tp_dist = np.where(p["tp_pct"] > 0, close * p["tp_pct"] / 100.0, p["reward_risk"] * sl_dist)
    # Warm-up: every indicator defined (MACD needs hist[i−1]; volume needs its window before).
    valid = np.isfinite(prev) & np.isfinite(hist) & np.isfinite(r) & np.isfinite(width) & np.isfinite(s)
    valid &= np.isfinite(mom) & np.isfinite(total) & np.isfinite(mean_before) & np.isfinite(sl_dist)
    out.update(
        long=long_,
        short=short,
        side=side,
        strength=strength,
        sl_dist=sl_dist,
        tp_dist=tp_dist,
        valid=valid,
        passed=valid & (side != 0) & (strength >= p["min_strength"]),
    )
    return out


class Scalping(DetectorBase):
    """The ``scalping`` detector (see the module docstring for the score)."""

    name = "scalping"
    PARAMS = PARAMS

    def detect(
        self,
        data: DetectorInput,
        params: Mapping[str, Any] | None = None,
        *,
        since_ms: int | None = None,
        all_: bool = False,
    ) -> list[Signal]:
        p = validate(PARAMS, params, _check)
        a = scalping_arrays(data, p)
        keep = a["valid"] & since_mask(data.candles.time, since_ms)
        if not all_:
            keep &= a["passed"]
        return [self._signal(data, p, a, int(i)) for i in np.flatnonzero(keep)]

    def _signal(self, data: DetectorInput, p: Mapping[str, Any], a: dict[str, np.ndarray], i: int) -> Signal:
        c = data.candles
        side = int(a["side"][i])
        entry = float(c.close[i])
        # Without a direction there is no trade (all_ only): the row shows the long exits.
        d = side or 1
        sl = entry - d * float(a["sl_dist"][i])
        tp = entry + d * float(a["tp_dist"][i])
        comps = {n: Component(float(a[f"{n}_value"][i]), float(a[f"{n}_points"][i])) for n in COMPONENTS}
        strength = float(a["strength"][i])
        hits = ", ".join(f"{n} {a[f'{n}_points'][i]:+.2f}" for n in COMPONENTS if a[f"{n}_points"][i])
        if side:
            name = "long" if side > 0 else "short"
            votes = f"votes long {a['long'][i]:.2f} / short {a['short'][i]:.2f}"
            gate = "trade" if a["passed"][i] else f"below {p['min_strength']:g}"
            reason = f"scalping {name} strength {strength:.2f} ({gate}; {votes}): {hits or 'no component'}"
        else:
            reason = f"scalping strength {strength:.2f}, no direction (votes tied): {hits or 'no component'}"
        return Signal(
            symbol=data.symbol,
            timeframe=data.timeframe,
            time=int(c.time[i]),
            strategy=self.name,
            side="short" if side < 0 else "long",
            score=strength,
            components=comps,
            entry=entry,
            stop_loss=sl,
            take_profit=tp,
            rrr=rrr(entry, sl, tp),
            reason=reason,
            passed=bool(a["passed"][i]),
        )


register(Scalping())
