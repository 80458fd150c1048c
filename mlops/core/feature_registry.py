"""The named, documented list of candle features (order = column order of every feature matrix).

Changing a name, its order, its meaning or its math requires bumping
:data:`mlops.core.features.FEATURES_VERSION` (models record the feature hash they were
trained on and refuse another one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature: ``name`` (column), ``unit`` (pct, frac, ratio, 0-100, flag, hour, weekday,
    -1..1) and a one-line ``description`` (formula and source)."""

    name: str
    unit: str
    description: str


_F = Feature

CANDLE_FEATURES: tuple[Feature, ...] = (
    # returns and volatility
    _F("ret_1", "pct", "close / close 1 candle earlier - 1"),
    _F("ret_4", "pct", "close / close 4 candles earlier - 1"),
    _F("ret_24", "pct", "close / close 24 candles earlier - 1"),
    _F("ret_72", "pct", "close / close 72 candles earlier - 1"),
    _F("rvol_24", "pct", "realised volatility: population std of the last 24 log returns (per candle)"),
    _F("rvol_72", "pct", "realised volatility: population std of the last 72 log returns (per candle)"),
    _F("rvol_ratio_24_168", "ratio", "rvol over 24 candles / rvol over 168 candles"),
    _F("vol_regime", "flag", "volatility regime: +1 if rvol_ratio_24_168 > 1.5, -1 if < 1/1.5, else 0"),
    # where the price sits
    _F(
        "range_pos_24",
        "frac",
        "(close - lowest low) / (highest high - lowest low) over 24 candles; NaN on a zero range",
    ),
    _F(
        "range_pos_72",
        "frac",
        "(close - lowest low) / (highest high - lowest low) over 72 candles; NaN on a zero range",
    ),
    _F("close_pctile_24", "frac", "percentile of the close among the last 24 closes: share <= this close (1/24..1)"),
    _F("dist_high_72", "pct", "close / highest high of 72 candles - 1 (<= 0)"),
    _F("dist_low_72", "pct", "close / lowest low of 72 candles - 1 (>= 0)"),
    # volume
    _F("vol_ratio_24", "ratio", "volume / SMA(volume, 24); NaN when no volume"),
    _F("vol_ratio_4_24", "ratio", "volume trend: SMA(volume, 4) / SMA(volume, 24)"),
    _F("vol_trend_24", "frac", "least-squares slope of volume over 24 candles / SMA(volume, 24), per candle"),
    _F(
        "vol_delta_24",
        "-1..1",
        "cumulative volume delta over 24 candles: sum(volume * CLV) / sum(volume), "
        "CLV = (2 close - high - low) / (high - low), 0 on a zero-range candle",
    ),
    _F("vol_delta_72", "-1..1", "cumulative volume delta over 72 candles (as vol_delta_24)"),
    _F("obv_slope_24", "-1..1", "(OBV - OBV 24 candles earlier) / sum(volume, 24); OBV from TA-Lib"),
    # moving averages
    _F("dist_sma_5", "pct", "close / SMA(close, 5) - 1"),
    _F("dist_sma_10", "pct", "close / SMA(close, 10) - 1"),
    _F("dist_sma_20", "pct", "close / SMA(close, 20) - 1"),
    _F("dist_sma_50", "pct", "close / SMA(close, 50) - 1"),
    _F("dist_sma_200", "pct", "close / SMA(close, 200) - 1"),
    _F("bb_pos_20", "frac", "Bollinger position (close - lower) / (upper - lower), 20 candles, 2 std (TA-Lib BBANDS)"),
    _F("bb_width_20", "pct", "Bollinger width (upper - lower) / middle, 20 candles, 2 std"),
    _F("stoch_k", "0-100", "Stochastic slow %K (TA-Lib STOCH 14, 3 SMA, 3 SMA)"),
    _F("stoch_d", "0-100", "Stochastic slow %D (TA-Lib STOCH 14, 3 SMA, 3 SMA)"),
    _F("efficiency_24", "frac", "Kaufman efficiency ratio |close - close 24 earlier| / sum |close moves| over 24"),
    # the candle itself
    _F("body_pct", "pct", "(close - open) / open"),
    _F("range_pct", "pct", "(high - low) / open"),
    _F("upper_wick", "frac", "(high - max(open, close)) / (high - low); NaN on a zero range"),
    _F("lower_wick", "frac", "(min(open, close) - low) / (high - low); NaN on a zero range"),
    # against BTC
    _F("corr_btc_24", "-1..1", "Pearson correlation of simple returns with BTC/USDT's over 24 candles"),
    _F("corr_btc_72", "-1..1", "Pearson correlation of simple returns with BTC/USDT's over 72 candles"),
    _F("beta_btc_72", "ratio", "beta to BTC/USDT: cov(returns, BTC returns) / var(BTC returns) over 72 candles"),
    _F("rel_ret_24", "pct", "ret_24 minus BTC/USDT's 24-candle return (relative strength)"),
    # EMA / Wilder (TA-Lib)
    _F("rsi_14", "0-100", "RSI 14 (Wilder, TA-Lib)"),
    _F("rsi_28", "0-100", "RSI 28 (Wilder, TA-Lib)"),
    _F("macd_line", "pct", "MACD line EMA12 - EMA26, as percent of close"),
    _F("macd_signal", "pct", "MACD signal EMA9 of the line, as percent of close"),
    _F("macd_hist", "pct", "MACD histogram line - signal, as percent of close"),
    _F("dist_ema_5", "pct", "close / EMA(close, 5) - 1"),
    _F("dist_ema_10", "pct", "close / EMA(close, 10) - 1"),
    _F("dist_ema_20", "pct", "close / EMA(close, 20) - 1"),
    _F("dist_ema_50", "pct", "close / EMA(close, 50) - 1"),
    _F("ema_20_50", "pct", "EMA 20 / EMA 50 - 1"),
    _F("atr_14", "pct", "ATR 14 (Wilder, TA-Lib) / close"),
    _F("adx_14", "0-100", "ADX 14 (Wilder, TA-Lib): trend strength"),
    _F("di_diff_14", "-100..100", "+DI 14 - -DI 14 (TA-Lib): trend direction"),
    _F("trend_regime", "flag", "trend vs range: 1 when ADX 14 >= 25 (trending), 0 when ranging"),
    # EMA 200
    _F("dist_ema_200", "pct", "close / EMA(close, 200) - 1"),
    _F("ema_50_200", "pct", "EMA 50 / EMA 200 - 1"),
    _F("trend_dir", "flag", "+1 when EMA50 > EMA200 and close > EMA200, -1 when both below, else 0"),
    # calendar (UTC, of the candle's open time)
    _F("hour", "hour", "hour of day of the candle's open time, UTC (0-23)"),
    _F("dow", "weekday", "day of week of the open time, UTC (Monday = 0 .. Sunday = 6)"),
    _F("hour_sin", "-1..1", "sin(2 pi hour / 24)"),
    _F("hour_cos", "-1..1", "cos(2 pi hour / 24)"),
    _F("dow_sin", "-1..1", "sin(2 pi dow / 7)"),
    _F("dow_cos", "-1..1", "cos(2 pi dow / 7)"),
    _F("session_asia", "flag", "1 when the open hour is in the Asia session 00:00-08:59 UTC"),
    _F("session_europe", "flag", "1 when the open hour is in the Europe session 07:00-15:59 UTC"),
    _F("session_us", "flag", "1 when the open hour is in the US session 13:00-21:59 UTC"),
)

# BTC/USDT's own state: the candle feature of BTC named after the prefix, as of the newest BTC
# candle opening at or before the row's candle.
BTC_STATE_SOURCES: tuple[str, ...] = (
    "ret_1",
    "ret_4",
    "ret_24",
    "rvol_24",
    "rsi_14",
    "adx_14",
    "dist_ema_50",
    "dist_ema_200",
    "trend_dir",
)

_UNITS = {f.name: f.unit for f in CANDLE_FEATURES}
BTC_FEATURES: tuple[Feature, ...] = tuple(
    _F(f"btc_{s}", _UNITS[s], f"BTC/USDT's own {s} as of this candle (see {s})") for s in BTC_STATE_SOURCES
)

FEATURES: tuple[Feature, ...] = CANDLE_FEATURES + BTC_FEATURES

DEAL_FEATURES: tuple[Feature, ...] = (
    _F("deal_pnl_pct", "pct", "unrealised P&L vs average entry: long close / avg - 1, short avg / close - 1"),
    _F("deal_drawdown_pct", "pct", "drawdown of the deal: max(0, -deal_pnl_pct)"),
    _F("deal_so_used", "count", "safety orders filled"),
    _F("deal_so_used_frac", "frac", "safety orders filled / safety orders max (0 when max is 0)"),
    _F("deal_spend_frac", "frac", "quote spent so far / max quote the deal may spend"),
    _F("deal_hours_open", "hours", "(now - opened at) in hours"),
    _F("deal_tp_distance_pct", "pct", "favourable move still needed to reach the take-profit price, percent of close"),
)
