"""Indicators: incremental classes vs TA-Lib on real candles, state round-trips, causality.

Pure tests (no database, no Django settings needed). The real-data tests read
``../shared/data`` (or ``$MARKET7_SHARED_DATA``) and skip when it is absent, unless
``MARKET7_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.indicators import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    Bollinger,
    BollingerValue,
    MACDValue,
    batch,
    indicator_from_state,
)

RTOL = 1e-9


def _ohlcv_dir() -> Path:
    root = os.environ.get("MARKET7_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "ohlcv"


@functools.cache
def _load(name: str) -> dict[str, np.ndarray]:
    path = _ohlcv_dir() / f"{name}.csv.gz"
    if not path.is_file():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"shared data missing: {path}")
        pytest.skip(f"shared data not present: {path}")
    df = pd.read_csv(path)
    out = {c: df[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")}
    out["open_time"] = df["open_time"].to_numpy(np.int64)
    return out


REAL_FILES = ["spot/BTCUSDT-1h", "spot/DOGEUSDT-1h", "spot/BTCUSDT-1m", "spot/XRPUSDT-5m"]


def _run(ind, *cols: np.ndarray, width: int = 1) -> np.ndarray:
    """Feed every candle; return outputs as a float array with NaN for warm-up ``None``."""
    out = np.full((len(cols[0]), width), np.nan)
    for i, args in enumerate(zip(*cols, strict=True)):
        v = ind.update(*args)
        if v is not None:
            out[i] = v
    return out[:, 0] if width == 1 else out


def _assert_matches(got: np.ndarray, want: np.ndarray, what: str, price: np.ndarray | None = None) -> None:
    """``|got − want| <= 1e-9·|want|`` after warm-up, and NaN (``None``) exactly where TA-Lib has NaN.

    ``price``: for MACD, whose line/signal/hist are differences of price-sized EMAs and cross
    zero, the error is also allowed 1e-13 × price (a few hundred ULPs of the inputs). TA-Lib
    0.8 evaluates the EMA step with a fused multiply-add, so its EMAs differ from plain Python
    float arithmetic by an ULP now and then, and near a zero crossing that ULP is a large
    *relative* error of the tiny difference.
    """
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: warm-up differs")
    ok = ~np.isnan(want)
    assert ok.sum() > 0
    err, scale = np.abs(got[ok] - want[ok]), np.abs(want[ok])
    if price is not None:
        scale = scale + 1e-13 / RTOL * np.abs(price[ok])
    bad = np.flatnonzero(err > RTOL * scale)  # relative; an exact 0 (flat RSI) must be exact
    assert bad.size == 0, f"{what}: rel err {err[bad[0]] / scale[bad[0]]:.3g} at {np.flatnonzero(ok)[bad[0]]}"


# --- TA-Lib conventions this module relies on ---------------------------------------------


def test_talib_runs_with_default_unstable_period_and_compatibility():
    for fn in ("EMA", "RSI", "ATR", "ADX"):
        assert talib.get_unstable_period(fn) == 0
    assert talib.get_compatibility() == 0  # TA_COMPATIBILITY_DEFAULT: EMA seeded by an SMA


# --- incremental == TA-Lib on real data ----------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("name", REAL_FILES)
def test_incremental_matches_talib_on_real_candles(name):
    d = _load(name)
    h, lo, c = d["high"], d["low"], d["close"]
    assert len(c) > 14_000
    _assert_matches(_run(SMA(20), c), talib.SMA(c, 20), f"{name} SMA")
    _assert_matches(_run(EMA(20), c), talib.EMA(c, 20), f"{name} EMA")
    _assert_matches(_run(RSI(14), c), talib.RSI(c, 14), f"{name} RSI")
    _assert_matches(_run(ATR(14), h, lo, c), talib.ATR(h, lo, c, 14), f"{name} ATR")
    m = _run(MACD(), c, width=3)
    for j, (col, want) in enumerate(zip(MACDValue._fields, talib.MACD(c, 12, 26, 9), strict=True)):
        _assert_matches(m[:, j], want, f"{name} MACD.{col}", price=c)
    b = _run(Bollinger(20, 2.0, 2.0), c, width=3)
    for j, (col, want) in enumerate(zip(BollingerValue._fields, talib.BBANDS(c, 20, 2.0, 2.0, 0), strict=True)):
        _assert_matches(b[:, j], want, f"{name} BBANDS.{col}")


@pytest.mark.shared_data
def test_incremental_matches_talib_with_other_parameters():
    d = _load("spot/ETHUSDT-1m")
    h, lo, c = d["high"], d["low"], d["close"]
    _assert_matches(_run(SMA(7), c), talib.SMA(c, 7), "SMA(7)")
    _assert_matches(_run(SMA(200), c), talib.SMA(c, 200), "SMA(200)")
    _assert_matches(_run(EMA(2), c), talib.EMA(c, 2), "EMA(2)")
    _assert_matches(_run(EMA(200), c), talib.EMA(c, 200), "EMA(200)")
    _assert_matches(_run(RSI(2), c), talib.RSI(c, 2), "RSI(2)")
    _assert_matches(_run(ATR(1), h, lo, c), talib.ATR(h, lo, c, 1), "ATR(1)")
    _assert_matches(_run(ATR(50), h, lo, c), talib.ATR(h, lo, c, 50), "ATR(50)")
    m = _run(MACD(5, 35, 5), c, width=3)
    for j, want in enumerate(talib.MACD(c, 5, 35, 5)):
        _assert_matches(m[:, j], want, f"MACD(5,35,5)[{j}]", price=c)
    b = _run(Bollinger(10, 1.5, 2.5), c, width=3)
    for j, want in enumerate(talib.BBANDS(c, 10, 1.5, 2.5, 0)):
        _assert_matches(b[:, j], want, f"BBANDS(10,1.5,2.5)[{j}]")


@pytest.mark.shared_data
def test_incremental_matches_batch_wrappers():
    d = _load("spot/DOGEUSDT-1h")
    h, lo, c = d["high"][:3000], d["low"][:3000], d["close"][:3000]
    _assert_matches(_run(SMA(30), c), batch.sma(c, 30), "sma")
    _assert_matches(_run(EMA(30), c), batch.ema(c, 30), "ema")
    _assert_matches(_run(RSI(14), c), batch.rsi(c, 14), "rsi")
    _assert_matches(_run(ATR(14), h, lo, c), batch.atr(h, lo, c, 14), "atr")
    m, b = _run(MACD(), c, width=3), _run(Bollinger(), c, width=3)
    for j in range(3):
        _assert_matches(m[:, j], batch.macd(c)[j], "macd", price=c)
        _assert_matches(b[:, j], batch.bollinger(c)[j], "bollinger")


def test_rolling_window_does_not_drift_over_wide_price_ranges():
    # Prices swinging over 8 orders of magnitude: a plain running sum would carry the error
    # of the 1e6 era into the 1e-2 era. Compare with an exact window computation.
    rng = np.random.default_rng(7)
    n = 20
    x = np.concatenate(
        [1e6 * (1 + 0.01 * rng.standard_normal(20_000)), 1e-2 * (1 + 0.01 * rng.standard_normal(20_000))]
    )
    sma, bb = SMA(n), Bollinger(n, 2.0, 2.0)
    for i, v in enumerate(x):
        s, b = sma.update(v), bb.update(v)
        if i >= len(x) - 500:
            w = x[i - n + 1 : i + 1]
            mean = math.fsum(w) / n
            std = math.sqrt(math.fsum((w - mean) ** 2) / n)
            assert s == pytest.approx(mean, rel=1e-13)
            assert b.middle == pytest.approx(mean, rel=1e-13)
            assert bb.std == pytest.approx(std, rel=1e-9)


# --- small hand-checked examples ------------------------------------------------------------


def test_hand_computed_values():
    sma = SMA(3)
    assert [sma.update(v) for v in (1, 2, 3, 4)] == [None, None, 2.0, 3.0]

    ema = EMA(3)  # k = 0.5, seed = mean(1, 2, 3) = 2
    assert [ema.update(v) for v in (1, 2, 3, 4, 5)] == [None, None, 2.0, 3.0, 4.0]

    rsi = RSI(2)  # changes +1, -1 -> avg gain 0.5, loss 0.5 -> 50; then +1 -> 0.75/0.25 -> 75
    assert [rsi.update(v) for v in (1, 2, 1, 2)] == [None, None, 50.0, 75.0]
    flat = RSI(2)
    assert [flat.update(5.0) for _ in range(4)][-1] == 0.0  # TA-Lib convention

    atr = ATR(2)  # TR[0] skipped; TR[1] = max(3-1, |3-2|, |1-2|) = 2, TR[2] = 4 -> 3; TR[3] = 1 -> 2
    got = [atr.update(*hlc) for hlc in [(3, 1, 2), (3, 1, 2), (6, 2, 5), (5.5, 4.5, 5)]]
    assert got == [None, None, 3.0, 2.0]

    bb = Bollinger(4, 2.0, 1.0)  # window 2,4,4,6: mean 4, population std sqrt(8/4)
    for v in (2, 4, 4):
        assert bb.update(v) is None
    up, mid, low = bb.update(6)
    assert mid == 4.0
    assert up == pytest.approx(4 + 2 * math.sqrt(2), rel=1e-15)
    assert low == pytest.approx(4 - math.sqrt(2), rel=1e-15)


def test_macd_fast_ema_is_seeded_at_the_slow_seed():
    # TA-Lib's alignment: with fast=2, slow=4, at update 3 the fast EMA is the mean of
    # x[2..3] (not of x[0..1]), the slow EMA the mean of x[0..3].
    x = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    m = MACD(2, 4, 2)
    outs = [m.update(v) for v in x]
    assert outs[:4] == [None] * 4
    line3 = (4 + 8) / 2 - (1 + 2 + 4 + 8) / 4  # 6 - 3.75 = 2.25
    fast4, slow4 = (16 - 6) * (2 / 3) + 6, (16 - 3.75) * 0.4 + 3.75
    line4 = fast4 - slow4
    assert outs[4] == pytest.approx(MACDValue(line4, (line3 + line4) / 2, line4 - (line3 + line4) / 2), rel=1e-15)
    want = talib.MACD(np.array(x), 2, 4, 2)
    assert [w[4] for w in want] == pytest.approx(list(outs[4]), rel=1e-15)


@pytest.mark.parametrize(
    ("make", "first"),
    [
        (lambda: SMA(20), 19),
        (lambda: EMA(20), 19),
        (lambda: RSI(14), 14),
        (lambda: MACD(12, 26, 9), 33),
        (lambda: Bollinger(20), 19),
        (lambda: ATR(14), 14),
    ],
)
def test_warm_up_length_ready_and_value(make, first):
    ind = make()
    rng = np.random.default_rng(1)
    prices = 100 + np.cumsum(rng.standard_normal(first + 3))
    for i, p in enumerate(prices):
        assert ind.ready is (i > first)
        assert (ind.value is None) is (i <= first)
        out = ind.update(p + 1, p - 1, p) if isinstance(ind, ATR) else ind.update(p)
        assert (out is None) is (i < first)
        assert ind.value == out
    assert ind.ready


# --- state round-trip -----------------------------------------------------------------------


def _all_indicators():
    return [SMA(20), EMA(20), RSI(14), MACD(), Bollinger(20, 2.0, 2.0), ATR(14), MACD(3, 10, 4), SMA(5)]


def _feed(ind, h, lo, c):
    return ind.update(h, lo, c) if isinstance(ind, ATR) else ind.update(c)


@pytest.mark.parametrize("split", [0, 1, 7, 25, 40, 333, 1999])
def test_state_round_trips_through_json_and_continues_bit_for_bit(split):
    rng = np.random.default_rng(split)
    c = 0.1 * np.exp(np.cumsum(0.01 * rng.standard_normal(2400)))
    h, lo = c * (1 + 0.004 * rng.random(len(c))), c * (1 - 0.004 * rng.random(len(c)))
    for original in _all_indicators():
        for i in range(split):
            _feed(original, h[i], lo[i], c[i])
        blob = json.dumps(original.state_dict(), allow_nan=False)  # strict JSON: no NaN
        restored = type(original).from_state(json.loads(blob))
        assert restored == original
        assert restored.value == original.value and restored.ready == original.ready
        assert indicator_from_state(json.loads(blob)) == original
        for i in range(split, len(c)):
            a, b = _feed(original, h[i], lo[i], c[i]), _feed(restored, h[i], lo[i], c[i])
            assert a == b, f"{original!r} diverged at {i}"  # exact, not approx


def test_from_state_rejects_another_kind():
    with pytest.raises(ValueError, match="state is for 'EMA'"):
        SMA.from_state(EMA(3).state_dict())
    with pytest.raises(ValueError, match="unknown indicator kind"):
        indicator_from_state({"kind": "VWMA"})


# --- input validation -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises_and_leaves_state_untouched(bad):
    for ind in _all_indicators():
        for i in range(30):
            _feed(ind, 11.0 + i % 3, 9.0, 10.0 + i % 3)
        before = json.dumps(ind.state_dict())
        with pytest.raises(ValueError, match="finite"):
            _feed(ind, bad, 9.0, bad)
        assert json.dumps(ind.state_dict()) == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: SMA(1),
        lambda: SMA(2.5),
        lambda: EMA(0),
        lambda: RSI(1),
        lambda: ATR(0),
        lambda: Bollinger(1),
        lambda: MACD(26, 12, 9),
        lambda: MACD(12, 12, 9),
        lambda: MACD(12, 26, 1),
        lambda: SMA(True),
    ],
)
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


# --- batch: causality, shapes, warm-up, errors ----------------------------------------------


def _batch_outputs(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    t, h, lo, c, v = d["open_time"], d["high"], d["low"], d["close"], d["volume"]
    out = {
        "sma": batch.sma(c, 20),
        "ema": batch.ema(c, 20),
        "rsi": batch.rsi(c, 14),
        "atr": batch.atr(h, lo, c, 14),
        "adx": batch.adx(h, lo, c, 14),
        "obv": batch.obv(c, v),
        "typical": batch.typical_price(h, lo, c),
        "vwap_rolling": batch.vwap_rolling(h, lo, c, v, 24),
        "vwap_session": batch.vwap_session(t, h, lo, c, v),
        "vol": batch.rolling_volatility(c, 20, periods_per_year=8760),
        "logret": batch.log_returns(c),
    }
    for prefix, res in (("macd", batch.macd(c)), ("bb", batch.bollinger(c)), ("stoch", batch.stochastic(h, lo, c))):
        for field, arr in zip(res._fields, res, strict=True):
            out[f"{prefix}.{field}"] = arr
    return out


@pytest.mark.shared_data
def test_batch_is_causal_truncating_the_future_changes_nothing():
    full = {k: v[:3000] for k, v in _load("spot/BTCUSDT-1h").items()}
    ref = _batch_outputs(full)
    for cut in (40, 611, 2000):
        part = _batch_outputs({k: v[:cut] for k, v in full.items()})
        for name, arr in part.items():
            assert arr.shape == (cut,)
            np.testing.assert_array_equal(arr, ref[name][:cut], err_msg=f"{name} changed at cut {cut}")


@pytest.mark.shared_data
def test_batch_shapes_and_warm_up_lengths():
    d = {k: v[:500] for k, v in _load("spot/ETHUSDT-1h").items()}
    out = _batch_outputs(d)
    lookback = {
        "sma": 19, "ema": 19, "rsi": 14, "atr": 14, "adx": 27, "obv": 0, "typical": 0,
        "vwap_rolling": 23, "vwap_session": 0, "vol": 20, "logret": 1,
        "macd.macd": 33, "macd.signal": 33, "macd.hist": 33,
        "bb.upper": 19, "bb.middle": 19, "bb.lower": 19, "stoch.slowk": 17, "stoch.slowd": 17,
    }  # fmt: skip
    assert set(out) == set(lookback)
    for name, arr in out.items():
        assert arr.dtype == np.float64 and arr.shape == (500,), name
        nan = np.isnan(arr)
        assert nan[: lookback[name]].all() and not nan[lookback[name] :].any(), name


def test_batch_accepts_lists_and_chains_over_leading_nans():
    c = [float(v) for v in range(1, 41)]
    np.testing.assert_array_equal(batch.sma(c, 3)[2:5], [2.0, 3.0, 4.0])
    # RSI of an EMA: TA-Lib starts after the EMA's leading NaNs
    r = batch.rsi(batch.ema(c, 5), 3)
    assert np.isnan(r[:7]).all() and np.all(r[7:] == 100.0)


def test_vwap_rolling_matches_independent_pandas_calculation():
    rng = np.random.default_rng(3)
    c = 100 + np.cumsum(rng.standard_normal(1000))
    h, lo = c + rng.random(1000), c - rng.random(1000)
    v = rng.random(1000) * 10
    tp = pd.Series((h + lo + c) / 3)
    want = (tp * v).rolling(24).sum() / pd.Series(v).rolling(24).sum()
    np.testing.assert_allclose(batch.vwap_rolling(h, lo, c, v, 24), want.to_numpy(), rtol=1e-12)


def test_vwap_session_resets_at_utc_midnight():
    # 6h candles from 2024-01-01 12:00 UTC: two in day 1, four in day 2.
    t0 = 1_704_110_400_000
    t = t0 + np.arange(6) * 21_600_000
    h = np.array([12.0, 15.0, 30.0, 21.0, 24.0, 9.0])
    lo = np.array([6.0, 9.0, 12.0, 15.0, 18.0, 3.0])
    c = np.array([9.0, 12.0, 18.0, 18.0, 21.0, 6.0])  # typical prices 9, 12, 20, 18, 21, 6
    v = np.array([1.0, 2.0, 1.0, 1.0, 0.0, 2.0])
    got = batch.vwap_session(t, h, lo, c, v)
    want = [9.0, (9 + 24) / 3, 20.0, (20 + 18) / 2, (20 + 18) / 2, (20 + 18 + 12) / 4]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # zero volume since the session start -> NaN, not a division error
    assert np.isnan(batch.vwap_session(t, h, lo, c, np.zeros(6))).all()


@pytest.mark.shared_data
def test_vwap_session_matches_pandas_groupby_on_real_candles():
    d = _load("spot/BTCUSDT-5m")
    t, h, lo, c, v = d["open_time"], d["high"], d["low"], d["close"], d["volume"]
    day = pd.to_datetime(t, unit="ms", utc=True).normalize()
    pv = pd.Series((h + lo + c) / 3 * v)
    want = pv.groupby(day).cumsum() / pd.Series(v).groupby(day).cumsum()
    np.testing.assert_allclose(batch.vwap_session(t, h, lo, c, v), want.to_numpy(), rtol=1e-12)


@pytest.mark.shared_data
def test_rolling_volatility_matches_pandas():
    c = _load("spot/SOLUSDT-1h")["close"]
    lr = np.log(pd.Series(c)).diff()
    np.testing.assert_allclose(batch.rolling_volatility(c, 24), lr.rolling(24).std().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(
        batch.rolling_volatility(c, 24, ddof=0), lr.rolling(24).std(ddof=0).to_numpy(), rtol=1e-8
    )
    np.testing.assert_allclose(
        batch.rolling_volatility(c, 24, periods_per_year=8760),
        lr.rolling(24).std().to_numpy() * math.sqrt(8760),
        rtol=1e-8,
    )
    assert batch.rolling_volatility(np.full(30, 5.0), 10)[-1] == 0.0


def test_batch_rejects_bad_arguments():
    c = np.arange(1.0, 50.0)
    with pytest.raises(ValueError, match="differ in length"):
        batch.atr(c, c[:-1], c)
    with pytest.raises(ValueError, match="1-D"):
        batch.sma(c.reshape(7, 7), 3)
    for call in (
        lambda: batch.sma(c, 1),
        lambda: batch.ema(c, 0),
        lambda: batch.rsi(c, 1.5),
        lambda: batch.macd(c, 26, 12),
        lambda: batch.bollinger(c, 20, float("nan")),
        lambda: batch.rolling_volatility(c, 10, ddof=2),
        lambda: batch.rolling_volatility(c, 10, periods_per_year=0),
        lambda: batch.vwap_session(np.arange(49)[::-1], c, c, c, c),
    ):
        with pytest.raises(ValueError):
            call()
