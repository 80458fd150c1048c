"""``scalping``'s SMA 5/10/20 alignment: one noise-tolerant rule in the batch detector
(strategies/signals/scalping.py) and the tick path (scalping_tick.py), identical on real candles and
on flat series whose running-sum SMAs differ in the last bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strategies.engine.feed import Candles, load_csv
from strategies.indicators import batch as ind
from strategies.signals import DetectorInput, get_detector
from strategies.signals.scalping import SMA_ALIGN_TOL, sma_alignment
from strategies.signals.scalping_tick import SMA_ALIGN_TOL_INLINED, ScalpingTick

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "ohlcv" / "spot"
M5 = 300_000


def flat_candles(price: float, n: int = 60) -> Candles:
    t = np.arange(n, dtype=np.int64) * M5
    p = np.full(n, price)
    return Candles.from_arrays(t, p, p * 1.001, p * 0.999, p, np.ones(n))


def batch_alignment(cd: Candles) -> dict[int, float]:
    sigs = get_detector("scalping").detect(DetectorInput("X", "5m", cd), all_=True)
    return {s.time: s.components["sma_alignment"].value for s in sigs}


def tick_alignment(cd: Candles) -> dict[int, float]:
    """The tick path's alignment of each candle, from ticks rebuilding it (explain = the score)."""
    s = ScalpingTick()
    out = {}
    for t, o, h, lo, c, v in zip(
        *(a.tolist() for a in (cd.time, cd.open, cd.high, cd.low, cd.close, cd.volume)), strict=True
    ):
        s.tick("X", o)
        s.tick("X", h)
        s.tick("X", lo)
        s.tick("X", c, v)
        sig = s.explain("X", t, "5m")
        if sig is not None:
            out[t] = sig.components["sma_alignment"].value
        s.update("X", (t, o, h, lo, c, v))
    return out


def test_the_tick_path_inlines_the_batch_tolerance():
    assert SMA_ALIGN_TOL_INLINED == SMA_ALIGN_TOL == 1e-9


@pytest.mark.parametrize("price", [0.07, 0.1, 2.675, 0.000123, 100.0])
def test_a_flat_series_has_no_alignment_in_both_paths(price):
    c = np.full(200, price)
    f, m, s = (ind.sma(c, n) for n in (5, 10, 20))
    if price == 0.07:  # the float noise the rule absorbs: strict comparison saw a short alignment
        assert int(np.sum((f < m) & (m < s))) == 181
    a = sma_alignment(f, m, s)
    assert np.isnan(a[:19]).all() and (a[19:] == 0.0).all()
    cd = flat_candles(price)
    batch, tick = batch_alignment(cd), tick_alignment(cd)
    assert len(batch) == 60 - 34 and tick == batch
    assert set(batch.values()) == {0.0}


def test_a_rise_of_one_tick_is_an_alignment_in_both_paths():
    # 0.07 flat, then +0.00001 per candle from candle 40: a real (if tiny) up-trend
    n = 60
    p = np.r_[np.full(40, 0.07), 0.07 + 0.00001 * np.arange(1, n - 39)]
    t = np.arange(n, dtype=np.int64) * M5
    cd = Candles.from_arrays(t, p, p * 1.001, p * 0.999, p, np.ones(n))
    batch, tick = batch_alignment(cd), tick_alignment(cd)
    assert tick == batch
    assert [batch[int(x)] for x in t[34:]] == [0.0] * 6 + [1.0] * 20


def test_the_rule_at_its_boundary():
    s = np.array([100.0, 100.0, 100.0, 100.0])
    eps = 1e-9 * 100.0
    # d1 = f − m, d2 = m − s in units of eps: (3, 2), (1.5, 1.5), (−3, −2), (2.5, 0.5)
    f = np.array([100.0 + 5 * eps, 100.0 + 3 * eps, 100.0 - 5 * eps, 100.0 + 3 * eps])
    m = np.array([100.0 + 2 * eps, 100.0 + 1.5 * eps, 100.0 - 2 * eps, 100.0 + 0.5 * eps])
    assert sma_alignment(f, m, s).tolist() == [1.0, 1.0, -1.0, 0.0]


@pytest.mark.parametrize("name", ["DOGEUSDT-5m", "BTCUSDT-1m"])
def test_real_candles_same_alignment_and_score_in_both_paths(name):
    path = SHARED / f"{name}.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    cd = load_csv(path)[:4000]
    batch, tick = batch_alignment(cd), tick_alignment(cd)
    assert len(tick) == len(cd) - 34 and tick == batch
    sigs = {s.time: s for s in get_detector("scalping").detect(DetectorInput("X", "5m", cd), all_=True)}
    scorer = ScalpingTick()
    rows = zip(*(a.tolist() for a in (cd.time, cd.open, cd.high, cd.low, cd.close, cd.volume)), strict=True)
    for row in rows:
        sc = scorer.update("X", row)
        if sc is not None:
            b = sigs[row[0]]
            assert (sc.strength, sc.passed, "short" if sc.side < 0 else "long") == (b.score, b.passed, b.side)
