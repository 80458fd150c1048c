"""Labels: exact triple-barrier outcomes on hand-made candles; deal labels of real Smart DCA and
swing backtests (bundled Binance candles) checked against the engine's deal records."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlops.core.labels import (
    LabelSet,
    detector_labels,
    simulate,
    size_multiplier_target,
    smart_dca_labels,
    triple_barrier,
    triple_barrier_labelset,
)
from strategies.engine import Feed, load_csv
from strategies.engine.testing import T0, make_candles
from tests.mlops.conftest import DCA_LADDER

H = 3_600_000
BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
# (high, low, close); entry at each close, TP +2 %, SL -1 %, 3 candles
ROWS = [
    (100.0, 100.0, 100.0),  # 0: TP at candle 2 (102.5 >= 102)
    (101.0, 99.5, 100.5),  # 1: TP at candle 3 (103 >= 102.51)
    (102.5, 100.0, 102.0),  # 2: SL at candle 3 (100.5 <= 100.98)
    (103.0, 100.5, 101.0),  # 3: SL at candle 4 (99.8 <= 99.99)
    (101.5, 99.8, 100.0),  # 4: candle 5 touches TP 102 and SL 99 -> SL
    (102.5, 98.5, 99.0),  # 5: time-out after 3 candles, exit close 99.5
    (100.0, 99.0, 99.5),  # 6..8: unknown (data ends)
    (99.6, 99.4, 99.5),
    (99.6, 99.4, 99.5),
]


def _tb(side="long"):
    a = np.array(ROWS)
    return triple_barrier(a[:, 0], a[:, 1], a[:, 2], tp_pct=2.0, sl_pct=1.0, horizon=3, side=side)


def test_triple_barrier_long_tp_first_sl_first_both_in_one_candle_timeout_and_unknown():
    tb = _tb()
    assert tb.label.tolist() == [1, 1, 0, 0, 0, 0, -1, -1, -1]
    assert tb.barrier.tolist() == [1, 1, -1, -1, -1, 0, -2, -2, -2]
    assert tb.hold.tolist() == [2, 2, 1, 1, 1, 3, -1, -1, -1]
    assert tb.ret_pct[:5].tolist() == [2.0, 2.0, -1.0, -1.0, -1.0]
    assert tb.ret_pct[5] == pytest.approx((99.5 / 99.0 - 1) * 100, abs=1e-12)
    assert np.isnan(tb.ret_pct[6:]).all() and np.isnan(tb.mfe_pct[6:]).all()
    assert tb.mfe_pct[0] == pytest.approx(2.5, abs=1e-12) and tb.mae_pct[0] == pytest.approx(0.5, abs=1e-12)
    assert tb.mfe_pct[1] == pytest.approx((103 / 100.5 - 1) * 100, abs=1e-12)
    assert tb.mae_pct[1] == pytest.approx((1 - 100 / 100.5) * 100, abs=1e-12)
    # both barriers in candle 5: conservative SL, and the candle's extremes are in MFE / MAE
    assert tb.mfe_pct[4] == pytest.approx(2.5, abs=1e-12) and tb.mae_pct[4] == pytest.approx(1.5, abs=1e-12)
    # time-out: best 100/99, worst never below the entry -> 0
    assert tb.mfe_pct[5] == pytest.approx((100 / 99 - 1) * 100, abs=1e-12) and tb.mae_pct[5] == 0.0


def test_triple_barrier_short_is_mirrored():
    tb = _tb("short")
    # row 2 short from 102: TP 99.96 touched at candle 4 (low 99.8), SL 104.04 never
    assert (tb.label[2], tb.barrier[2], tb.hold[2], tb.ret_pct[2]) == (1, 1, 2, 2.0)
    assert tb.mfe_pct[2] == pytest.approx((1 - 99.8 / 102) * 100, abs=1e-12)
    assert tb.mae_pct[2] == pytest.approx((103 / 102 - 1) * 100, abs=1e-12)
    # row 0 short from 100: SL 101 touched at candle 1 (high 101)
    assert (tb.label[0], tb.barrier[0], tb.hold[0], tb.ret_pct[0]) == (0, -1, 1, -1.0)


def test_triple_barrier_labelset_drops_unknown_and_gives_horizons():
    ls = triple_barrier_labelset(
        "BTC/USDT", make_candles([(r[2], r[0], r[1], r[2]) for r in ROWS]), tp_pct=2, sl_pct=1, horizon=3
    )
    assert len(ls) == 6 and ls.symbol.tolist() == ["BTC/USDT"] * 6
    assert (ls.time - T0).tolist() == [0, H, 2 * H, 3 * H, 4 * H, 5 * H]
    assert ls.horizon_ms.tolist() == [2 * H, 2 * H, H, H, H, 3 * H]
    assert ls.labels["success"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_triple_barrier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        triple_barrier([1.0], [1.0], [1.0], tp_pct=1, sl_pct=1, horizon=0)
    with pytest.raises(ValueError, match="tp_pct and sl_pct must be > 0"):
        triple_barrier([1.0], [1.0], [1.0], tp_pct=0, sl_pct=1, horizon=1)


def test_size_multiplier_target_exact():
    out = size_multiplier_target(np.array([-2.0, 0.0, 1.0, 0.5, -0.1]), np.array([2.0, 1.0, 0.2, 1.0, 0.1]))
    # R = -1 -> 0.5; 0 -> 1.0; 1/0.5 (floor) = 2 -> 2.0 clipped 1.5; 0.5 -> 1.25; -0.1/0.5 -> 0.9
    assert out.tolist() == pytest.approx([0.5, 1.0, 1.5, 1.25, 0.9], abs=1e-12)


@pytest.fixture(scope="module")
def feed():
    syms = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.split('/')[0]}USDT-1h.csv.gz") for s in syms})


DCA = dict(
    **DCA_LADDER,
    max_active_deals=2,
    stop_loss=4,
)


@pytest.fixture(scope="module")
def dca_run(feed):
    t = feed.candles("ETH/USDT").time
    res = simulate("smart_dca", DCA, feed, ["ETH/USDT", "SOL/USDT"], start_ms=int(t[200]), end_ms=int(t[2400]))
    return res, smart_dca_labels(res, feed, DCA, drawdown_pct=3.0, recovery_hours=24)


def test_smart_dca_entry_labels_match_the_deal_records(dca_run, feed):
    res, labels = dca_run
    conf, spend = labels["confidence"], labels["dca_spend"]
    assert len(conf) == len(res.trades) == 361
    assert int(conf.labels["confidence"].sum()) == sum(t.exit_reason == "take_profit" for t in res.trades) == 322
    max_spend = 50 + 50 * (1 + 1.4 + 1.4**2 + 1.4**3)  # base + the 3Commas safety-order ladder = 405.3
    for tr in res.trades[:40]:
        c = feed.candles(tr.symbol)
        t0 = int(c.time[np.searchsorted(c.time, tr.opened_at) - 1])  # the candle that decided the base order
        (row,) = np.flatnonzero((conf.symbol == tr.symbol) & (conf.time == t0))
        assert conf.labels["confidence"][row] == (1.0 if tr.exit_reason == "take_profit" else 0.0)
        assert conf.horizon_ms[row] == tr.closed_at - t0
        # dca_spend: a row at the candle of every entry fill before the closing candle
        b = int(np.searchsorted(c.time, tr.closed_at, side="right")) - 1
        fill_candles = sorted(
            {
                int(c.time[np.searchsorted(c.time, f.time, side="right") - 1])
                for f in res.fills
                if f.deal_id == tr.deal_id and f.side == "buy"
            }
        )
        rows = np.flatnonzero((spend.symbol == tr.symbol) & (spend.time >= t0) & (spend.time < c.time[b]))
        assert spend.time[rows].tolist() == [t for t in fill_candles if t < c.time[b]]
        assert spend.labels["dca_spend"][rows] == pytest.approx([tr.cost / max_spend] * len(rows), rel=1e-12)
        assert (spend.horizon_ms[rows] == c.time[b] - spend.time[rows]).all()
    with_sos = [t for t in res.trades if t.safety_orders_filled == 3]
    assert with_sos and all(spend.labels["dca_spend"].max() >= t.cost / 405.3 - 1e-12 for t in with_sos)


def test_smart_dca_drawdown_labels_checked_independently_on_candles_and_fills(dca_run, feed):
    res, labels = dca_run
    rec, safu = labels["recovery_odds"], labels["safu_exit"]
    assert len(rec) == len(safu) == 64
    assert (int(rec.labels["recovery_odds"].sum()), int(safu.labels["safu_exit"].sum())) == (21, 38)
    assert (rec.labels["drawdown_pct"] <= -3.0).all()
    for row in range(0, 64, 7):
        sym, t = rec.symbol[row], int(rec.time[row])
        c = feed.candles(sym)
        i = int(np.searchsorted(c.time, t))
        (tr,) = [d for d in res.trades if d.symbol == sym and d.opened_at <= t < d.closed_at]
        fills = [f for f in res.fills if f.deal_id == tr.deal_id]

        def avg_after(ms, fills=fills):
            buys = [f for f in fills if f.side == "buy" and f.time <= ms]
            return sum(f.price * f.amount for f in buys) / sum(f.amount for f in buys)

        avg = avg_after(t)
        assert rec.labels["drawdown_pct"][row] == pytest.approx((c.close[i] / avg - 1) * 100, rel=1e-9)
        b = int(np.searchsorted(c.time, tr.closed_at))
        window = range(i + 1, min(i + 24, b) + 1)
        recovered = any(c.high[j] >= avg_after(int(c.time[j - 1])) for j in window)
        assert rec.labels["recovery_odds"][row] == float(recovered)
        assert rec.horizon_ms[row] == int(c.time[min(i + 24, b)]) - t
        done = [f for f in fills if f.time <= t]  # a stop loss can fill in part before the deal closes
        held = sum(f.amount if f.side == "buy" else -f.amount for f in done)
        flow = sum(-f.price * f.amount if f.side == "buy" else f.price * f.amount for f in done)
        pnl_now = held * c.close[i] + flow - sum(f.fee for f in done)
        assert safu.labels["pnl_now"][row] == pytest.approx(pnl_now, rel=1e-9)
        assert safu.labels["safu_exit"][row] == float(pnl_now > tr.pnl)
        assert safu.horizon_ms[row] == tr.closed_at - t


def test_detector_labels_of_a_real_swing_run(feed):
    t = feed.candles("ETH/USDT").time
    res = simulate("swing", {}, feed, ["ETH/USDT", "SOL/USDT"], start_ms=int(t[200]), end_ms=int(t[2400]))
    ls = detector_labels(res, feed)
    assert len(ls) == len(res.trades) == 15
    assert sorted(ls.labels) == ["hold_hours", "pnl_pct", "size_multiplier", "stop_loss", "success", "take_profit"]
    assert int(ls.labels["success"].sum()) == sum(tr.exit_reason == "take_profit" for tr in res.trades) == 3
    for tr in res.trades:
        c = feed.candles(tr.symbol)
        a, b = np.searchsorted(c.time, [tr.opened_at, tr.closed_at])
        (row,) = np.flatnonzero((ls.symbol == tr.symbol) & (ls.time == c.time[a - 1]))
        assert ls.labels["take_profit"][row] == pytest.approx((c.high[a : b + 1].max() / tr.entry_price - 1) * 100)
        assert ls.labels["stop_loss"][row] == pytest.approx(
            max(0.0, (1 - c.low[a : b + 1].min() / tr.entry_price) * 100)
        )
        assert ls.labels["hold_hours"][row] == (tr.closed_at - tr.opened_at) / H
        mae = ls.labels["stop_loss"][row]
        assert ls.labels["size_multiplier"][row] == min(1.5, max(0.5, 1 + tr.pnl_pct / max(mae, 0.5) / 2))
    assert not any(math.isnan(x) for x in ls.labels["size_multiplier"])


def test_labelset_validates_lengths_and_concats():
    a = LabelSet(np.array(["X"], dtype=object), np.array([1]), np.array([0]), {"y": np.array([1.0])})
    b = LabelSet(np.array(["Y"], dtype=object), np.array([2]), np.array([5]), {"y": np.array([0.0])})
    ab = LabelSet.concat([a, b])
    assert (
        ab.symbol.tolist() == ["X", "Y"] and ab.horizon_ms.tolist() == [0, 5] and ab.labels["y"].tolist() == [1.0, 0.0]
    )
    with pytest.raises(ValueError, match="label 'y' has 2 rows, time has 1"):
        LabelSet(np.array(["X"], dtype=object), np.array([1]), np.array([0]), {"y": np.array([1.0, 2.0])})
