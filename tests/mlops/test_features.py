"""The feature set (mlops.core.features) on hand-made arrays and on the bundled real candles."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mlops.core.feature_registry import FEATURES
from mlops.core.features import (
    FEATURE_NAMES,
    FEATURES_VERSION,
    FeatureFrame,
    compute_features,
    feature_hash,
    features_at,
    features_latest_many,
)
from strategies.engine.feed import Candles, load_csv

H = 3_600_000
MONDAY = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)  # a Monday, 00:00 UTC
COL = {n: i for i, n in enumerate(FEATURE_NAMES)}


def candles(close, *, open_=None, high=None, low=None, volume=None, t0=MONDAY):
    close = np.asarray(close, dtype=float)
    n = len(close)
    open_ = close if open_ is None else open_
    high = np.maximum(close, open_) if high is None else high
    low = np.minimum(close, open_) if low is None else low
    volume = np.ones(n) if volume is None else volume
    return Candles.from_arrays(t0 + H * np.arange(n), open_, high, low, close, volume)


def col(frame: FeatureFrame, name: str) -> np.ndarray:
    return frame.values[:, COL[name]]


@pytest.fixture(scope="module")
def bundled():
    from pathlib import Path

    from django.conf import settings

    d = Path(settings.MARKET7_BUNDLED_DATA)
    return {s: load_csv(d / f"{s}USDT-1h.csv.gz") for s in ("BTC", "ETH", "SOL", "DOGE")}


def test_registry_names_units_and_hash():
    assert len(FEATURE_NAMES) == 72
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.unit and f.description for f in FEATURES)
    assert FEATURES_VERSION == "1"
    h = feature_hash(FEATURE_NAMES)
    assert h == feature_hash() and len(h) == 64
    assert feature_hash(FEATURE_NAMES[::-1]) != h
    assert feature_hash(FEATURE_NAMES[:-1]) != h


def test_returns_range_and_candle_shape_by_hand():
    close = [100.0, 110.0, 99.0, 99.0, 121.0] + [100.0 + i for i in range(30)]
    c = candles(close)
    f = compute_features(c)
    assert f.values.dtype == np.float32 and f.values.shape == (35, 72)
    assert np.isnan(col(f, "ret_1")[0])
    assert col(f, "ret_1")[1] == np.float32(10.0)
    assert col(f, "ret_1")[2] == np.float32((99 / 110 - 1) * 100)
    assert col(f, "ret_4")[4] == np.float32(21.0)
    assert np.isnan(col(f, "ret_4")[3])
    # 24-candle range of rows 11..34 (closes 106..129, flat candles): close 129 at the top
    assert col(f, "range_pos_24")[34] == np.float32(1.0)
    assert col(f, "close_pctile_24")[34] == np.float32(1.0)
    # row 23: window rows 0..23 holds lows 99 and highs 121; close 118
    assert col(f, "range_pos_24")[23] == np.float32((118 - 99) / (121 - 99))
    # closes <= 118 in rows 0..23: 100,110,99,99 + 100..118 (rows 5..23) -> 4 + 19 = 23
    assert col(f, "close_pctile_24")[23] == np.float32(23 / 24)
    assert np.isnan(col(f, "range_pos_24")[22])

    shaped = candles([104.0], open_=[100.0], high=[110.0], low=[90.0])
    g = compute_features(shaped)
    assert col(g, "body_pct")[0] == np.float32(4.0)
    assert col(g, "range_pct")[0] == np.float32(20.0)
    assert col(g, "upper_wick")[0] == np.float32(6 / 20)
    assert col(g, "lower_wick")[0] == np.float32(10 / 20)


def test_volume_features_by_hand():
    vol = np.ones(30)
    vol[23] = 24.0
    close = 100.0 + np.arange(30.0)
    c = candles(close, open_=close - 1, high=close + 1, low=close - 3, volume=vol)
    f = compute_features(c)
    # SMA(volume, 24) at row 23 = (23 + 24) / 24
    assert col(f, "vol_ratio_24")[23] == pytest.approx(24 / (47 / 24), rel=1e-7)
    assert col(f, "vol_ratio_4_24")[23] == pytest.approx((27 / 4) / (47 / 24), rel=1e-7)
    assert np.isnan(col(f, "vol_ratio_24")[22])
    # every candle: CLV = (2c - h - l) / (h - l) = (2c - (c+1) - (c-3)) / 4 = 0.5
    assert col(f, "vol_delta_24")[29] == pytest.approx(0.5, rel=1e-7)
    # every close rises: OBV adds each volume, so the 24-candle change equals the volume sum
    assert col(f, "obv_slope_24")[29] == pytest.approx(1.0, rel=1e-7)
    # a steady rise is perfectly efficient
    assert col(f, "efficiency_24")[29] == pytest.approx(1.0, rel=1e-7)


def test_calendar_and_sessions():
    c = candles(np.full(48, 100.0))  # 2024-01-01 00:00 (Monday) .. 2024-01-02 23:00
    f = compute_features(c)
    hour, dow = col(f, "hour"), col(f, "dow")
    assert hour[:24].tolist() == list(range(24))
    assert dow[0] == 0 and dow[23] == 0 and dow[24] == 1
    asia, eu, us = col(f, "session_asia"), col(f, "session_europe"), col(f, "session_us")
    assert [int(asia[h]) for h in (0, 8, 9)] == [1, 1, 0]
    assert [int(eu[h]) for h in (6, 7, 15, 16)] == [0, 1, 1, 0]
    assert [int(us[h]) for h in (12, 13, 14, 21, 22)] == [0, 1, 1, 1, 0]
    assert col(f, "hour_cos")[0] == np.float32(1.0) and col(f, "hour_sin")[6] == np.float32(1.0)
    sunday = compute_features(candles([1.0, 1.0], t0=MONDAY - 24 * H))  # 2023-12-31, a Sunday
    assert col(sunday, "dow").tolist() == [6.0, 6.0]


def test_warm_up_nan_exactly_where_expected(bundled):
    eth, btc = bundled["ETH"], bundled["BTC"]
    f = compute_features(eth, btc)
    first_finite = {n: int(np.argmax(np.isfinite(col(f, n)))) for n in FEATURE_NAMES}
    expected = {
        "ret_1": 1,
        "ret_24": 24,
        "ret_72": 72,
        "rvol_24": 24,
        "rsi_14": 14,
        "rsi_28": 28,
        "dist_sma_200": 199,
        "dist_ema_200": 199,
        "ema_50_200": 199,
        "macd_line": 33,
        "macd_signal": 33,
        "adx_14": 27,
        "stoch_k": 17,
        "corr_btc_24": 24,
        "beta_btc_72": 72,
        "rvol_ratio_24_168": 168,
        "hour": 0,
        "btc_ret_24": 24,
        "btc_dist_ema_200": 199,
    }
    assert {n: first_finite[n] for n in expected} == expected
    for n in expected:  # NaN before, finite from then on (no gaps in the bundled data)
        assert np.isfinite(col(f, n)[expected[n] :]).all(), n


def test_btc_features_against_itself_and_absent(bundled):
    btc = bundled["BTC"]
    own = compute_features(btc, btc)
    assert np.allclose(col(own, "corr_btc_72")[100:], 1.0, atol=1e-6)
    assert np.allclose(col(own, "beta_btc_72")[100:], 1.0, atol=1e-6)
    assert np.array_equal(col(own, "btc_rsi_14"), col(own, "rsi_14"), equal_nan=True)
    assert np.array_equal(col(own, "rel_ret_24")[24:], np.zeros(len(btc) - 24, dtype=np.float32))
    alone = compute_features(bundled["ETH"])
    btc_cols = [n for n in FEATURE_NAMES if "btc" in n] + ["rel_ret_24"]
    assert len(btc_cols) == 13
    assert all(np.isnan(col(alone, n)).all() for n in btc_cols)
    # the non-BTC columns do not depend on BTC
    other = [COL[n] for n in FEATURE_NAMES if n not in btc_cols]
    with_btc = compute_features(bundled["ETH"], btc)
    assert np.array_equal(alone.values[:, other], with_btc.values[:, other], equal_nan=True)


def test_truncating_the_future_never_changes_a_past_row(bundled):
    eth, btc = bundled["ETH"], bundled["BTC"]
    full = compute_features(eth, btc)
    for n in (300, 2500, 4000):
        part = compute_features(eth[:n], btc[:n])
        assert np.array_equal(part.values, full.values[:n], equal_nan=True)
        assert np.array_equal(part.time, full.time[:n])


def assert_rows_close(rows, ref):
    """Equal to float32 precision: EMA-type features over their trailing window differ from the
    full history by < 1e-4 relative (or 1e-5 absolute, in the feature's unit)."""
    np.testing.assert_allclose(rows, ref, rtol=1e-4, atol=1e-5)
    assert np.array_equal(np.isnan(rows), np.isnan(ref))


def test_features_at_equals_the_batch_row(bundled):
    eth, btc = bundled["ETH"], bundled["BTC"]
    full = compute_features(eth, btc)
    for i in (0, 23, 150, 1999, 2000, 3333, len(eth) - 1, -1):
        assert_rows_close(features_at(eth, i, btc), full.values[i])
    with pytest.raises(IndexError):
        features_at(eth, len(eth), btc)


def test_features_latest_many_equals_batch_rows(bundled):
    btc = bundled["BTC"]
    full = {s: compute_features(c, btc) for s, c in bundled.items()}
    for end in (len(btc), 3100):
        batch = {f"{s}/USDT": c[end - 2200 : end] for s, c in bundled.items()}
        batch["SHORT/USDT"] = bundled["SOL"][:60]  # shorter than every window: computed alone
        symbols, rows = features_latest_many(batch, btc)
        assert symbols == [*batch]
        assert rows.dtype == np.float32 and rows.shape == (5, 72)
        for k, s in enumerate(bundled):
            assert_rows_close(rows[k], full[s].values[end - 1])
        # a history shorter than every window (and BTC's state 60 candles in) is the batch row
        assert np.array_equal(rows[4], full["SOL"].values[59], equal_nan=True)
    # BTC defaults to batch["BTC/USDT"]
    _, rows2 = features_latest_many({"BTC/USDT": btc[-2000:], "ETH/USDT": bundled["ETH"][-2000:]})
    assert_rows_close(rows2[1], full["ETH"].values[-1])
    with pytest.raises(ValueError, match="no candles for X/USDT"):
        features_latest_many({"X/USDT": btc[:0]})


def test_feature_frame_shapes():
    f = compute_features(candles([1.0, 2.0, 3.0]))
    assert len(f) == 3 and f.column("ret_1").tolist()[1:] == [100.0, 50.0]
    assert f.to_frame().columns[:2].tolist() == ["time", "ret_1"]
    with pytest.raises(KeyError):
        f.column("nope")
    with pytest.raises(ValueError):
        FeatureFrame(np.zeros(2, dtype=np.int64), ("a",), np.zeros((3, 1), dtype=np.float32))
