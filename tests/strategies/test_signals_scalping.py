"""scalping (strategies/signals/scalping.py): exact component points at each threshold's
boundary on hand-made candles, every real-data signal recomputed from TA-Lib, no look-ahead."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.base import ParamError
from strategies.engine.feed import Candles, load_csv
from strategies.signals import DetectorInput, get_detector
from strategies.signals._paramcheck import validate
from strategies.signals.scalping import PARAMS, scalping_arrays

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
H = 3_600_000
SCALP = get_detector("scalping")
P = validate(PARAMS, {})


def arrays(closes, opens=None, volumes=None):
    c = np.asarray(closes, dtype=float)
    o = np.asarray(opens, dtype=float) if opens is not None else np.concatenate([[c[0]], c[:-1]])
    v = np.ones(len(c)) if volumes is None else np.asarray(volumes, dtype=float)
    cd = Candles.from_arrays(np.arange(len(c)) * H, o, np.maximum(o, c) + 0.5, np.minimum(o, c) - 0.5, c, v)
    return scalping_arrays(DetectorInput("X/USDT", "1h", cd), P)


def at_last(a, name):
    return a[f"{name}_value"][-1], a[f"{name}_points"][-1], int(a[f"{name}_vote"][-1])


@pytest.mark.parametrize(("last", "points", "vote"), [(100.11, 0.25, 1), (100.09, 0.0, 0), (99.89, 0.25, -1)])
def test_momentum_beyond_a_tenth_of_a_percent(last, points, vote):
    _, pts, v = at_last(arrays([100.0] * 40 + [last]), "momentum")
    assert (pts, v) == (points, vote)


@pytest.mark.parametrize(("vol", "points"), [(1.51, 0.15), (1.5, 0.0)])
def test_volume_above_one_and_a_half_times_its_mean(vol, points):
    value, pts, v = at_last(arrays([100.0] * 41, volumes=[1.0] * 40 + [vol]), "volume")
    assert (value, pts, v) == (vol, points, 0)


@pytest.mark.parametrize(("up", "points", "vote"), [(13.0, 0.0, 0), (13.01, 0.2, 1)])
def test_order_flow_imbalance_beyond_0_3(up, points, vote):
    # last 20 candles: 10 up (volume up/10 each) and 10 down (volume 7/10 each): (up − 7)/(up + 7)
    closes = [100.0 + (k % 2) for k in range(40)]
    opens = [c - 0.5 if k % 2 else c + 0.5 for k, c in enumerate(closes)]
    vols = [up / 10 if k % 2 else 0.7 for k in range(40)]
    value, pts, v = at_last(arrays(closes, opens, vols), "order_flow")
    assert value == pytest.approx((up - 7.0) / (up + 7.0)) and (pts, v) == (points, vote)


def test_flat_market_scores_narrow_bands_and_neutral_nothing_else():
    a = arrays([100.0 + 0.01 * (k % 2) for k in range(60)])
    assert at_last(a, "band_width")[1:] == (0.15, 0)  # width ~ 0.0002 < 0.02
    assert at_last(a, "sma_alignment")[1] == 0.0 and at_last(a, "momentum")[1] == 0.0


def test_rising_series_aligns_smas_and_rsi_overbought_votes_short():
    a = arrays([100.0 + k for k in range(60)])
    assert at_last(a, "sma_alignment") == (1.0, 0.3, 1)
    assert at_last(a, "rsi")[1:] == (0.2, -1)  # RSI 100 > 70: overbought votes short
    assert at_last(a, "momentum")[1:] == (0.25, 1)
    # closes 140..159: population std sqrt(399/12), width 4·std / 149.5 ≈ 0.154 > 0.08
    assert at_last(a, "band_width") == (pytest.approx(4 * (399 / 12) ** 0.5 / 149.5), -0.1, 0)
    assert at_last(a, "order_flow") == (1.0, 0.2, 1)  # every candle up
    assert a["long"][-1] == pytest.approx(0.75) and a["short"][-1] == pytest.approx(0.2)
    assert a["side"][-1] == 1


def test_params_are_validated():
    d = DetectorInput("X/USDT", "1h", Candles.from_arrays([0], [1], [1], [1], [1]))
    with pytest.raises(ParamError, match="sma_fast < sma_mid < sma_slow"):
        SCALP.detect(d, {"sma_mid": 30})


# -- real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    return DetectorInput("BTC/USDT", "1h", load_csv(BUNDLED / "BTCUSDT-1h.csv.gz"))


def test_every_real_signal_satisfies_the_seed_score(real):
    sigs = SCALP.detect(real)
    assert len(sigs) > 100 and {s.side for s in sigs} == {"long", "short"}
    c = real.candles
    close, v = c.close, c.volume
    s5, s10, s20 = (talib.SMA(close, n) for n in (5, 10, 20))
    r = talib.RSI(close, 14)
    _, _, hist = talib.MACD(close, 12, 26, 9)
    up, mid, lo = talib.BBANDS(close, 20, 2, 2, 0)
    atr = talib.ATR(c.high, c.low, close, 14)
    signed = np.sign(close - c.open) * v
    flow = pd.Series(signed).rolling(20).sum().to_numpy() / pd.Series(v).rolling(20).sum().to_numpy()
    vmean = pd.Series(v).rolling(20).mean().shift(1).to_numpy()
    index = {int(t): i for i, t in enumerate(c.time)}
    for s in sigs:
        i = index[s.time]
        votes = []  # (points, +1 long / −1 short / 0)
        if s5[i] > s10[i] > s20[i] or s5[i] < s10[i] < s20[i]:
            votes.append((0.30, 1 if s5[i] > s10[i] else -1))
        m = (close[i] / close[i - 5] - 1) * 100
        if abs(m) > 0.1:
            votes.append((0.25, 1 if m > 0 else -1))
        if r[i] < 30 or r[i] > 70:
            votes.append((0.20, 1 if r[i] < 30 else -1))
        elif 40 < r[i] < 60:
            votes.append((-0.10, 0))
        if (hist[i - 1] <= 0 < hist[i]) or (hist[i - 1] >= 0 > hist[i]):
            votes.append((0.25, 1 if hist[i] > 0 else -1))
        if abs(hist[i]) > abs(hist[i - 1]):
            votes.append((0.10, int(np.sign(hist[i]))))
        if close[i] <= lo[i] or close[i] >= up[i]:
            votes.append((0.20, 1 if close[i] <= lo[i] else -1))
        w = (up[i] - lo[i]) / mid[i]
        votes.append((0.15 if w < 0.02 else -0.10 if w > 0.08 else 0.0, 0))
        if abs(flow[i]) > 0.3:
            votes.append((0.20, 1 if flow[i] > 0 else -1))
        if v[i] > 1.5 * vmean[i]:
            votes.append((0.15, 0))
        total = sum(p for p, _ in votes)
        longs = sum(p for p, d in votes if d > 0)
        shorts = sum(p for p, d in votes if d < 0)
        assert s.score == pytest.approx(min(max(total, 0), 1), abs=1e-9) and s.score >= 0.65
        assert s.side == ("long" if longs > shorts else "short") and longs != pytest.approx(shorts)
        sign = 1 if s.side == "long" else -1
        assert s.entry == close[i]
        assert s.stop_loss == pytest.approx(close[i] - sign * 1.5 * atr[i])
        assert s.take_profit == pytest.approx(close[i] + sign * 3.0 * atr[i])
        assert s.rrr == pytest.approx(2.0) and s.passed


def test_fixed_percent_exits(real):
    s = SCALP.detect(real, {"sl_pct": 1.0, "tp_pct": 3.0})[-1]
    sign = 1 if s.side == "long" else -1
    assert s.stop_loss == pytest.approx(s.entry * (1 - sign * 0.01))
    assert s.take_profit == pytest.approx(s.entry * (1 + sign * 0.03)) and s.rrr == pytest.approx(3.0)


def test_truncation_never_changes_past_signals(real):
    full = [s.to_dict() for s in SCALP.detect(real, all_=True)]
    by_time = {s["time"]: s for s in full}
    c = real.candles
    for n in (200, 1777, 3500):
        cut = Candles(*(getattr(c, k)[:n] for k in ("time", "open", "high", "low", "close", "volume")))
        part = SCALP.detect(DetectorInput("BTC/USDT", "1h", cut), all_=True)
        want = [s for s in full if s["time"] <= c.time[n - 1]]
        assert json.dumps([s.to_dict() for s in part]) == json.dumps(want)
        assert json.dumps(part[-1].to_dict()) == json.dumps(by_time[int(c.time[n - 1])])
