"""``fork_score`` (Market7): a weighted score of four long-entry confirmations, plus an RRR gate.

Pure core (no Django), batch over arrays; element ``i`` uses candles ``0..i`` only (causal).
Components (each adds its weight, a fraction, when its rule holds at candle ``i``, else 0):

- ``macd``: bullish cross or rising histogram — ``hist[i] > hist[i−1]`` (TA-Lib MACD,
  hist = line − signal, quote currency). A bullish cross (line crossing above its signal) is
  the histogram rising through 0, so it is included; the reason says "cross" when
  ``hist[i−1] ≤ 0 < hist[i]``. value = ``hist[i]``.
- ``rsi``: recovering from oversold — Wilder RSI (TA-Lib, 0..100) was below ``rsi_oversold`` at
  some candle of ``i−k..i−1`` (k = ``rsi_lookback``) and now is above it and rising:
  ``rsi[i] > oversold`` and ``rsi[i] > rsi[i−1]``. value = ``rsi[i]``.
- ``ema``: EMA reclaim — ``close[i] > ema[i]`` after a close below its EMA at some candle of
  ``i−k..i−1`` (k = ``ema_lookback``). value = ``(close/ema − 1)·100`` (%).
- ``btc``: the market condition from ``DetectorInput.btc`` at the same open time — BTC's close
  above its EMA(``btc_ema_period``), **or** BTC not in a sharp drop (its change over the last
  ``btc_drop_candles`` candles > −``btc_drop_pct`` %). value = BTC's distance to its EMA (%).
  Without BTC candles (None, or none at that open time) the component is 0 with value NaN
  and the reason says so; during BTC's EMA warm-up the value is NaN and the drop test decides.

score = min(Σ points, 1) (the weights must sum to ≤ 1). Exits from the recent swing over
``swing_lookback`` candles ``i−N+1..i``: TP = highest high, SL = lowest low; when the swing is
degenerate (highest high ≤ close, or lowest low ≥ close) that side falls back to ATR(``atr_period``)
multiples: TP = close + ``atr_tp_mult``·ATR, SL = close − ``atr_sl_mult``·ATR.
RRR = (TP − close) ÷ (close − SL). A candidate **passes** when score ≥ ``min_score`` and
RRR ≥ ``min_rrr``. Always long (Market7 sends fork signals to long DCA bots).

Seed defaults: weights MACD 0.3, RSI 0.3, EMA 0.2, BTC 0.2; min score 0.6; min RRR 1.5;
EMA 20; RSI 14, oversold 30; MACD 12/26/9; swing lookback 20 (Market7's seed values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from strategies.base import Param
from strategies.engine.feed import Candles
from strategies.indicators import batch as ind

from ._paramcheck import shift, since_mask, validate
from .base import Component, DetectorBase, DetectorInput, Signal, register, rrr

__all__ = ["ForkScore", "PARAMS", "fork_arrays"]

PARAMS = (
    Param("w_macd", "float", 0.3, 0.0, 1.0, "", "Weight of the MACD component.", group="weights"),
    Param("w_rsi", "float", 0.3, 0.0, 1.0, "", "Weight of the RSI recovery component.", group="weights"),
    Param("w_ema", "float", 0.2, 0.0, 1.0, "", "Weight of the EMA reclaim component.", group="weights"),
    Param("w_btc", "float", 0.2, 0.0, 1.0, "", "Weight of the BTC market condition.", group="weights"),
    Param("min_score", "float", 0.6, 0.0, 1.0, "", "A candidate passes at this score or more.", group="gate"),
    Param("min_rrr", "float", 1.5, 0.0, 100.0, "x", "A candidate passes at this risk-reward or more.", group="gate"),
    Param("macd_fast", "int", 12, 2, 500, "candles", "MACD fast EMA.", group="macd"),
    Param("macd_slow", "int", 26, 3, 1000, "candles", "MACD slow EMA.", group="macd"),
    Param("macd_signal", "int", 9, 2, 500, "candles", "MACD signal EMA.", group="macd"),
    Param("rsi_period", "int", 14, 2, 500, "candles", "RSI period.", group="rsi"),
    Param("rsi_oversold", "float", 30.0, 0.0, 100.0, "RSI", "Oversold level.", group="rsi"),
    Param("rsi_lookback", "int", 5, 1, 500, "candles", "RSI was oversold within this many candles.", group="rsi"),
    Param("ema_period", "int", 20, 2, 1000, "candles", "EMA the close reclaims.", group="ema"),
    Param("ema_lookback", "int", 5, 1, 500, "candles", "Close was below the EMA within this many.", group="ema"),
    Param("btc_ema_period", "int", 50, 2, 1000, "candles", "BTC above this EMA is a good market.", group="btc"),
    Param("btc_drop_candles", "int", 4, 1, 500, "candles", "Window of the BTC sharp-drop test.", group="btc"),
    Param("btc_drop_pct", "float", 3.0, 0.0, 100.0, "%", "A BTC fall beyond this is a sharp drop.", group="btc"),
    Param("swing_lookback", "int", 20, 2, 1000, "candles", "Swing high (TP) / low (SL) window.", group="exits"),
    Param("atr_period", "int", 14, 1, 500, "candles", "ATR for a degenerate swing.", group="exits"),
    Param("atr_tp_mult", "float", 3.0, 0.0, 100.0, "x ATR", "TP distance when no swing high.", group="exits"),
    Param("atr_sl_mult", "float", 1.5, 0.01, 100.0, "x ATR", "SL distance when no swing low.", group="exits"),
)
_WEIGHTS = ("w_macd", "w_rsi", "w_ema", "w_btc")


def _check(p: dict[str, Any]) -> dict[str, str]:
    errors = {}
    if sum(p[w] for w in _WEIGHTS) > 1.0 + 1e-9:
        errors["w_macd"] = "the four weights must sum to at most 1"
    if p["macd_fast"] >= p["macd_slow"]:
        errors["macd_fast"] = "must be below macd_slow"
    return errors


def _window(a: np.ndarray, k: int, how: str, *, lag: int = 0) -> np.ndarray:
    """min/max of ``a[i−lag−k+1 .. i−lag]`` at each ``i`` (NaN until the window is full or when
    it holds a NaN)."""
    out = np.full(len(a), np.nan)
    n = len(a) - lag
    if n >= k:
        w = np.lib.stride_tricks.sliding_window_view(a[:n], k)
        out[lag + k - 1 :] = w.min(axis=1) if how == "min" else w.max(axis=1)
    return out


def _btc_aligned(c: Candles, btc: Candles | None, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(BTC close vs its EMA in %, BTC change over ``btc_drop_candles`` in %, has-a-BTC-candle)
    at each of ``c``'s open times; NaN where BTC has no candle at that time or is warming up."""
    n = len(c)
    if btc is None or len(btc) == 0:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
    dist = (btc.close / ind.ema(btc.close, p["btc_ema_period"]) - 1.0) * 100.0
    change = (btc.close / shift(btc.close, p["btc_drop_candles"]) - 1.0) * 100.0
    j = np.searchsorted(btc.time, c.time)
    jc = np.minimum(j, len(btc) - 1)
    hit = (j < len(btc)) & (btc.time[jc] == c.time)
    return np.where(hit, dist[jc], np.nan), np.where(hit, change[jc], np.nan), hit


def fork_arrays(data: DetectorInput, p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every per-candle array of the score (``p`` = validated params): component values and
    points, ``score``, ``tp``/``sl``, ``rrr``, ``valid`` (warm-up done) and ``passed``."""
    c = data.candles
    close = c.close
    hist = ind.macd(close, p["macd_fast"], p["macd_slow"], p["macd_signal"]).hist
    prev_hist = shift(hist, 1)
    r = ind.rsi(close, p["rsi_period"])
    min_r = _window(r, p["rsi_lookback"], "min", lag=1)
    e = ind.ema(close, p["ema_period"])
    above = close - e
    min_above = _window(above, p["ema_lookback"], "min", lag=1)
    btc_dist, btc_change, btc_hit = _btc_aligned(c, data.btc, p)
    atr = ind.atr(c.high, c.low, close, p["atr_period"])
    hi = _window(c.high, p["swing_lookback"], "max")
    lo = _window(c.low, p["swing_lookback"], "min")

    with np.errstate(invalid="ignore"):
        macd_ok = hist > prev_hist
        rsi_ok = (min_r < p["rsi_oversold"]) & (r > p["rsi_oversold"]) & (r > shift(r, 1))
        ema_ok = (above > 0) & (min_above < 0)
        btc_ok = btc_hit & ((btc_dist > 0) | (btc_change > -p["btc_drop_pct"]))
        tp = np.where(hi > close, hi, close + p["atr_tp_mult"] * atr)
        sl = np.where(lo < close, lo, close - p["atr_sl_mult"] * atr)
        risk = close - sl
        ratio = np.where(risk > 0, (tp - close) / np.where(risk > 0, risk, 1.0), np.nan)
    valid = (
        np.isfinite(hist)
        & np.isfinite(prev_hist)
        & np.isfinite(min_r)
        & np.isfinite(r)
        & np.isfinite(min_above)
        & np.isfinite(tp)
        & np.isfinite(sl)
        & np.isfinite(ratio)
    )
    points = {
        "macd": np.where(macd_ok, p["w_macd"], 0.0),
        "rsi": np.where(rsi_ok, p["w_rsi"], 0.0),
        "ema": np.where(ema_ok, p["w_ema"], 0.0),
        "btc": np.where(btc_ok, p["w_btc"], 0.0),
    }
    score = np.clip(sum(points.values()), 0.0, 1.0)
    with np.errstate(invalid="ignore"):
        passed = valid & (score >= p["min_score"] - 1e-12) & (ratio >= p["min_rrr"])
    return {
        "hist": hist,
        "prev_hist": prev_hist,
        "rsi": r,
        "ema_pct": above / e * 100.0,
        "btc_dist": btc_dist,
        "btc_change": btc_change,
        "btc_hit": btc_hit,
        **{f"{k}_points": v for k, v in points.items()},
        "score": score,
        "tp": tp,
        "sl": sl,
        "rrr": ratio,
        "valid": valid,
        "passed": passed,
    }


class ForkScore(DetectorBase):
    """The ``fork_score`` detector (see the module docstring for the rule)."""

    name = "fork_score"
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
        a = fork_arrays(data, p)
        keep = a["valid"] & since_mask(data.candles.time, since_ms) & (a["passed"] if not all_ else True)
        return [self._signal(data, p, a, int(i)) for i in np.flatnonzero(keep)]

    def _signal(self, data: DetectorInput, p: Mapping[str, Any], a: dict[str, np.ndarray], i: int) -> Signal:
        c = data.candles
        entry, tp, sl = float(c.close[i]), float(a["tp"][i]), float(a["sl"][i])
        comps = {
            "macd": Component(float(a["hist"][i]), float(a["macd_points"][i])),
            "rsi": Component(float(a["rsi"][i]), float(a["rsi_points"][i])),
            "ema": Component(float(a["ema_pct"][i]), float(a["ema_points"][i])),
            "btc": Component(float(a["btc_dist"][i]), float(a["btc_points"][i])),
        }
        parts = []
        if comps["macd"].points:
            parts.append("MACD bullish cross" if a["prev_hist"][i] <= 0 < a["hist"][i] else "MACD histogram rising")
        if comps["rsi"].points:
            parts.append(f"RSI {a['rsi'][i]:.1f} recovering from oversold {p['rsi_oversold']:g}")
        if comps["ema"].points:
            parts.append(f"close reclaimed EMA{p['ema_period']}")
        if data.btc is None:
            parts.append("no BTC candles (BTC condition 0)")
        elif not a["btc_hit"][i]:
            parts.append("no BTC candle at this time (BTC condition 0)")
        elif comps["btc"].points:
            parts.append("BTC above its EMA" if a["btc_dist"][i] > 0 else "BTC not in a sharp drop")
        else:
            parts.append(f"BTC in a sharp drop ({a['btc_change'][i]:.2f}%)")
        score, ratio = float(a["score"][i]), rrr(entry, sl, tp)
        passed = bool(a["passed"][i])
        gate = "passes" if passed else f"fails (needs score ≥ {p['min_score']:g} and RRR ≥ {p['min_rrr']:g})"
        reason = f"fork score {score:.2f}, RRR {ratio:.2f} {gate}: " + ("; ".join(parts) or "no component")
        return Signal(
            symbol=data.symbol,
            timeframe=data.timeframe,
            time=int(c.time[i]),
            strategy=self.name,
            side="long",
            score=score,
            components=comps,
            entry=entry,
            stop_loss=sl,
            take_profit=tp,
            rrr=ratio,
            reason=reason,
            passed=passed,
        )


register(ForkScore())
