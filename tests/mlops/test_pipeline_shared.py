"""End to end on ../shared/data (skips when absent): a Smart DCA run of the one engine on 3
symbols x 5 months -> confidence labels -> dataset -> purged walk-forward XGBoost -> the
out-of-fold gate applied to the same deals' P&L."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import talib
from sklearn.metrics import roc_auc_score

from mlops.core.datasets import build_dataset
from mlops.core.labels import simulate, smart_dca_labels
from mlops.core.train import gated_vs_ungated, train_walk_forward
from strategies.engine import Feed
from tests.mlops.conftest import DCA_LADDER

DATA = Path(os.environ.get("MARKET7_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "ohlcv"
pytestmark = pytest.mark.shared_data
SYMBOLS = ["ETH/USDT", "SOL/USDT", "XRP/USDT"]
DCA = dict(
    **DCA_LADDER,
    stop_loss=4,
    max_active_deals=3,
)


@dataclass
class Frame:
    time: np.ndarray
    names: tuple
    values: np.ndarray


def frame(c) -> Frame:
    cols = {
        "rsi_14": talib.RSI(c.close, 14),
        "ret_24": talib.ROCP(c.close, 24) * 100,
        "atr_pct": talib.ATR(c.high, c.low, c.close, 14) / c.close * 100,
        "ema_50_dist": (c.close / talib.EMA(c.close, 50) - 1) * 100,
    }
    return Frame(c.time, tuple(cols), np.column_stack(list(cols.values())).astype(np.float32))


@pytest.fixture(scope="module")
def feed():
    if not DATA.is_dir():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"shared data missing at {DATA}")
        pytest.skip(f"shared data not present at {DATA}")
    full = Feed.from_csv_dir(DATA, SYMBOLS, "1h")
    return full.truncate(int(full.candles("ETH/USDT").time[3650]))  # 2024-01-01 .. 2024-06-01


def test_smart_dca_confidence_model_end_to_end(feed):
    t = feed.candles("ETH/USDT").time
    res = simulate("smart_dca", DCA, feed, SYMBOLS, start_ms=int(t[100]), end_ms=int(t[-1]))
    labels = smart_dca_labels(res, feed, DCA)["confidence"]
    assert len(labels) == len(res.trades)
    frames = {s: frame(feed.candles(s)) for s in SYMBOLS}
    ds = build_dataset(frames, labels, "confidence")
    assert len(ds) == len(labels) - ds.dropped["nan_features"]
    rep = train_walk_forward(
        "confidence",
        ds.X,
        ds.y,
        ds.times,
        ds.horizons_ms,
        feature_names=ds.feature_names,
        n_folds=3,
        embargo_ms=int(ds.horizons_ms.max()),
        params={"n_estimators": 60, "max_depth": 3},
    )
    tested = ~np.isnan(rep.oof_pred)
    assert rep.pooled["auc"] == roc_auc_score(ds.y[tested], rep.oof_pred[tested])
    for f in rep.folds:
        if "metrics" in f:  # purged and embargoed by the longest deal
            assert f["train_end_ms"] < f["test_start_ms"]
    # the gate on the same deals: P&L of each labelled deal, in dataset order
    pnl = {(tr.symbol, tr.opened_at): tr.pnl for tr in res.trades}
    hour = feed.tf_ms
    deal_pnl = np.array([pnl[(s, int(tm) + hour)] for s, tm in zip(ds.symbols[tested], ds.times[tested], strict=True)])
    out = gated_vs_ungated(deal_pnl, rep.oof_pred[tested], 0.85)  # about the base rate of TP deals
    assert out["ungated"]["trades"] == int(tested.sum())
    assert out["gated"]["trades"] == int((rep.oof_pred[tested] >= 0.85).sum())
    assert out["ungated"]["total_pnl"] == pytest.approx(float(deal_pnl.sum()), abs=1e-9)
