"""fork_score (strategies/signals/fork_score.py): exact components and boundaries on hand-made
candles, every real-data signal recomputed from TA-Lib directly, and no look-ahead."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.base import ParamError
from strategies.engine.feed import Candles, load_csv
from strategies.signals import DetectorInput, get_detector

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
H = 3_600_000
FORK = get_detector("fork_score")


def candles(closes, pad=0.5):
    """Open = previous close; high/low = the body ± ``pad``."""
    c = np.asarray(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    t = np.arange(len(c), dtype=np.int64) * H
    return Candles.from_arrays(t, o, np.maximum(o, c) + pad, np.minimum(o, c) - pad, c, np.ones(len(c)))


DECLINE = [200.0 - k for k in range(60)]  # 200 .. 141, one point a candle: RSI 0, close below EMA


def btc_rising(n):
    return candles([100.0 + k for k in range(n)])


def last(closes, btc="rising", **params):
    c = candles(closes)
    b = btc_rising(len(c)) if btc == "rising" else btc
    sigs = FORK.detect(DetectorInput("ETH/USDT", "1h", c, b), params, all_=True)
    assert sigs[-1].time == c.time[-1]
    return sigs[-1]


def test_recovery_scores_every_component_and_the_swing_gives_the_rrr():
    s = last([*DECLINE, 153.0])  # +12: RSI = 100·12/(12+13) = 48 (avg loss 13/14, avg gain 12/14)
    assert {k: c.points for k, c in s.components.items()} == {"macd": 0.3, "rsi": 0.3, "ema": 0.2, "btc": 0.2}
    assert s.components["rsi"].value == pytest.approx(48.0, abs=1e-9)
    assert s.score == 1.0 and s.side == "long" and s.entry == 153.0
    # swing over candles 41..60: highest high 160.5 (candle 41 body 160→159), lowest low 140.5
    assert (s.take_profit, s.stop_loss) == (160.5, 140.5)
    assert s.rrr == pytest.approx(0.6) and not s.passed  # 7.5 / 12.5 < 1.5
    assert "MACD bullish cross" in s.reason and "RSI 48.0 recovering" in s.reason
    assert last([*DECLINE, 153.0], min_rrr=0.6).passed  # just holds
    assert not last([*DECLINE, 153.0], min_rrr=0.6000001).passed  # just fails


def test_rsi_boundary_is_strictly_above_oversold():
    # +7: RSI = 100·7/20 = 35; the EMA is not reclaimed (close still ~ 2.5 below it)
    s = last([*DECLINE, 148.0], rsi_oversold=35.0 - 1e-6)
    assert s.components["rsi"].value == pytest.approx(35.0, abs=1e-9)
    assert s.components["rsi"].points == 0.3 and s.components["ema"].points == 0.0
    assert s.score == pytest.approx(0.8)
    assert last([*DECLINE, 148.0], rsi_oversold=35.0 + 1e-6).components["rsi"].points == 0.0
    # oversold must have been seen in the last k candles: a 0-RSI decline is, at k = 1
    assert last([*DECLINE, 148.0], rsi_lookback=1).components["rsi"].points == 0.3


def test_min_score_boundary_and_weights():
    s = last([*DECLINE, 148.0], min_rrr=0.0)
    assert s.score == pytest.approx(0.8) and s.passed
    assert not last([*DECLINE, 148.0], min_rrr=0.0, min_score=0.81).passed
    w = last([*DECLINE, 153.0], w_macd=0.1, w_rsi=0.2, w_ema=0.3, w_btc=0.4)
    assert [c.points for c in w.components.values()] == [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(ParamError, match="weights must sum to at most 1"):
        FORK.detect(DetectorInput("X/USDT", "1h", candles(DECLINE)), {"w_macd": 0.5})
    with pytest.raises(ParamError, match="unknown parameter"):
        FORK.detect(DetectorInput("X/USDT", "1h", candles(DECLINE)), {"nope": 1})


def test_btc_condition_none_missing_and_sharp_drop_boundary():
    s = last([*DECLINE, 153.0], btc=None)
    assert math.isnan(s.components["btc"].value) and s.components["btc"].points == 0.0
    assert "no BTC candles (BTC condition 0)" in s.reason and s.score == pytest.approx(0.8)
    # BTC flat at 100 then 97 on the last candle: below its EMA, change over 4 candles −3 %
    btc = candles([100.0] * 60 + [97.0])
    assert last([*DECLINE, 153.0], btc=btc, btc_drop_pct=3.01).components["btc"].points == 0.2  # holds
    dropped = last([*DECLINE, 153.0], btc=btc, btc_drop_pct=3.0)  # −3.0000000000000027 % is a drop
    assert dropped.components["btc"].points == 0.0 and "BTC in a sharp drop (-3.00%)" in dropped.reason
    assert dropped.components["btc"].value < 0
    # BTC with no candle at the market's open time
    c = candles([*DECLINE, 153.0])
    b = Candles.from_arrays(c.time[:-1], c.open[:-1], c.high[:-1], c.low[:-1], c.close[:-1])
    s = FORK.detect(DetectorInput("ETH/USDT", "1h", c, b), all_=True)[-1]
    assert math.isnan(s.components["btc"].value) and "no BTC candle at this time" in s.reason


def test_degenerate_swing_falls_back_to_atr():
    closes = np.array([100.0 + k for k in range(60)])
    o = closes - 1.0
    c = Candles.from_arrays(np.arange(60) * H, o, closes, o, closes)  # high = close, low = open
    s = FORK.detect(DetectorInput("X/USDT", "1h", c), {"min_score": 0, "min_rrr": 0}, all_=True)[-1]
    assert s.take_profit == pytest.approx(159.0 + 3.0 * 1.0)  # TR = 1 every candle, ATR = 1
    assert s.stop_loss == 139.0  # lowest low of candles 40..59 = open of candle 40


# -- real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    btc = load_csv(BUNDLED / "BTCUSDT-1h.csv.gz")
    eth = load_csv(BUNDLED / "ETHUSDT-1h.csv.gz")
    return DetectorInput("ETH/USDT", "1h", eth, btc)


def test_every_real_signal_satisfies_its_rule(real):
    sigs = FORK.detect(real)
    assert len(sigs) > 20
    c, b = real.candles, real.btc
    assert np.array_equal(c.time, b.time)
    close = c.close
    _, _, hist = talib.MACD(close, 12, 26, 9)
    r = talib.RSI(close, 14)
    e = talib.EMA(close, 20)
    be = talib.EMA(b.close, 50)
    atr = talib.ATR(c.high, c.low, close, 14)
    hi = pd.Series(c.high).rolling(20).max().to_numpy()
    lo = pd.Series(c.low).rolling(20).min().to_numpy()
    index = {int(t): i for i, t in enumerate(c.time)}
    for s in sigs:
        i = index[s.time]
        pts = 0.3 * (hist[i] > hist[i - 1])
        pts += 0.3 * (min(r[i - 5 : i]) < 30 and r[i] > 30 and r[i] > r[i - 1])
        pts += 0.2 * (close[i] > e[i] and any(close[i - 5 : i] < e[i - 5 : i]))
        pts += 0.2 * (b.close[i] > be[i] or b.close[i] / b.close[i - 4] - 1 > -0.03)
        assert s.score == pytest.approx(pts, abs=1e-12) and s.score >= 0.6
        tp = hi[i] if hi[i] > close[i] else close[i] + 3 * atr[i]
        sl = lo[i] if lo[i] < close[i] else close[i] - 1.5 * atr[i]
        assert (s.entry, s.take_profit, s.stop_loss) == (close[i], pytest.approx(tp), pytest.approx(sl))
        assert s.rrr == pytest.approx((tp - close[i]) / (close[i] - sl)) and s.rrr >= 1.5
        assert s.passed and s.side == "long"


def cut(d: DetectorInput, n: int) -> DetectorInput:
    c = d.candles
    tr = Candles(*(getattr(c, k)[:n] for k in ("time", "open", "high", "low", "close", "volume")))
    return DetectorInput(d.symbol, d.timeframe, tr, d.btc)  # BTC's future is cut by the time match


def test_truncation_never_changes_past_signals(real):
    full = [s.to_dict() for s in FORK.detect(real, all_=True)]
    by_time = {s["time"]: s for s in full}
    for n in (300, 1234, 2900, 4000):
        part = FORK.detect(cut(real, n), all_=True)
        want = [s for s in full if s["time"] <= real.candles.time[n - 1]]
        assert json.dumps([s.to_dict() for s in part]) == json.dumps(want)
        assert json.dumps(part[-1].to_dict()) == json.dumps(by_time[int(real.candles.time[n - 1])])
    since = int(real.candles.time[4000])
    got = json.dumps([s.to_dict() for s in FORK.detect(real, since_ms=since)])
    assert got == json.dumps([s for s in full if s["time"] >= since and s["passed"]])
