"""The ``swing`` detector (issue 11 §2): boundaries on hand-made candles, exact exits, real
bundled candles recomputed independently, and no look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strategies.engine.feed import Candles, load_csv
from strategies.signals import DetectorInput, get_detector

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
H = 3_600_000
SWING = get_detector("swing")


def _breakout(close: float, volume: float) -> Candles:
    """22 hourly candles: index 0 has high 105 and volume 1000 (just outside the 20-candle
    window of the last one), indexes 1..20 high 100 / close 99 / volume 10, and the last
    candle closes at ``close`` (its own high 110, excluded from the resistance) on ``volume``."""
    closes = [99.0] * 21 + [close]
    highs = [105.0] + [100.0] * 20 + [110.0]
    lows = [98.0] * 22
    vols = [1000.0] + [10.0] * 20 + [volume]
    return Candles.from_arrays(np.arange(22) * H, closes, highs, lows, closes, vols)


def _run(candles, params=None, **kw):
    return SWING.detect(DetectorInput("BTC/USDT", "1h", candles), params, **kw)


def test_breakout_at_the_volume_threshold_holds_with_exact_exits():
    (s,) = _run(_breakout(102.0, 20.0))
    assert (s.time, s.side, s.entry, s.passed) == (21 * H, "long", 102.0, True)
    assert s.extra["resistance"] == 100.0 and s.extra["volume_ratio"] == 2.0
    assert s.extra["trailing_stop_pct"] == 7.0 and s.extra["order_type"] == "market"
    assert s.take_profit == 102.0 * 1.15 and s.stop_loss == 102.0 * 0.95
    assert s.rrr == pytest.approx(3.0, rel=1e-12)
    # setup 0.40 + breakout 0.30 (2 % above, full) + volume 0 (exactly 2x)
    assert [c.points for c in s.components.values()] == [0.4, 0.3, 0.0]
    assert s.score == 0.4 + 0.3 + 0.0


def test_volume_just_under_2x_fails():
    assert _run(_breakout(102.0, 19.99)) == []
    (s,) = _run(_breakout(102.0, 19.99), all_=True, since_ms=21 * H)
    assert s.passed is False and s.score == 0.0 and "volume 2.0x (needs >= 2x)" in s.reason


def test_close_at_resistance_is_no_breakout():
    assert _run(_breakout(100.0, 50.0)) == []
    assert len(_run(_breakout(float(np.nextafter(100.0, 200)), 80.0), {"min_confidence": 0.7})) == 1


def test_window_excludes_the_current_candle_and_older_than_n():
    # with N = 21 the window reaches index 0: resistance 105, average volume 57.14
    assert _run(_breakout(102.0, 20.0), {"lookback": 21}) == []


def test_confidence_from_breakout_strength_and_volume():
    (s,) = _run(_breakout(101.0, 30.0), {"min_confidence": 0})
    assert s.components["breakout"].value == pytest.approx(1.0, rel=1e-12)
    assert s.components["volume"].value == 3.0 and s.components["volume"].points == 0.3 * 0.5
    assert s.score == pytest.approx(0.4 + 0.15 + 0.15, rel=1e-12)
    score = s.score
    assert len(_run(_breakout(101.0, 30.0), {"min_confidence": score})) == 1
    assert _run(_breakout(101.0, 30.0), {"min_confidence": float(np.nextafter(score, 1))}) == []
    (weak,) = _run(_breakout(100.5, 20.0), all_=True, since_ms=21 * H)  # 0.4 + 0.075 + 0 < 0.65
    assert weak.passed is False and "confidence 0.47 < 0.65" in weak.reason


def test_schema_defaults_are_the_seed():
    assert {p["name"]: p["default"] for p in SWING.schema()} == {
        "lookback": 20,
        "volume_mult": 2.0,
        "take_profit_pct": 15.0,
        "stop_loss_pct": 5.0,
        "trailing_stop_pct": 7.0,
        "min_confidence": 0.65,
    }


def _expected(c, n=20):
    out = []
    for i in range(n, len(c)):
        res = max(c.high[i - n : i])
        avg = sum(c.volume[i - n : i]) / n
        if avg > 0 and c.close[i] > res and c.volume[i] / avg >= 2:
            conf = 0.4 + 0.3 * min(1, (c.close[i] / res - 1) * 50) + 0.3 * min(1, (c.volume[i] / avg - 2) / 2)
            if conf >= 0.65:
                out.append((int(c.time[i]), conf))
    return out


@pytest.mark.parametrize("name", ["BTCUSDT-1h", "SOLUSDT-1h", "ETHUSDT-1h", "BTCUSDT-5m"])
def test_real_data_every_signal_satisfies_the_rule_recomputed(name):
    c = load_csv(BUNDLED / f"{name}.csv.gz")
    sigs = SWING.detect(DetectorInput("X", name.split("-")[1], c))
    assert [(s.time, s.score) for s in sigs] == [(t, pytest.approx(x, abs=1e-12)) for t, x in _expected(c)]
    assert len(sigs) >= 3
    for s in sigs:
        assert s.take_profit == pytest.approx(s.entry * 1.15) and s.stop_loss == pytest.approx(s.entry * 0.95)


@pytest.mark.parametrize("name", ["BTCUSDT-1h", "SOLUSDT-1h"])
def test_real_data_truncation_changes_no_signal(name):
    c = load_csv(BUNDLED / f"{name}.csv.gz")
    full = [s.to_dict() for s in SWING.detect(DetectorInput("X", "1h", c), all_=True)]
    for cut in (21, 500, 1999, 3500, len(c) - 1):
        part = [s.to_dict() for s in SWING.detect(DetectorInput("X", "1h", c[:cut]), all_=True)]
        assert part == [d for d in full if d["time"] < int(c.time[cut])]
