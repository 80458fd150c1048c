"""The ``dca_detector`` detector (issue 11 §2): boundaries on hand-made candles, the grid's
exact prices, real bundled candles recomputed independently, and no look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib

from strategies.base import ParamError
from strategies.engine.feed import Candles, load_csv
from strategies.signals import DetectorInput, get_detector
from strategies.signals.dca_detector import grid_levels, lookback_candles

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
H = 3_600_000
DCA = get_detector("dca_detector")


def _dip(last_close: float) -> Candles:
    """20 hourly doji candles falling 1 a candle to 100 at index 16, then 99, 98, and a last
    candle opening at 98 and closing at ``last_close``. The 4-candle high at the last candle is
    100 (index 16); index 15 (high 101) is just outside the window. RSI(14) is 0 (only losses)."""
    closes = [116.0 - i for i in range(17)] + [99.0, 98.0, last_close]
    opens = closes[:-1] + [98.0]
    highs = [max(o, c) for o, c in zip(opens, closes, strict=True)]
    lows = [min(o, c) for o, c in zip(opens, closes, strict=True)]
    return Candles.from_arrays([i * H for i in range(20)], opens, highs, lows, closes, [10.0] * 20)


def _run(candles, params=None, **kw):
    return DCA.detect(DetectorInput("SOL/USDT", "1h", candles), params, **kw)


def test_lookback_is_four_hours_in_candles():
    assert [lookback_candles(4, tf) for tf in ("5m", "15m", "1h", "4h", "1d")] == [48, 16, 4, 1, 1]


def test_drop_of_exactly_5_pct_holds_and_the_grid_has_exact_prices():
    (s,) = _run(_dip(95.0))
    assert (s.time, s.side, s.entry, s.passed) == (19 * H, "long", 95.0, True)
    assert s.components["drop"].value == 5.0 and s.components["rsi"].value == 0.0
    assert s.extra["high"] == 100.0 and s.extra["lookback_candles"] == 4
    prices = [g["price"] for g in s.extra["grid"]]
    assert prices == pytest.approx([95.0, 94.05, 93.1, 92.15, 91.2], rel=1e-15)
    assert [g["weight"] for g in s.extra["grid"]] == [0.2] * 5
    avg = 5 / sum(1 / p for p in (95.0, 94.05, 93.1, 92.15, 91.2))  # equal quote per level
    assert s.extra["average_entry"] == pytest.approx(avg, rel=1e-15)
    assert s.take_profit == pytest.approx(avg * 1.10, rel=1e-15)
    assert s.stop_loss == pytest.approx(avg * 0.92, rel=1e-15)
    assert s.rrr == pytest.approx(1.25, rel=1e-12)
    # setup 0.30 + drop 0 (at the threshold) + RSI 0.35 (30 points below 30, capped)
    assert (s.components["setup"].points, s.components["drop"].points, s.components["rsi"].points) == (0.3, 0.0, 0.35)
    assert s.score == 0.3 + 0.0 + 0.35


def test_drop_just_short_of_5_pct_fails():
    assert _run(_dip(95.01)) == []
    (s,) = _run(_dip(95.01), all_=True)[-1:]
    assert s.passed is False and s.score == 0.0 and s.reason.startswith("no dip: drop 4.99%")


def test_a_high_just_outside_the_window_does_not_count():
    # 95.5 is 4.5 % below the 4-candle high 100, 5.45 % below the 5-candle high 101 (index 15)
    assert _run(_dip(95.5)) == []
    (s,) = _run(_dip(95.5), {"lookback_hours": 5})
    assert s.extra["high"] == 101.0


def test_rsi_must_be_strictly_below_the_threshold():
    rng = np.random.default_rng(7)
    closes = 100 + np.cumsum(rng.normal(0, 1, 40))
    closes[-1] = closes[-5:-1].max() * 0.94  # a 6 % drop below the 4-candle high (closes are highs here)
    c = Candles.from_arrays(np.arange(40) * H, closes, closes, closes, closes, np.ones(40))
    r = float(talib.RSI(closes, 14)[-1])
    assert 0 < r < 100
    assert _run(c, {"rsi_max": r}, since_ms=39 * H) == []
    (s,) = _run(c, {"rsi_max": float(np.nextafter(r, 200)), "min_confidence": 0}, since_ms=39 * H)
    assert s.components["rsi"].value == r


def test_min_confidence_boundary_and_all_lists_the_failures():
    score = 0.3 + 0.0 + 0.35
    assert len(_run(_dip(95.0), {"min_confidence": score})) == 1
    assert _run(_dip(95.0), {"min_confidence": float(np.nextafter(score, 1))}) == []
    (s,) = _run(_dip(95.0), {"min_confidence": float(np.nextafter(score, 1))}, all_=True, since_ms=19 * H)
    assert s.passed is False and "confidence 0.65 < 0.65" in s.reason


def test_bad_params_are_refused():
    with pytest.raises(ParamError) as exc:
        _run(_dip(95.0), {"drop_pct": -1, "nope": 1})
    assert set(exc.value.errors) == {"drop_pct", "nope"}
    assert [p["name"] for p in DCA.schema()][:2] == ["lookback_hours", "drop_pct"]
    assert {p["name"]: p["default"] for p in DCA.schema()} == {
        "lookback_hours": 4.0,
        "drop_pct": 5.0,
        "rsi_period": 14,
        "rsi_max": 30.0,
        "grid_levels": 5,
        "grid_step_pct": 1.0,
        "take_profit_pct": 10.0,
        "stop_loss_pct": 8.0,
        "min_confidence": 0.6,
    }


def test_grid_levels_helper():
    grid, avg = grid_levels(200.0, 2, 1.0)
    assert grid == [{"price": 200.0, "weight": 0.5}, {"price": 198.0, "weight": 0.5}]
    assert avg == 2 / (1 / 200 + 1 / 198)


@pytest.mark.parametrize("name", ["SOLUSDT-1h", "DOGEUSDT-1h", "ETHUSDT-1h", "BTCUSDT-5m"])
def test_real_data_every_signal_satisfies_the_rule_recomputed(name):
    c = load_csv(BUNDLED / f"{name}.csv.gz")
    tf = name.split("-")[1]
    n = {"1h": 4, "5m": 48}[tf]
    sigs = DCA.detect(DetectorInput("X", tf, c))
    r = talib.RSI(c.close, timeperiod=14)
    expected = []
    for i in range(n - 1, len(c)):
        hh = max(c.high[i - n + 1 : i + 1])
        drop = (hh - c.close[i]) / hh * 100
        if drop >= 5 and r[i] < 30:
            conf = 0.3 + 0.35 * min(1, (drop - 5) / 5) + 0.35 * min(1, (30 - r[i]) / 20)
            if conf >= 0.6:
                expected.append((int(c.time[i]), conf))
    assert [(s.time, s.score) for s in sigs] == [(t, pytest.approx(x, abs=1e-12)) for t, x in expected]
    for s in sigs:
        avg = 5 / sum(1 / (s.entry * (1 - k / 100)) for k in range(5))
        assert s.take_profit == pytest.approx(avg * 1.1) and s.stop_loss == pytest.approx(avg * 0.92)
    if tf == "1h":
        assert len(sigs) >= 5


@pytest.mark.parametrize("name", ["SOLUSDT-1h", "DOGEUSDT-1h"])
def test_real_data_truncation_changes_no_signal(name):
    c = load_csv(BUNDLED / f"{name}.csv.gz")
    full = [s.to_dict() for s in DCA.detect(DetectorInput("X", "1h", c), all_=True)]
    for cut in (100, 777, 2000, 3333, len(c) - 1):
        part = [s.to_dict() for s in DCA.detect(DetectorInput("X", "1h", c[:cut]), all_=True)]
        assert part == [d for d in full if d["time"] < int(c.time[cut])]
    # since_ms only filters: the newest candle alone equals the full run's last row
    (last,) = DCA.detect(DetectorInput("X", "1h", c), all_=True, since_ms=int(c.time[-1]))
    assert last.to_dict() == full[-1]
