"""Deal-state features on the DCA deal models' rows (dca_spend, recovery_odds, safu_exit): read
from a real Smart DCA run of the one engine (bundled Binance candles) and checked against an
independent computation from the deal's own fills; the datasets and models of those kinds take
them after the candle features, confidence does not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import talib

from mlops.core.datasets import build_dataset
from mlops.core.deal_features import DEAL_FEATURE_NAMES
from mlops.core.features import feature_hash
from mlops.core.labels import simulate, smart_dca_labels
from mlops.core.pipeline import train_kind
from strategies.engine import Feed, load_csv
from tests.mlops.conftest import DCA_LADDER

H = 3_600_000
BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
DCA = dict(
    **DCA_LADDER,
    max_active_deals=2,
    stop_loss=4,
)
MAX_SPEND = 50 + 50 * (1 + 1.4 + 1.4**2 + 1.4**3)  # 405.3 quote


@pytest.fixture(scope="module")
def feed():
    syms = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.split('/')[0]}USDT-1h.csv.gz") for s in syms})


@pytest.fixture(scope="module")
def run(feed):
    t = feed.candles("ETH/USDT").time
    res = simulate("smart_dca", DCA, feed, ["ETH/USDT", "SOL/USDT"], start_ms=int(t[200]), end_ms=int(t[2400]))
    return res, smart_dca_labels(res, feed, DCA, drawdown_pct=3.0, recovery_hours=24)


def expected_state(res, feed, symbol: str, t: int) -> dict[str, float]:
    """The deal state at the close of the candle opened at ``t``, from the fills alone."""
    c = feed.candles(symbol)
    i = int(np.searchsorted(c.time, t))
    close_ms = t + H
    (tr,) = [d for d in res.trades if d.symbol == symbol and d.opened_at < close_ms and t < d.closed_at]
    done = [f for f in res.fills if f.deal_id == tr.deal_id and f.time < close_ms]
    buys = [f for f in done if f.side == "buy"]
    spent = sum(f.price * f.amount for f in buys)
    avg = spent / sum(f.amount for f in buys)
    sos = sum(f.tag == "safety_order" for f in buys)
    close = float(c.close[i])
    pnl = (close / avg - 1) * 100
    tp = avg * 1.015  # tp_type total: 1.5 % above the average entry
    return {
        "deal_pnl_pct": pnl,
        "deal_drawdown_pct": max(0.0, -pnl),
        "deal_so_used": float(sos),
        "deal_so_used_frac": sos / 4,
        "deal_spend_frac": spent / MAX_SPEND,
        "deal_hours_open": (close_ms - tr.opened_at) / H,
        "deal_tp_distance_pct": (tp / close - 1) * 100,
    }


def test_drawdown_rows_carry_the_deal_state_at_their_candle(run, feed):
    res, labels = run
    safu, rec = labels["safu_exit"], labels["recovery_odds"]
    assert len(safu) == 64
    for name in DEAL_FEATURE_NAMES:  # the same rows, the same state
        assert np.array_equal(safu.labels[name], rec.labels[name])
    assert (safu.labels["deal_drawdown_pct"] >= 3.0 - 1e-5).all()
    assert np.allclose(safu.labels["deal_drawdown_pct"], -safu.labels["drawdown_pct"], rtol=1e-6)
    for row in (0, 9, 23, 41, 63):
        want = expected_state(res, feed, safu.symbol[row], int(safu.time[row]))
        got = {n: safu.labels[n][row] for n in DEAL_FEATURE_NAMES}
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    # the first drawdown row of the run, as numbers: SOL 2025-03-16 13:00, 3 of 4 safety orders
    # filled, 20 h after the base order, 3.0 % under the average entry, TP 4.64 % away
    assert (safu.symbol[0], int(safu.time[0])) == ("SOL/USDT", 1742130000000)
    assert [round(float(safu.labels[n][0]), 4) for n in DEAL_FEATURE_NAMES] == [
        -3.0006,
        3.0006,
        3.0,
        0.75,
        0.6607,
        20.0,
        4.6399,
    ]


def test_spend_rows_are_the_entry_fill_candles_with_their_state(run, feed):
    res, labels = run
    spend = labels["dca_spend"]
    with_so = [tr for tr in res.trades if tr.safety_orders_filled >= 2][:3]
    assert len(with_so) == 3
    for tr in with_so:
        c = feed.candles(tr.symbol)
        rows = np.flatnonzero(
            (spend.symbol == tr.symbol) & (spend.time >= tr.opened_at - H) & (spend.time < tr.closed_at)
        )
        # base order's candle first: nothing averaged yet
        first = {n: spend.labels[n][rows[0]] for n in DEAL_FEATURE_NAMES}
        assert first["deal_so_used"] == 0.0 and first["deal_spend_frac"] == pytest.approx(50 / MAX_SPEND, rel=1e-2)
        assert [spend.labels["deal_so_used"][r] for r in rows] == sorted(spend.labels["deal_so_used"][rows])
        for r in rows:
            want = expected_state(res, feed, tr.symbol, int(spend.time[r]))
            assert {n: spend.labels[n][r] for n in DEAL_FEATURE_NAMES} == pytest.approx(want, rel=1e-6, abs=1e-6)
            assert spend.labels["dca_spend"][r] == pytest.approx(tr.cost / MAX_SPEND, rel=1e-12)
        assert int(spend.time[rows[0]]) == int(c.time[np.searchsorted(c.time, tr.opened_at, side="right") - 1])


@dataclass
class Frame:
    time: np.ndarray
    names: tuple
    values: np.ndarray


def frame(c) -> Frame:
    cols = {"rsi_14": talib.RSI(c.close, 14), "ret_24": talib.ROCP(c.close, 24) * 100}
    return Frame(c.time, tuple(cols), np.column_stack(list(cols.values())).astype(np.float32))


def test_deal_models_train_on_candle_plus_deal_features_confidence_on_candles_only(run, feed):
    _, labels = run
    frames = {s: frame(feed.candles(s)) for s in ("ETH/USDT", "SOL/USDT")}
    ds = build_dataset(frames, labels["safu_exit"], "safu_exit", DEAL_FEATURE_NAMES)
    assert ds.feature_names == ("rsi_14", "ret_24", *DEAL_FEATURE_NAMES)
    assert ds.X.shape == (64, 9)
    for r in range(0, 64, 9):
        (k,) = np.flatnonzero((labels["safu_exit"].symbol == ds.symbols[r]) & (labels["safu_exit"].time == ds.times[r]))
        want = [labels["safu_exit"].labels[n][k] for n in DEAL_FEATURE_NAMES]
        assert ds.X[r, 2:].tolist() == pytest.approx(want, rel=1e-7)
        fr = frames[ds.symbols[r]]
        assert ds.X[r, :2].tolist() == fr.values[int(np.searchsorted(fr.time, ds.times[r]))].tolist()
    opts = {"folds": 2, "params": {"n_estimators": 5, "max_depth": 2}}
    out = train_kind("safu_exit", labels["safu_exit"], frames, options=opts)
    assert out.feature_names == ("rsi_14", "ret_24", *DEAL_FEATURE_NAMES)
    assert feature_hash(out.feature_names) != feature_hash(("rsi_14", "ret_24"))
    conf = train_kind("confidence", labels["confidence"], frames, options=opts)
    assert conf.feature_names == ("rsi_14", "ret_24")
    with pytest.raises(KeyError, match="deal_pnl_pct"):
        build_dataset(frames, labels["confidence"], "confidence", DEAL_FEATURE_NAMES)
