"""Batch indicators over whole candle arrays (backtests, research, feature building).

Thin, typed wrappers around TA-Lib (the C library does the math) plus the two things TA-Lib
lacks: VWAP and log-return volatility. Conventions shared by every function:

- **Inputs** are 1-D arrays (anything :func:`numpy.asarray` accepts) converted to contiguous
  ``float64``; prices in quote currency, volume in base asset, times in epoch **ms** UTC.
  Arrays passed together must have the same length. Leading NaNs are allowed (TA-Lib starts
  after them, which lets indicators be chained); a NaN *after* the first finite value
  poisons the outputs that depend on it.
- **Output** arrays have the input's length and are aligned with it: element ``i`` is the
  value as of the close of candle ``i``. The first ``lookback`` elements are NaN (warm-up);
  each docstring gives the lookback for its arguments.
- **Causal**: element ``i`` depends only on inputs ``0..i``; truncating the future never
  changes a past value (tested by truncation).
- TA-Lib is used with its defaults — compatibility ``DEFAULT`` and unstable period 0 — so
  EMA-type series are seeded by an SMA of the first ``n`` values. Changing those globals with
  ``talib.set_unstable_period``/``set_compatibility`` changes these results; don't.
- Bad arguments raise ``ValueError`` (periods below the minimum, wrong dimensions, length
  mismatch) before TA-Lib is called.

:mod:`strategies.indicators.incremental` has O(1) streaming versions of SMA, EMA, RSI, MACD,
Bollinger and ATR that match these to 1e-9 relative after warm-up.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import talib

__all__ = [
    "MACDResult",
    "BollingerResult",
    "StochResult",
    "sma",
    "ema",
    "rsi",
    "macd",
    "bollinger",
    "atr",
    "stochastic",
    "adx",
    "obv",
    "typical_price",
    "vwap_rolling",
    "vwap_session",
    "log_returns",
    "rolling_volatility",
]

FloatArray = npt.NDArray[np.float64]
DAY_MS = 86_400_000


class MACDResult(NamedTuple):
    """MACD line (fast EMA − slow EMA), its signal EMA and histogram (line − signal); quote
    currency, each the input's length."""

    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


class BollingerResult(NamedTuple):
    """Bollinger bands in quote currency, each the input's length."""

    upper: FloatArray
    middle: FloatArray
    lower: FloatArray


class StochResult(NamedTuple):
    """Slow stochastic %K and %D, 0..100."""

    slowk: FloatArray
    slowd: FloatArray


def _arr(name: str, x: npt.ArrayLike) -> FloatArray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _arrs(**named: npt.ArrayLike) -> list[FloatArray]:
    out = [_arr(k, v) for k, v in named.items()]
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}={len(a)}" for k, a in zip(named, out, strict=True))
        raise ValueError(f"input arrays differ in length: {sizes}")
    return out


def _period(name: str, value: int, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def sma(close: npt.ArrayLike, period: int = 20) -> FloatArray:
    """Simple moving average of ``period`` values (TA-Lib ``SMA``). Lookback ``period − 1``."""
    return talib.SMA(_arr("close", close), timeperiod=_period("period", period))


def ema(close: npt.ArrayLike, period: int = 20) -> FloatArray:
    """Exponential moving average, ``k = 2/(period+1)``, seeded by the SMA of the first
    ``period`` values (TA-Lib ``EMA``). Lookback ``period − 1``."""
    return talib.EMA(_arr("close", close), timeperiod=_period("period", period))


def rsi(close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's Relative Strength Index, 0..100 (TA-Lib ``RSI``): average gain and loss
    seeded by simple means of the first ``period`` changes, then Wilder-smoothed;
    0 when both averages are 0. Lookback ``period``."""
    return talib.RSI(_arr("close", close), timeperiod=_period("period", period))


def macd(close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MACDResult:
    """MACD (TA-Lib ``MACD``): line = EMA(fast) − EMA(slow), signal = EMA(signal) of the line,
    hist = line − signal. TA-Lib seeds the fast EMA at the slow EMA's seed index (SMA of the
    ``fast`` values ending there). Lookback ``slow + signal − 2`` (33 for 12/26/9); all three
    outputs start together. Requires ``2 <= fast < slow`` and ``signal >= 2``."""
    fast, slow = _period("fast", fast), _period("slow", slow)
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be < slow ({slow})")
    line, sig, hist = talib.MACD(
        _arr("close", close), fastperiod=fast, slowperiod=slow, signalperiod=_period("signal", signal)
    )
    return MACDResult(line, sig, hist)


def bollinger(close: npt.ArrayLike, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float = 2.0) -> BollingerResult:
    """Bollinger Bands (TA-Lib ``BBANDS``, ``matype=SMA``): middle = SMA(period),
    upper/lower = middle ± nbdev × **population** std (ddof 0) of the same window.
    Lookback ``period − 1``."""
    if not (np.isfinite(nbdev_up) and np.isfinite(nbdev_dn)):
        raise ValueError("nbdev_up and nbdev_dn must be finite")
    upper, middle, lower = talib.BBANDS(
        _arr("close", close),
        timeperiod=_period("period", period),
        nbdevup=float(nbdev_up),
        nbdevdn=float(nbdev_dn),
        matype=talib.MA_Type.SMA,
    )
    return BollingerResult(upper, middle, lower)


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Average True Range, quote currency (TA-Lib ``ATR``). TR = max(high−low,
    |high−prev close|, |low−prev close|); candle 0 has no TR. First value (index ``period``)
    is the mean of TR[1..period], then Wilder smoothing. Lookback ``period``."""
    h, lo, c = _arrs(high=high, low=low, close=close)
    return talib.ATR(h, lo, c, timeperiod=_period("period", period, 1))


def stochastic(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    fastk_period: int = 14,
    slowk_period: int = 3,
    slowd_period: int = 3,
) -> StochResult:
    """Slow stochastic oscillator, 0..100 (TA-Lib ``STOCH``, SMA smoothing):
    fast %K = 100·(close − min low)/(max high − min low) over ``fastk_period``;
    slow %K = SMA(slowk_period) of fast %K; slow %D = SMA(slowd_period) of slow %K.
    Lookback ``fastk_period + slowk_period + slowd_period − 3`` (17 for 14/3/3)."""
    h, lo, c = _arrs(high=high, low=low, close=close)
    k, d = talib.STOCH(
        h,
        lo,
        c,
        fastk_period=_period("fastk_period", fastk_period, 1),
        slowk_period=_period("slowk_period", slowk_period, 1),
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=_period("slowd_period", slowd_period, 1),
        slowd_matype=talib.MA_Type.SMA,
    )
    return StochResult(k, d)


def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's Average Directional Index, 0..100 (TA-Lib ``ADX``). Lookback
    ``2·period − 1`` (27 for 14)."""
    h, lo, c = _arrs(high=high, low=low, close=close)
    return talib.ADX(h, lo, c, timeperiod=_period("period", period))


def obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> FloatArray:
    """On-Balance Volume, base-asset units (TA-Lib ``OBV``): starts at ``volume[0]`` and adds
    (subtracts) each candle's volume when the close rises (falls); unchanged on equal closes.
    No warm-up. Its level depends on where the array starts — use its changes, not its value."""
    c, v = _arrs(close=close, volume=volume)
    return talib.OBV(c, v)


def typical_price(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """Typical price ``(high + low + close) / 3`` (TA-Lib ``TYPPRICE``), quote currency."""
    h, lo, c = _arrs(high=high, low=low, close=close)
    return talib.TYPPRICE(h, lo, c)


def vwap_rolling(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    period: int = 20,
) -> FloatArray:
    """Rolling volume-weighted average price over the last ``period`` candles, quote currency.

    Formula (TA-Lib has no VWAP; the sums use TA-Lib ``SUM``)::

        tp[j]   = (high[j] + low[j] + close[j]) / 3
        vwap[i] = Σ_{j=i−period+1..i} tp[j]·volume[j]  /  Σ_{j=i−period+1..i} volume[j]

    The typical price stands in for the unknown intra-candle trade prices (the usual
    approximation for candle data). Lookback ``period − 1``; NaN where the window's volume is
    0 (e.g. mark-price candles, which have no volume).
    """
    h, lo, c, v = _arrs(high=high, low=low, close=close, volume=volume)
    n = _period("period", period, 1)
    num = talib.SUM(talib.TYPPRICE(h, lo, c) * v, timeperiod=n)
    den = talib.SUM(v, timeperiod=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0.0, num / den, np.nan)


def vwap_session(
    open_time_ms: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    session_ms: int = DAY_MS,
) -> FloatArray:
    """Anchored session VWAP, reset at every UTC session boundary (daily by default).

    A candle belongs to session ``open_time_ms // session_ms`` (UTC days for the default, since
    epoch 0 is midnight UTC). Within a session, with ``tp`` the typical price::

        vwap[i] = Σ_{j=s..i} tp[j]·volume[j] / Σ_{j=s..i} volume[j]     (s = session's first candle)

    Causal and without warm-up: the first candle of a session gives its own typical price.
    NaN while the session's cumulative volume is 0. Sums restart at each session, so no
    cumulative drift over long arrays. For timeframes ≥ ``session_ms`` every candle is its own
    session and the result is the typical price.

    Raises ``ValueError`` when ``open_time_ms`` is not strictly increasing or
    ``session_ms <= 0``.
    """
    t = np.ascontiguousarray(open_time_ms, dtype=np.int64)
    h, lo, c, v = _arrs(high=high, low=low, close=close, volume=volume)
    if t.ndim != 1 or len(t) != len(c):
        raise ValueError(f"open_time_ms must be 1-D with {len(c)} elements, got shape {t.shape}")
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("open_time_ms must be strictly increasing")
    session_ms = _period("session_ms", session_ms, 1)
    pv = talib.TYPPRICE(h, lo, c) * v
    num = np.empty_like(pv)
    den = np.empty_like(pv)
    session = t // session_ms
    bounds = np.flatnonzero(np.diff(session)) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(t)], strict=True):
        num[a:b] = np.cumsum(pv[a:b])
        den[a:b] = np.cumsum(v[a:b])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0.0, num / den, np.nan)


def log_returns(close: npt.ArrayLike) -> FloatArray:
    """``r[i] = ln(close[i] / close[i−1])`` as a fraction; ``r[0]`` is NaN. Same length."""
    c = _arr("close", close)
    out = np.full_like(c, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(c[1:] / c[:-1])
    return out


def rolling_volatility(
    close: npt.ArrayLike,
    period: int = 20,
    periods_per_year: float | None = None,
    ddof: int = 1,
) -> FloatArray:
    """Rolling volatility: standard deviation of the last ``period`` log returns, a fraction
    (0.02 = 2 % per candle).

    ``vol[i] = sqrt( Σ (r_j − r̄)² / (period − ddof) )`` over ``j = i−period+1..i`` with ``r``
    from :func:`log_returns`; ``ddof=1`` (default) is the sample std, as pandas'
    ``rolling().std()``; ``ddof=0`` the population std. The population variance comes from
    TA-Lib ``VAR`` and is rescaled by ``period/(period−ddof)``. When ``periods_per_year`` is
    given (e.g. :func:`strategies.metrics.periods_per_year` of the timeframe: 8760 for 1h) the
    result is annualised by ``× sqrt(periods_per_year)`` (square-root-of-time rule).
    Lookback ``period`` (the first return needs two closes).
    Raises ``ValueError`` for ``period < 2``, ``ddof`` not in {0, 1} or
    ``periods_per_year <= 0``.
    """
    n = _period("period", period)
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    var = talib.VAR(log_returns(close), timeperiod=n, nbdev=1.0)
    # TA-Lib's E[x²]−E[x]² can dip a few ULPs below zero on a flat window.
    vol = np.sqrt(np.maximum(var, 0.0) * (n / (n - ddof)))
    if periods_per_year is not None:
        if not periods_per_year > 0:
            raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        vol *= np.sqrt(float(periods_per_year))
    return vol
