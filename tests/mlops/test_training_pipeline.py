"""Training jobs end to end on real bundled candles in the database: the engine's deals become
labels, purged walk-forward XGBoost trains, the artifact is hash-checked, the version is
registered and the promotion rule decides; bad inputs save nothing; failures are recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mlops.core.artifacts import sha256_file
from mlops.core.features import FEATURE_NAMES, feature_hash
from mlops.core.predict import Predictor
from mlops.models import ModelVersion, TrainingJob
from mlops.services.pipeline import feature_bins
from mlops.services.training import TrainingError, training_job_create, training_job_execute
from trading.services.candles import candles_import

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = datetime(2025, 4, 1, tzinfo=UTC)
END = datetime(2025, 8, 31, 23, tzinfo=UTC)


@pytest.fixture
def candles(db, bundled_data_dir):
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz", "SOLUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")


def create(user, **kw):
    args = {
        "user": user,
        "kind": "confidence",
        "strategy": "smart_dca",
        "symbols": SYMBOLS,
        "timeframe": "1h",
        "start": START,
        "end": END,
        "options": {"folds": 3},
        "enqueue": False,
    } | kw
    return training_job_create(**args)


def test_confidence_model_trains_registers_and_is_promoted(candles, models_dir, user):
    job = create(user)
    assert (job.status, job.progress) == ("queued", 0.0)
    job = training_job_execute(job_id=job.pk)
    assert job.status == "done", job.error
    assert (job.progress, job.error) == (1.0, "")
    v = job.version
    assert (v.kind, v.strategy, v.version, v.owner_id) == ("confidence", "smart_dca", 1, user.pk)
    assert v.features == list(FEATURE_NAMES) and v.features_hash == feature_hash(FEATURE_NAMES)
    # the artifact is XGBoost JSON whose hash is on the row; it loads and predicts probabilities
    path = models_dir / v.artifact_path
    assert path.suffix == ".json" and sha256_file(path) == v.artifact_sha256
    p = Predictor(path, v.artifact_sha256, v.features, v.kind).predict(np.zeros((2, len(v.features)), np.float32))
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    pooled = v.metrics["pooled"]
    assert v.n_rows == job.report["rows"]
    # pooled metrics are over the out-of-fold rows: every tested fold's test rows
    assert pooled["n"] == sum(f["n_test"] for f in v.metrics["folds"] if "skipped" not in f) < v.n_rows
    assert len(v.metrics["folds"]) == 3 and set(v.metrics["calibration"]) == {"prob_pred", "prob_true"}
    # gated vs ungated: the ungated side holds every deal the model scored out of fold
    t = v.metrics["trading"]
    assert t["threshold"] == 0.5 and t["gated"]["trades"] <= t["ungated"]["trades"]
    # promotion against the trivial baseline (AUC 0.5) with the default margin 0.01
    auc = pooled["auc"]
    assert v.promotion["promoted"] is (auc > 0.51)
    assert v.status == ("active" if auc > 0.51 else "candidate")
    word = "beats" if auc > 0.51 else "does not beat"
    assert v.promotion["reason"] == f"candidate AUC {auc:.4f} {word} baseline 0.5000 by more than margin 0.0100"
    assert set(v.params["feature_bins"]) <= set(FEATURE_NAMES)


def test_a_second_version_is_judged_against_the_active_one(candles, models_dir, user):
    first = training_job_execute(job_id=create(user).pk).version
    ModelVersion.objects.filter(pk=first.pk).update(
        status="active", metrics={**first.metrics, "pooled": {**first.metrics["pooled"], "auc": 0.99}}
    )
    second = training_job_execute(job_id=create(user).pk).version
    assert second.version == 2 and second.status == "candidate"
    assert second.promotion["reason"] == (
        f"candidate AUC {second.metrics['pooled']['auc']:.4f} does not beat active 0.9900 by more than margin 0.0100"
    )
    assert second.promotion["active_version"] == 1


def test_detector_models_train_on_scalping_deals(candles, models_dir, user):
    job = training_job_execute(job_id=create(user, kind="success", strategy="scalping", options={"folds": 2}).pk)
    assert job.status == "done", job.error
    v = job.version
    assert (v.kind, v.strategy, v.version) == ("success", "scalping", 1)
    auc = v.metrics["pooled"]["auc"]
    assert v.promotion["promoted"] is (auc > 0.51) and "trading" in v.metrics
    # a regressor of the same deals: size multiplier, predictions clipped to 0.5-1.5
    job = training_job_execute(
        job_id=create(user, kind="size_multiplier", strategy="scalping", options={"folds": 2}).pk
    )
    v = job.version
    mae, base = v.metrics["pooled"]["mae"], v.metrics["pooled"]["baseline_mae"]
    assert v.promotion["promoted"] is (mae < base - 0.01)
    pred = Predictor(models_dir / v.artifact_path, v.artifact_sha256, v.features, v.kind).predict(
        np.random.default_rng(0).normal(0, 50, (50, len(v.features))).astype(np.float32)
    )
    assert pred.min() >= 0.5 and pred.max() <= 1.5
    assert "trading" not in v.metrics  # the gate is judged for entry classifiers only


def test_too_few_deals_fail_with_the_count(candles, models_dir, user):
    job = training_job_execute(job_id=create(user, kind="success", strategy="dca_detector", options={"folds": 2}).pk)
    assert job.status == "failed" and job.version is None
    assert job.error == (
        "only 4 usable rows for success (need 30; dropped {'nan_label': 0, 'no_features': 0, "
        "'no_feature_row': 0, 'nan_features': 0}): widen the window or add symbols"
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": "nope"}, "unknown model kind 'nope'"),
        ({"kind": "success"}, "model kind 'success' learns detector signals"),
        ({"kind": "confidence", "strategy": "swing"}, "strategy must be smart_dca"),
        ({"symbols": []}, "give at least one symbol"),
        ({"options": {"folds": 1}}, "folds must be an integer from 2 to 10"),
        ({"end": datetime(2025, 4, 5, tzinfo=UTC)}, "at least 14 days"),
        ({"symbols": ["NOPE/USDT"]}, "NOPE/USDT"),
    ],
)
def test_bad_inputs_save_nothing(candles, user, kw, message):
    with pytest.raises(TrainingError, match=message.replace("(", r"\(")):
        create(user, **kw)
    assert TrainingJob.objects.count() == 0


def test_a_window_without_deals_fails_with_the_reason_and_registers_nothing(candles, models_dir, user):
    job = create(
        user,
        options={
            "folds": 2,
            "strategy_params": {"base_order_size": 10, "start_condition": "fork_signal", "fork_min_score": 1.0},
        },
    )
    job = training_job_execute(job_id=job.pk)
    assert job.status == "failed"
    assert job.message == "failed" and job.version is None
    assert ModelVersion.objects.count() == 0
    # a second delivery of the same task does nothing
    assert training_job_execute(job_id=job.pk).status == "failed"


def test_feature_bins_are_deciles_of_the_training_rows():
    X = np.arange(100, dtype=np.float32).reshape(100, 1)
    bins = feature_bins(np.hstack([X, np.full((100, 1), 3.0, np.float32)]), ["a", "const"])
    assert bins["a"]["edges"] == [float(x) for x in np.quantile(np.arange(100.0), np.linspace(0, 1, 11))]
    assert bins["a"]["fractions"] == [0.1] * 10
    assert bins["const"] == {"edges": [3.0, 3.0], "fractions": [1.0]}
