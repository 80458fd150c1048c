"""Training on a small real slice (bundled Binance 1h, 2 symbols): walk-forward metrics equal
scikit-learn on the out-of-fold predictions; dataset join; artifacts (hash round trip, tamper
detection); Predictor; promotion decisions and the gated-vs-ungated comparison, exact."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import talib
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, mean_absolute_error, precision_score, roc_auc_score

from mlops.core.artifacts import load_booster, save_booster
from mlops.core.datasets import build_dataset
from mlops.core.labels import LabelSet, triple_barrier_labelset
from mlops.core.predict import Predictor
from mlops.core.train import gated_vs_ungated, promote, train_walk_forward
from strategies.engine import load_csv

H = 3_600_000
BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
SYMBOLS = ("ETH/USDT", "SOL/USDT")
PARAMS = {"n_estimators": 40, "max_depth": 3}


@dataclass
class Frame:  # the FeatureFrame shape (time, names, values), built here from a few TA-Lib indicators
    time: np.ndarray
    names: tuple
    values: np.ndarray


def frame(c) -> Frame:
    close = c.close[:2000]
    cols = {
        "rsi_14": talib.RSI(close, 14),
        "ret_4": talib.ROCP(close, 4) * 100,
        "atr_pct": talib.ATR(c.high[:2000], c.low[:2000], close, 14) / close * 100,
        "sma_20_dist": (close / talib.SMA(close, 20) - 1) * 100,
    }
    return Frame(c.time[:2000], tuple(cols), np.column_stack(list(cols.values())).astype(np.float32))


@pytest.fixture(scope="module")
def data():
    candles = {s: load_csv(BUNDLED / f"{s.split('/')[0]}USDT-1h.csv.gz") for s in SYMBOLS}
    frames = {s: frame(c) for s, c in candles.items()}
    labels = LabelSet.concat(
        triple_barrier_labelset(s, c[:2000], tp_pct=1.5, sl_pct=1.5, horizon=24) for s, c in candles.items()
    )
    return frames, labels


def test_dataset_join_drops_warm_up_and_keeps_time_order(data):
    frames, labels = data
    ds = build_dataset(frames, labels, "success")
    assert ds.feature_names == ("rsi_14", "ret_4", "atr_pct", "sma_20_dist")
    assert ds.dropped == {
        "nan_label": 0,
        "no_features": 0,
        "no_feature_row": 0,
        "nan_features": 38,
    }  # 19 warm-up rows x 2
    assert len(ds) == len(labels) - 38 and ds.X.dtype == np.float32 and ds.X.shape == (len(ds), 4)
    assert (np.diff(ds.times) >= 0).all()
    k = 101
    fr = frames[ds.symbols[k]]
    assert ds.X[k].tolist() == fr.values[np.searchsorted(fr.time, ds.times[k])].tolist()
    j = np.flatnonzero((labels.symbol == ds.symbols[k]) & (labels.time == ds.times[k]))[0]
    assert (ds.y[k], ds.horizons_ms[k]) == (labels.labels["success"][j], labels.horizon_ms[j])
    # a frame with different names is refused
    bad = dict(frames, **{"SOL/USDT": Frame(frames["SOL/USDT"].time, ("x",) * 4, frames["SOL/USDT"].values)})
    with pytest.raises(ValueError, match="feature frame of SOL/USDT has names"):
        build_dataset(bad, labels, "success")


@pytest.fixture(scope="module")
def clf(data):
    ds = build_dataset(*data, "success")
    calls = []
    rep = train_walk_forward(
        "success",
        ds.X,
        ds.y,
        ds.times,
        ds.horizons_ms,
        feature_names=ds.feature_names,
        n_folds=3,
        embargo_ms=24 * H,
        params=PARAMS,
        progress=lambda f, m: calls.append((round(f, 4), m)),
    )
    return ds, rep, calls


def test_classifier_walk_forward_metrics_equal_sklearn_on_the_out_of_fold_predictions(clf):
    ds, rep, calls = clf
    tested = ~np.isnan(rep.oof_pred)
    y, p = ds.y[tested], rep.oof_pred[tested]
    pooled = rep.pooled
    assert pooled["rows"] == int(tested.sum())
    assert pooled["auc"] == roc_auc_score(y, p)
    assert pooled["log_loss"] == log_loss(y, p)
    assert pooled["brier"] == brier_score_loss(y, p)
    assert pooled["precision"] == precision_score(y, p >= 0.5)
    true, pred = calibration_curve(y, p, n_bins=10)
    assert pooled["calibration"] == {"prob_true": true.tolist(), "prob_pred": pred.tolist()}
    for f in rep.folds:
        rows = np.flatnonzero((ds.times >= f["test_start_ms"]) & (ds.times <= f["test_end_ms"]))
        assert f["metrics"]["rows"] == len(rows) == f["test_rows"]
        assert f["metrics"]["auc"] == roc_auc_score(ds.y[rows], rep.oof_pred[rows])
        assert f["train_end_ms"] < f["test_start_ms"]
    # the three test blocks cover the last three quarters of the distinct times
    assert tested.sum() == sum(f["test_rows"] for f in rep.folds)
    assert calls == [
        (0.25, "fold 1/3: trained"),
        (0.5, "fold 2/3: trained"),
        (0.75, "fold 3/3: trained"),
        (1.0, "final model trained on all rows"),
    ]
    assert rep.params["n_jobs"] == 2 and rep.params["n_estimators"] == 40
    assert set(rep.importance) == set(ds.feature_names) and sum(rep.importance.values()) > 0
    d = rep.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["pooled"]["auc"] == pooled["auc"]
    assert "oof_pred" not in d and len(rep.to_dict(include_oof=True)["oof_pred"]) == len(ds)


def test_regressor_mae_rmse_and_the_train_mean_baseline(data):
    frames, labels = data
    ds = build_dataset(frames, labels, "mfe_pct")
    rep = train_walk_forward(
        "take_profit", ds.X, ds.y, ds.times, ds.horizons_ms, feature_names=ds.feature_names, n_folds=3, params=PARAMS
    )
    tested = ~np.isnan(rep.oof_pred)
    assert rep.pooled["mae"] == mean_absolute_error(ds.y[tested], rep.oof_pred[tested])
    assert rep.pooled["rmse"] == pytest.approx(np.sqrt(np.mean((ds.y[tested] - rep.oof_pred[tested]) ** 2)), rel=1e-12)
    from mlops.core.walkforward import splits

    base = np.full(len(ds), np.nan)
    for f in splits(ds.times, ds.horizons_ms, 3):
        base[f.test_idx] = ds.y[f.train_idx].mean()
    assert rep.pooled["baseline_mae"] == pytest.approx(mean_absolute_error(ds.y[tested], base[tested]), rel=1e-12)
    ok, reason = promote(rep, None)
    assert ok == (rep.pooled["mae"] < rep.pooled["baseline_mae"] - 0.01)
    assert reason.startswith(f"candidate MAE {rep.pooled['mae']:.4f} ")


def test_size_multiplier_predictions_are_clipped(data):
    frames, labels = data
    ds = build_dataset(frames, labels, "ret_pct")  # returns in -1.5..+1.5 % spill outside 0.5-1.5
    rep = train_walk_forward(
        "size_multiplier",
        ds.X,
        ds.y,
        ds.times,
        ds.horizons_ms,
        feature_names=ds.feature_names,
        n_folds=2,
        params=PARAMS,
    )
    p = rep.oof_pred[~np.isnan(rep.oof_pred)]
    assert p.min() >= 0.5 and p.max() <= 1.5 and p.min() == 0.5


def test_bad_inputs_are_refused():
    X = np.zeros((10, 2), np.float32)
    t = np.arange(10) * H
    with pytest.raises(ValueError, match="unknown model kind 'foo'"):
        train_walk_forward("foo", X, np.zeros(10), t, np.zeros(10), feature_names=("a", "b"))
    with pytest.raises(ValueError, match="labels must be 0/1"):
        train_walk_forward("confidence", X, np.full(10, 2.0), t, np.zeros(10), feature_names=("a", "b"))
    with pytest.raises(ValueError, match=r"X \(10, 2\), y \(10,\), feature_names 3 do not match"):
        train_walk_forward("confidence", X, np.zeros(10), t, np.zeros(10), feature_names=("a", "b", "c"))


def test_artifact_hash_round_trip_tamper_and_missing(clf, tmp_path):
    ds, rep, _ = clf
    path, sha = save_booster(rep.model, tmp_path / "models", "success-v1")
    assert path == tmp_path / "models" / "success-v1.json" and sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(path.read_text())["learner"]["attributes"] is not None  # XGBoost's own JSON, no pickle
    booster = load_booster(path, sha)
    X = ds.X[:100]
    assert booster.inplace_predict(X).tolist() == rep.model.predict_proba(X)[:, 1].tolist()
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"base_score"', b'"base_scorf"', 1))
    bad = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError) as e:
        load_booster(path, sha)
    assert str(e.value) == f"model artifact {path} sha256 mismatch: expected {sha}, actual {bad}"
    with pytest.raises(FileNotFoundError, match="model artifact not found: .*nope.json"):
        load_booster(tmp_path / "nope.json", sha)
    with pytest.raises(ValueError, match="artifact name"):
        save_booster(rep.model, tmp_path, "../evil")


def test_predictor_probabilities_and_column_check(clf, tmp_path):
    ds, rep, _ = clf
    path, sha = save_booster(rep.model, tmp_path, "m")
    pr = Predictor(path, sha, ds.feature_names, "success")
    out = pr.predict(ds.X[:100])
    assert out.dtype == np.float64 and out.shape == (100,)
    assert out.tolist() == rep.model.predict_proba(ds.X[:100])[:, 1].astype(np.float64).tolist()
    with pytest.raises(ValueError, match=r"X must be 2-D with 4 columns, got shape \(100, 3\)"):
        pr.predict(ds.X[:100, :3])
    with pytest.raises(ValueError, match="has 4 features, 2 names given"):
        Predictor(path, sha, ("a", "b"), "success")


def test_promotion_decisions_and_reasons():
    def r(kind, **pooled):
        return {"kind": kind, "pooled": pooled}

    assert promote(r("confidence", auc=0.62), r("confidence", auc=0.60)) == (
        True,
        "candidate AUC 0.6200 beats active 0.6000 by more than margin 0.0100",
    )
    assert promote(r("confidence", auc=0.605), r("confidence", auc=0.60)) == (
        False,
        "candidate AUC 0.6050 does not beat active 0.6000 by more than margin 0.0100",
    )
    assert promote(r("confidence", auc=0.52), None, margin=0.02) == (
        False,
        "candidate AUC 0.5200 does not beat baseline 0.5000 by more than margin 0.0200",
    )
    assert promote(r("confidence", auc=0.55), None) == (
        True,
        "candidate AUC 0.5500 beats baseline 0.5000 by more than margin 0.0100",
    )
    assert promote(r("hold_hours", mae=10.0), r("hold_hours", mae=12.5), margin=1.0) == (
        True,
        "candidate MAE 10.0000 beats active 12.5000 by more than margin 1.0000",
    )
    assert promote(r("hold_hours", mae=10.0, baseline_mae=10.005), None) == (
        False,
        "candidate MAE 10.0000 does not beat baseline 10.0050 by more than margin 0.0100",
    )
    assert promote(r("success", auc=None), None) == (
        False,
        "candidate AUC undefined (one class in the test blocks): not promoted",
    )
    with pytest.raises(ValueError, match="cannot compare a confidence candidate with a success active model"):
        promote(r("confidence", auc=0.6), r("success", auc=0.5))


def test_gated_vs_ungated_exact_on_a_hand_made_trade_list():
    out = gated_vs_ungated(
        np.array([10.0, -5.0, 20.0, -15.0, 5.0]), np.array([0.9, 0.2, 0.6, 0.7, 0.4]), 0.5, capital=1000.0
    )
    assert out == {
        "threshold": 0.5,
        # equity 1000 1010 1005 1025 1010 1015: deepest fall 1025 -> 1010
        "ungated": {
            "trades": 5,
            "win_rate_pct": 60.0,
            "profit_factor": 1.75,
            "total_pnl": 15.0,
            "max_drawdown_pct": pytest.approx(15 / 1025 * 100, rel=1e-12),
        },
        # kept 10, 20, -15: equity 1000 1010 1030 1015
        "gated": {
            "trades": 3,
            "win_rate_pct": pytest.approx(200 / 3, rel=1e-12),
            "profit_factor": 2.0,
            "total_pnl": 15.0,
            "max_drawdown_pct": pytest.approx(15 / 1030 * 100, rel=1e-12),
        },
    }
    none = gated_vs_ungated(np.array([1.0]), np.array([0.1]), 0.5)["gated"]
    assert none == {"trades": 0, "win_rate_pct": None, "profit_factor": None, "total_pnl": 0.0, "max_drawdown_pct": 0.0}
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        gated_vs_ungated(np.zeros(2), np.zeros(3), 0.5)
