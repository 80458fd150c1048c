"""The math of the candle feature set: groups of causal features over one flat panel of candles.

Pure numpy + TA-Lib (no Django). :mod:`mlops.core.features` owns the registry, the public API
and the windowing; this module only computes. Each group is a function ``(panel) -> {name:
float64 array}`` whose outputs have the panel's length, row ``i`` being the value as of the
**close** of candle ``i`` (inputs ``0..i`` only; TA-Lib with its defaults: compatibility
``DEFAULT``, unstable period 0, EMA seeded by the SMA of its first ``n`` values).

A group declares its ``window``: how many trailing candles make its *last* row equal to the
row computed over the whole history (exactly for finite-memory features, to < 1e-4 relative
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
W_SHORT = 80  # finite lookbacks <= 73 rows (72-candle return, correlation of 72 returns)
W_SLOW = 200  # SMA 200, std of 168 log returns
W_WILDER = 300  # RSI 14, ATR/ADX 14, MACD 26/9, EMA <= 20
W_MID = 500  # RSI 28, EMA 50
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
    """a / b, NaN where b == 0 (never inf)."""
    return np.divide(a, b, out=np.full(np.shape(b), np.nan), where=b != 0)


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


def group_short(p: Panel) -> dict[str, np.ndarray]:
    """Finite-memory features with lookbacks <= 73 rows (exact over :data:`W_SHORT` candles)."""
    c, h, lo, o, v = p.close, p.high, p.low, p.open, p.volume
    out: dict[str, np.ndarray] = {}
    for k in (1, 4, 24, 72):
        out[f"ret_{k}"] = _pct_change(c, k)
    logret = np.full_like(c, np.nan)
    logret[1:] = np.log(c[1:] / c[:-1])
    out["rvol_24"] = talib.STDDEV(logret, 24, 1.0) * 100.0
    out["rvol_72"] = talib.STDDEV(logret, 72, 1.0) * 100.0
    for n in (24, 72):
        hi, lw = talib.MAX(h, n), talib.MIN(lo, n)
        out[f"range_pos_{n}"] = _div(c - lw, hi - lw)
        if n == 72:
            out["dist_high_72"] = (_div(c, hi) - 1.0) * 100.0
            out["dist_low_72"] = (_div(c, lw) - 1.0) * 100.0
    out["close_pctile_24"] = _close_pctile(c, 24)
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
    out["obv_slope_24"] = _div(obv - _shift(obv, 24), vs24 * 24.0)
    for n in (5, 10, 20, 50):
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
    (out["corr_btc_24"], _), (out["corr_btc_72"], out["beta_btc_72"]) = _rolling_corr_beta(sret, bret, (24, 72))
    out["rel_ret_24"] = out["ret_24"] - _pct_change(b, 24)
    return out


def group_slow(p: Panel) -> dict[str, np.ndarray]:
    """Finite-memory features with lookbacks up to 200 rows (exact over :data:`W_SLOW`)."""
    c = p.close
    logret = np.full_like(c, np.nan)
    logret[1:] = np.log(c[1:] / c[:-1])
    ratio = _div(talib.STDDEV(logret, 24, 1.0), talib.STDDEV(logret, 168, 1.0))
    regime = np.where(ratio > 1.5, 1.0, np.where(ratio < 1 / 1.5, -1.0, 0.0))
    regime[np.isnan(ratio)] = np.nan
    return {
        "rvol_ratio_24_168": ratio,
        "vol_regime": regime,
        "dist_sma_200": (_div(c, talib.SMA(c, 200)) - 1.0) * 100.0,
    }


def _close_pctile(c: np.ndarray, n: int) -> np.ndarray:
    """Share of the last ``n`` closes (this one included) that are <= this close."""
    out = np.full_like(c, np.nan)
    if len(c) >= n:
        win = sliding_window_view(c, n)
        out[n - 1 :] = (win <= c[n - 1 :, None]).sum(axis=1) / n
    return out


def _rolling_corr_beta(x: np.ndarray, y: np.ndarray, windows: tuple[int, ...]):
    """Per window ``n``: (Pearson correlation, OLS beta of x on y = cov(x, y) / var(y)) of the
    last ``n`` pairs; NaN where any pair in the window is NaN (a missing BTC candle, the first
    return) or a side is constant. TA-Lib's CORREL/BETA let one NaN poison every later row, hence
    differences of prefix sums over NaN-zeroed inputs."""
    bad = ~(np.isfinite(x) & np.isfinite(y))
    x0, y0 = np.where(bad, 0.0, x), np.where(bad, 0.0, y)
    cols = np.stack([x0, y0, x0 * x0, y0 * y0, x0 * y0, bad.astype(np.float64)])
    cs = np.zeros((6, len(x) + 1))
    np.cumsum(cols, axis=1, out=cs[:, 1:])
    out = []
    for n in windows:
        s = np.full((6, len(x)), np.nan)
        if len(x) >= n:
            s[:, n - 1 :] = cs[:, n:] - cs[:, :-n]
            s[:, n - 1 :][:, s[5, n - 1 :] > 0.5] = np.nan
        sx, sy, sxx, syy, sxy, _ = s
        cov = sxy - sx * sy / n
        vx, vy = sxx - sx * sx / n, syy - sy * sy / n
        with np.errstate(invalid="ignore"):
            den = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
        out.append((np.clip(_div(cov, den), -1.0, 1.0), _div(cov, vy)))
    return out


def group_wilder(p: Panel) -> dict[str, np.ndarray]:
    """EMA / Wilder-smoothed features (converged over the last :data:`W_WILDER` candles)."""
    c, h, lo = p.close, p.high, p.low
    out: dict[str, np.ndarray] = {}
    out["rsi_14"] = talib.RSI(c, 14)
    line, sig, hist = talib.MACD(c, 12, 26, 9)
    out["macd_line"], out["macd_signal"], out["macd_hist"] = (_div(x, c) * 100.0 for x in (line, sig, hist))
    for n in (5, 10, 20):
        out[f"dist_ema_{n}"] = (_div(c, talib.EMA(c, n)) - 1.0) * 100.0
    out["atr_14"] = _div(talib.ATR(h, lo, c, 14), c) * 100.0
    adx = talib.ADX(h, lo, c, 14)
    out["adx_14"] = adx
    out["di_diff_14"] = talib.PLUS_DI(h, lo, c, 14) - talib.MINUS_DI(h, lo, c, 14)
    out["trend_regime"] = _flag(adx >= 25.0, np.isfinite(adx))
    return out


def group_mid(p: Panel) -> dict[str, np.ndarray]:
    """RSI 28 and the EMA 50 distance (converged over the last :data:`W_MID` candles)."""
    c = p.close
    return {"rsi_28": talib.RSI(c, 28), "dist_ema_50": (_div(c, talib.EMA(c, 50)) - 1.0) * 100.0}


def group_long(p: Panel) -> dict[str, np.ndarray]:
    """EMA 200 distance (converged over the last :data:`W_LONG` candles)."""
    c = p.close
    return {"dist_ema_200": (_div(c, talib.EMA(c, 200)) - 1.0) * 100.0}


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


def combine(cols: dict[str, np.ndarray]) -> None:
    """Row-wise features from other groups' columns (added to ``cols`` in place):
    EMA50 / EMA200 - 1 = (1 + d200) / (1 + d50) - 1 with ``d`` the close's distances (fraction),
    and the trend direction from the same two distances."""
    d20, d50, d200 = cols["dist_ema_20"] / 100.0, cols["dist_ema_50"] / 100.0, cols["dist_ema_200"] / 100.0
    cols["ema_20_50"] = ((1.0 + d50) / (1.0 + d20) - 1.0) * 100.0
    cols["ema_50_200"] = ((1.0 + d200) / (1.0 + d50) - 1.0) * 100.0
    trend = np.where((d200 > d50) & (d200 > 0), 1.0, np.where((d200 < d50) & (d200 < 0), -1.0, 0.0))
    trend[np.isnan(d50) | np.isnan(d200)] = np.nan
    cols["trend_dir"] = trend


@dataclass(frozen=True, slots=True)
class Group:
    """A feature group: its function, the trailing ``window`` its last row needs and the panel
    ``columns`` it reads (the others are left empty when the inference path builds a panel)."""

    fn: object
    window: int
    columns: tuple[str, ...]


_OHLCV = ("open", "high", "low", "close", "volume")
GROUPS: tuple[Group, ...] = (
    Group(group_short, W_SHORT, (*_OHLCV, "btc_close")),
    Group(group_slow, W_SLOW, ("close",)),
    Group(group_wilder, W_WILDER, ("high", "low", "close")),
    Group(group_mid, W_MID, ("close",)),
    Group(group_long, W_LONG, ("close",)),
    Group(group_time, 1, ("time",)),
)
