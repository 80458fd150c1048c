"""scalping tick path (strategies/signals/scalping_tick.py): on real Binance candles every score
equals the batch detector's (strategies/signals/scalping.py) after warm-up; ticks score the
forming candle without committing it (exact values on hand-made candles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strategies.base import ParamError
from strategies.engine.feed import Candles, load_csv
from strategies.signals import DetectorInput, get_detector
from strategies.signals.scalping import POINTS
from strategies.signals.scalping_tick import POINTS_INLINED, ScalpingTick, TickScore

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "trading" / "data" / "bundled"
SHARED = ROOT.parent / "shared" / "data" / "ohlcv" / "spot"
H = 3_600_000


def rows(cd: Candles):
    return zip(
        cd.time.tolist(),
        cd.open.tolist(),
        cd.high.tolist(),
        cd.low.tolist(),
        cd.close.tolist(),
        cd.volume.tolist(),
        strict=True,
    )


def real(path: Path) -> Candles:
    if not path.exists():
        pytest.skip(f"{path} not available")
    return load_csv(path)


@pytest.mark.parametrize(
    "path",
    [
        BUNDLED / "BTCUSDT-1h.csv.gz",
        BUNDLED / "BTCUSDT-5m.csv.gz",
        SHARED / "BTCUSDT-1m.csv.gz",
        SHARED / "DOGEUSDT-5m.csv.gz",  # tick-sized prices: SMA5 == SMA10 exactly on 13 candles
    ],
    ids=lambda p: p.name,
)
def test_every_candle_after_warm_up_equals_the_batch_detector(path):
    cd = real(path)
    batch = {s.time: s for s in get_detector("scalping").detect(DetectorInput("X", "1h", cd), all_=True)}
    scorer = ScalpingTick()
    scored, worst = 0, 0.0
    for row in rows(cd):
        sc = scorer.update("X", row)
        s = batch.get(row[0])
        assert (sc is None) == (s is None), row[0]
        if sc is None:
            continue
        scored += 1
        assert (("long" if sc.side >= 0 else "short"), sc.passed) == (s.side, s.passed), row[0]
        assert sc.entry == s.entry
        worst = max(
            worst, abs(sc.strength - s.score), abs(sc.stop_loss - s.stop_loss), abs(sc.take_profit - s.take_profit)
        )
    assert scored == len(cd) - 34  # warm-up: MACD 12/26/9 needs hist[i−1], first valid candle 34
    assert worst <= 1e-9


def test_ticks_rebuilding_each_real_candle_score_exactly_what_update_returns():
    cd = real(BUNDLED / "BTCUSDT-1h.csv.gz")
    ticked, closed = ScalpingTick(), ScalpingTick()
    for t, o, h, lo, c, v in rows(cd):
        ticked.tick("BTC/USDT", o)
        ticked.tick("BTC/USDT", h)
        ticked.tick("BTC/USDT", lo)
        last = ticked.tick("BTC/USDT", c, v)
        assert ticked.forming("BTC/USDT") == (o, h, lo, c, v)
        assert ticked.update("BTC/USDT", (t, o, h, lo, c, v)) == last
        assert closed.update("BTC/USDT", (t, o, h, lo, c, v)) == last
    assert last is not None


def flat(scorer: ScalpingTick, n: int = 40) -> None:
    """``n`` 1h candles: open = close = 100, high 100.5, low 99.5, volume 1 (ATR 1.0, RSI 0)."""
    for i in range(n):
        scorer.update("X/USDT", (i * H, 100.0, 100.5, 99.5, 100.0, 1.0))


def test_tick_scores_the_forming_candle_with_exact_values():
    s = ScalpingTick()
    flat(s)
    # forming 100/100/100/100, volume 0: RSI 0 (+0.20 long), close on the zero-width lower band
    # (+0.20 long), band width 0 (+0.15); ATR (13·1.0 + TR 0)/14.
    atr = 13.0 / 14.0
    assert s.tick("X/USDT", 100.0) == TickScore(1, 0.55, 100.0, 100.0 - 1.5 * atr, 100.0 + 3.0 * atr, False, 0.4, 0.0)
    # close 101, volume 3: SMA 100.2 > 100.1 > 100.05 (+0.30 L), momentum +1 % (+0.25 L), RSI 100
    # (+0.20 S), MACD crosses up (+0.25 L) and grows (+0.10 L), close above the upper band
    # (+0.20 S), width 0.0087 (+0.15), flow 3/22 (0), volume 3× (+0.15): 1.60 -> 1.0.
    # TR 1 -> ATR 1.0: SL 101 − 1.5, TP 101 + 3.
    assert s.tick("X/USDT", 101.0, 3.0) == TickScore(1, 1.0, 101.0, 99.5, 104.0, True, 0.9, 0.4)
    assert s.forming("X/USDT") == (100.0, 101.0, 100.0, 101.0, 3.0)
    third = s.tick("X/USDT", 99.0, 2.0)  # volume adds up: 5; high stays 101, low 99
    assert s.forming("X/USDT") == (100.0, 101.0, 99.0, 99.0, 5.0)
    # the batch detector on the same 41 candles scores the forming candle the same
    c = np.array([100.0] * 40 + [99.0])
    o = np.array([100.0] * 41)
    cd = Candles.from_arrays(
        np.arange(41) * H, o, np.r_[[100.5] * 40, 101.0], np.r_[[99.5] * 40, 99.0], c, np.r_[[1.0] * 40, 5.0]
    )
    b = get_detector("scalping").detect(DetectorInput("X/USDT", "1h", cd), all_=True)[-1]
    assert (b.side, b.score, b.stop_loss, b.take_profit, b.passed) == (
        "short",
        third.strength,
        third.stop_loss,
        third.take_profit,
        third.passed,
    )
    assert third.side == -1


def test_ticks_change_nothing_but_the_forming_candle():
    ticked, plain = ScalpingTick(), ScalpingTick()
    flat(ticked)
    flat(plain)
    for price in (100.0, 103.0, 97.0, 101.0):
        ticked.tick("X/USDT", price, 7.0)
    closed = (40 * H, 100.0, 100.7, 99.9, 100.4, 2.0)  # the exchange's candle replaces the ticks
    assert ticked.update("X/USDT", closed) == plain.update("X/USDT", closed)
    assert ticked.forming("X/USDT") is None
    assert ticked.tick("X/USDT", 100.2, 1.0) == plain.tick("X/USDT", 100.2, 1.0)


def test_warm_up_and_bad_input():
    s = ScalpingTick()
    assert s.tick("X/USDT", 100.0) is None  # unknown symbol: the forming candle starts, no score
    flat(s, 34)
    assert s.tick("X/USDT", 100.0) is not None  # candle 34 is the first valid one
    with pytest.raises(ValueError, match="not after"):
        s.update("X/USDT", (33 * H, 100.0, 100.0, 100.0, 100.0, 1.0))
    with pytest.raises(ValueError, match="non-finite"):
        s.update("X/USDT", (34 * H, 100.0, float("nan"), 100.0, 100.0, 1.0))
    with pytest.raises(ParamError):
        ScalpingTick({"sma_fast": 30})


@pytest.mark.parametrize(
    "p",
    [
        {"sl_pct": 1.0, "tp_pct": 3.0, "min_strength": 0.5, "rsi_period": 40, "flow_candles": 1},
        {"atr_period": 50, "volume_candles": 3, "sma_slow": 30, "bb_period": 40, "momentum_candles": 45},
    ],
)
def test_params_are_the_batch_detectors(p):
    # RSI / ATR seeded on the first valid candle, a 1-candle order-flow window, windows > MACD's
    cd = load_csv(BUNDLED / "ETHUSDT-1h.csv.gz")
    batch = {s.time: s for s in get_detector("scalping").detect(DetectorInput("X", "1h", cd), p, all_=True)}
    s = ScalpingTick(p)
    got = {r[0]: s.update("X", r) for r in rows(cd)}
    got = {t: sc for t, sc in got.items() if sc is not None}
    assert got.keys() == batch.keys()
    for t, sc in got.items():
        b = batch[t]
        assert (sc.passed, sc.strength, sc.stop_loss, sc.take_profit) == pytest.approx(
            (b.passed, b.score, b.stop_loss, b.take_profit), abs=1e-9
        )


def test_inlined_points_are_the_batch_points():
    assert POINTS_INLINED == POINTS


def test_explain_gives_the_batch_signal_with_its_reason():
    cd = real(BUNDLED / "BTCUSDT-1h.csv.gz")
    batch = {s.time: s for s in get_detector("scalping").detect(DetectorInput("BTC/USDT", "1h", cd), all_=True)}
    s = ScalpingTick()
    assert s.explain("BTC/USDT", 0, "1h") is None
    compared = 0
    for i, (t, o, h, lo, c, v) in enumerate(rows(cd)):
        s.tick("BTC/USDT", o)
        s.tick("BTC/USDT", h)
        s.tick("BTC/USDT", lo)
        s.tick("BTC/USDT", c, v)
        if i % 7 == 0 and t in batch:  # a sample of candles, passing and not
            got, want = s.explain("BTC/USDT", t, "1h"), batch[t]
            assert (got.time, got.side, got.entry, got.passed, got.reason) == (
                want.time,
                want.side,
                want.entry,
                want.passed,
                want.reason,
            )
            assert got.score == pytest.approx(want.score, abs=1e-12)
            assert (got.stop_loss, got.take_profit) == pytest.approx((want.stop_loss, want.take_profit), rel=1e-12)
            assert got.components.keys() == want.components.keys()
            for name, comp in got.components.items():
                assert comp.points == want.components[name].points, name
                assert comp.value == pytest.approx(want.components[name].value, rel=1e-9, abs=1e-12, nan_ok=True)
            compared += 1
        s.update("BTC/USDT", (t, o, h, lo, c, v))
    assert compared == 613
