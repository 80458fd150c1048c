"""The math of the candle feature set: groups of causal features over one flat panel of candles.

Pure numpy + TA-Lib (no Django). :mod:`mlops.core.features` owns the registry, the public API
and the windowing; this module only computes. Each group is a function ``(panel) -> {name:
float64 array}`` whose outputs have the panel's length, row ``i`` being the value as of the
**close** of candle ``i`` (inputs ``0..i`` only; TA-Lib with its defaults: compatibility
``DEFAULT``, unstable period 0, EMA seeded by the SMA of its first ``n`` values).

A group declares its ``window``: how many trailing candles make its *last* row equal to the
row computed over the whole history (exactly for finite-memory features, to < 1e-6 relative
for the EMA/Wilder ones, whose memory is infinite but decays as ``(1 - alpha)^k``). The
inference path concatenates the last ``window`` candles of many symbols into one panel,
every segment rescaled to its own last close / mean volume (every feature here is invariant
to price and volume scale), so one TA-Lib call serves 100 symbols; a segment's start then
inherits the previous segment's indicator state, which decays within the window exactly like
the seeding difference of a single window does.

Units: ``pct`` = percent (1.5 = 1.5 %), ``frac`` = fraction (0.015), ``ratio`` = plain ratio,
``0-100`` = oscillator scale, ``flag`` = -1/0/+1 or 0/1, ``hour`` / ``weekday`` = UTC calendar
of the candle's open time. Division by a zero range or zero volume yields NaN (documented per
feature in the registry), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import talib
from numpy.lib.stride_tricks import sliding_window_view

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Window (candles) per group; see the module docstring and docs/ml.md "Features".
W_FINITE = 240  # longest finite lookback: SMA 200 / log-return std 168 (+ margin)
W_WILDER = 500  # RSI 28, ATR/ADX 14, MACD 26/9, EMA <= 50: (1 - 1/28)^472 < 1e-7
W_LONG = 2000  # EMA 200: (1 - 2/201)^1800 < 2e-8

_EMPTY = np.empty(0)
_EMPTY_I = np.empty(0, dtype=np.int64)


@dataclass(slots=True)
class Panel:
    """One flat candle panel: float64 arrays of one length (``time`` int64 epoch ms open time).

    ``btc_close`` is BTC/USDT's close aligned to ``time`` (the newest BTC candle opening at or
    before each row, NaN before BTC's first candle or when no BTC is given)."""

    time: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    open: np.ndarray = field(default_factory=lambda: _EMPTY)
    high: np.ndarray = field(default_factory=lambda: _EMPTY)
    low: np.ndarray = field(default_factory=lambda: _EMPTY)
    close: np.ndarray = field(default_factory=lambda: _EMPTY)
    volume: np.ndarray = field(default_factory=lambda: _EMPTY)
    btc_close: np.ndarray = field(default_factory=lambda: _EMPTY)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if k < len(x):
        out[k:] = x[:-k]
    return out


def _pct_change(x: np.ndarray, k: int) -> np.ndarray:
    return (_div(x, _shift(x, k)) - 1.0) * 100.0


def _flag(cond: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = cond.astype(np.float64)
    out[~valid] = np.nan
    return out


def group_finite(p: Panel) -> dict[str, np.ndarray]:
    """Finite-memory features (exact over the last :data:`W_FINITE` candles)."""
    c, h, lo, o, v = p.close, p.high, p.low, p.open, p.volume
    out: dict[str, np.ndarray] = {}
    for k in (1, 4, 24, 72):
        out[f"ret_{k}"] = _pct_change(c, k)
    logret = np.full_like(c, np.nan)
    logret[1:] = np.log(c[1:] / c[:-1])
    rv = {n: talib.STDDEV(logret, n, 1.0) * 100.0 for n in (24, 72, 168)}
    out["rvol_24"], out["rvol_72"] = rv[24], rv[72]
    ratio = _div(rv[24], rv[168])
    out["rvol_ratio_24_168"] = ratio
    valid = np.isfinite(ratio)
    out["vol_regime"] = np.where(ratio > 1.5, 1.0, np.where(ratio < 1 / 1.5, -1.0, 0.0))
    out["vol_regime"][~valid] = np.nan
    for n in (24, 72):
        hi, lw = talib.MAX(h, n), talib.MIN(lo, n)
        out[f"range_pos_{n}"] = _div(c - lw, hi - lw)
    out["close_pctile_24"] = _close_pctile(c, 24)
    hi72, lo72 = talib.MAX(h, 72), talib.MIN(lo, 72)
    out["dist_high_72"] = (_div(c, hi72) - 1.0) * 100.0
    out["dist_low_72"] = (_div(c, lo72) - 1.0) * 100.0
    vs24, vs4 = talib.SMA(v, 24), talib.SMA(v, 4)
    out["vol_ratio_24"] = _div(v, vs24)
    out["vol_ratio_4_24"] = _div(vs4, vs24)
    out["vol_trend_24"] = _div(talib.LINEARREG_SLOPE(v, 24), vs24)
    clv = _div(2.0 * c - h - lo, h - lo)
    clv[np.isnan(clv) & np.isfinite(c)] = 0.0  # a zero-range candle is neither bought nor sold
    signed = v * clv
    for n in (24, 72):
        out[f"vol_delta_{n}"] = _div(talib.SUM(signed, n), talib.SUM(v, n))
    obv = talib.OBV(c, v)
    out["obv_slope_24"] = _div(obv - _shift(obv, 24), talib.SUM(v, 24))
    for n in (5, 10, 20, 50, 200):
        out[f"dist_sma_{n}"] = (_div(c, talib.SMA(c, n)) - 1.0) * 100.0
    up, mid, dn = talib.BBANDS(c, 20, 2.0, 2.0)
    out["bb_pos_20"] = _div(c - dn, up - dn)
    out["bb_width_20"] = _div(up - dn, mid) * 100.0
    k, d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    out["stoch_k"], out["stoch_d"] = k, d
    moves = np.full_like(c, np.nan)
    moves[1:] = np.abs(np.diff(c))
    out["efficiency_24"] = _div(np.abs(c - _shift(c, 24)), talib.SUM(moves, 24))
    rng = h - lo
    out["body_pct"] = _div(c - o, o) * 100.0
    out["range_pct"] = _div(rng, o) * 100.0
    out["upper_wick"] = _div(h - np.maximum(o, c), rng)
    out["lower_wick"] = _div(np.minimum(o, c) - lo, rng)
    b = p.btc_close
    bret = np.full_like(c, np.nan)
    bret[1:] = b[1:] / b[:-1] - 1.0
    sret = np.full_like(c, np.nan)
    sret[1:] = c[1:] / c[:-1] - 1.0
    for n in (24, 72):
        out[f"corr_btc_{n}"] = _rolling_corr(sret, bret, n)
    out["beta_btc_72"] = _rolling_beta(sret, bret, 72)
    out["rel_ret_24"] = out["ret_24"] - _pct_change(b, 24)
    return out


def _close_pctile(c: np.ndarray, n: int) -> np.ndarray:
    """Share of the last ``n`` closes (this one included) that are <= this close."""
    out = np.full_like(c, np.nan)
    if len(c) >= n:
        win = sliding_window_view(c, n)
        out[n - 1 :] = (win <= c[n - 1 :, None]).sum(axis=1) / n
    return out


def _rolling_stats(x: np.ndarray, y: np.ndarray, n: int):
    """Rolling sums over ``n`` rows of x, y, x², y², xy; NaN where any input in the window is
    NaN (a missing BTC candle, the first return). TA-Lib's CORREL/BETA let one NaN poison every
    later row, hence numpy sums of differences of prefix sums over NaN-zeroed inputs."""
    bad = ~(np.isfinite(x) & np.isfinite(y))
    x0, y0 = np.where(bad, 0.0, x), np.where(bad, 0.0, y)
    cols = np.stack([x0, y0, x0 * x0, y0 * y0, x0 * y0, bad.astype(np.float64)])
    cs = np.zeros((6, len(x) + 1))
    np.cumsum(cols, axis=1, out=cs[:, 1:])
    s = np.full((6, len(x)), np.nan)
    if len(x) >= n:
        s[:, n - 1 :] = cs[:, n:] - cs[:, :-n]
        s[:, n - 1 :][:, s[5, n - 1 :] > 0.5] = np.nan
    return s


def _rolling_corr(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlation of the last ``n`` pairs (NaN when either side is constant)."""
    sx, sy, sxx, syy, sxy, _ = _rolling_stats(x, y, n)
    cov = sxy - sx * sy / n
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    with np.errstate(invalid="ignore"):
        den = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
    return np.clip(_div(cov, den), -1.0, 1.0)


def _rolling_beta(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """OLS slope of x on y over the last ``n`` pairs: cov(x, y) / var(y)."""
    sx, sy, _, syy, sxy, _ = _rolling_stats(x, y, n)
    return _div(sxy - sx * sy / n, syy - sy * sy / n)


def group_wilder(p: Panel) -> dict[str, np.ndarray]:
    """EMA / Wilder-smoothed features (converged over the last :data:`W_WILDER` candles)."""
    c, h, lo = p.close, p.high, p.low
    out: dict[str, np.ndarray] = {}
    out["rsi_14"], out["rsi_28"] = talib.RSI(c, 14), talib.RSI(c, 28)
    line, sig, hist = talib.MACD(c, 12, 26, 9)
    out["macd_line"], out["macd_signal"], out["macd_hist"] = (_div(x, c) * 100.0 for x in (line, sig, hist))
    ema = {n: talib.EMA(c, n) for n in (5, 10, 20, 50)}
    for n, e in ema.items():
        out[f"dist_ema_{n}"] = (_div(c, e) - 1.0) * 100.0
    out["ema_20_50"] = (_div(ema[20], ema[50]) - 1.0) * 100.0
    out["atr_14"] = _div(talib.ATR(h, lo, c, 14), c) * 100.0
    adx = talib.ADX(h, lo, c, 14)
    out["adx_14"] = adx
    out["di_diff_14"] = talib.PLUS_DI(h, lo, c, 14) - talib.MINUS_DI(h, lo, c, 14)
    out["trend_regime"] = _flag(adx >= 25.0, np.isfinite(adx))
    return out


def group_long(p: Panel) -> dict[str, np.ndarray]:
    """EMA 200 features (converged over the last :data:`W_LONG` candles)."""
    c = p.close
    e50, e200 = talib.EMA(c, 50), talib.EMA(c, 200)
    out = {"dist_ema_200": (_div(c, e200) - 1.0) * 100.0, "ema_50_200": (_div(e50, e200) - 1.0) * 100.0}
    valid = np.isfinite(e200)
    trend = np.where((e50 > e200) & (c > e200), 1.0, np.where((e50 < e200) & (c < e200), -1.0, 0.0))
    trend[~valid] = np.nan
    out["trend_dir"] = trend
    return out


def group_time(p: Panel) -> dict[str, np.ndarray]:
    """Calendar of the candle's open time, UTC (window 1)."""
    t = p.time
    hour = ((t // HOUR_MS) % 24).astype(np.float64)
    dow = ((t // DAY_MS + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday; Monday = 0
    out = {
        "hour": hour,
        "dow": dow,
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "dow_sin": np.sin(2 * np.pi * dow / 7),
        "dow_cos": np.cos(2 * np.pi * dow / 7),
        "session_asia": ((hour >= 0) & (hour < 9)).astype(np.float64),
        "session_europe": ((hour >= 7) & (hour < 16)).astype(np.float64),
        "session_us": ((hour >= 13) & (hour < 22)).astype(np.float64),
    }
    return out


@dataclass(frozen=True, slots=True)
class Group:
    """A feature group: its function, the trailing ``window`` its last row needs and the panel
    ``columns`` it reads (the others are left empty when the inference path builds a panel)."""

    fn: object
    window: int
    columns: tuple[str, ...]


_OHLCV = ("open", "high", "low", "close", "volume")
GROUPS: tuple[Group, ...] = (
    Group(group_finite, W_FINITE, (*_OHLCV, "btc_close")),
    Group(group_wilder, W_WILDER, ("high", "low", "close")),
    Group(group_long, W_LONG, ("close",)),
    Group(group_time, 1, ("time",)),
)
