"""Factories of the ML Monitor / models API tests: versions with the training pipeline's
metrics JSON shape (classifier and regressor), snapshots with outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from mlops.models import FeatureSnapshot, ModelVersion

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 12, 31, 23, tzinfo=UTC)

CLASSIFIER_METRICS = {
    "pooled": {"auc": 0.61, "logloss": 0.66, "brier": 0.23, "precision": 0.58, "n": 1200},
    "folds": [
        {
            "fold": 0, "train_end": "2024-06-01T00:00:00Z", "test_start": "2024-06-04T00:00:00Z",
            "test_end": "2024-09-01T00:00:00Z", "n_train": 800, "n_test": 200,
            "auc": 0.6, "logloss": 0.67, "brier": 0.235, "precision": 0.57,
        },
        {
            "fold": 1, "train_end": "2024-09-01T00:00:00Z", "test_start": "2024-09-04T00:00:00Z",
            "test_end": "2024-12-31T00:00:00Z", "n_train": 1000, "n_test": 200,
            "auc": 0.62, "logloss": 0.65, "brier": 0.225, "precision": 0.59,
        },
    ],
    "calibration": {"prob_pred": [0.1, 0.5, 0.9], "prob_true": [0.2, 0.5, 0.75]},
    "trading": {
        "ungated": {"trades": 40, "win_rate_pct": 55.0, "profit_factor": 1.3, "pnl": 120.5, "max_drawdown_pct": 8.1},
        "gated": {"trades": 25, "win_rate_pct": 64.0, "profit_factor": 1.8, "pnl": 150.25, "max_drawdown_pct": 5.0},
        "threshold": 0.5,
    },
}  # fmt: skip
REGRESSOR_METRICS = {
    "pooled": {"mae": 0.12, "rmse": 0.2, "n": 900},
    "folds": [
        {"fold": 0, "train_end": "2024-06-01T00:00:00Z", "test_start": "2024-06-04T00:00:00Z",
         "test_end": "2024-12-31T00:00:00Z", "n_train": 700, "n_test": 200, "mae": 0.12, "rmse": 0.2},
    ],
}  # fmt: skip
IMPORTANCE = {"rsi_14": 30.0, "ret_1": 50.0, "atr_pct": 20.0}
BINS = {
    "ret_1": {"edges": [0.0, 1.0, 2.0, 3.0, 4.0], "fractions": [0.25, 0.25, 0.25, 0.25]},
    "rsi_14": {"edges": [0.0, 50.0, 100.0], "fractions": [0.5, 0.5]},
}


def make_version(owner, version=1, *, kind="confidence", strategy="smart_dca", status="candidate", **extra):
    classifier = kind in ("confidence", "recovery_odds", "safu_exit", "success")
    fields = {
        "owner": owner,
        "kind": kind,
        "strategy": strategy,
        "version": version,
        "status": status,
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "train_start": T0,
        "train_end": T1,
        "horizon_hours": 48.0,
        "features": ["ret_1", "rsi_14", "atr_pct"],
        "features_hash": "f" * 64,
        "params": {"max_depth": 4, "feature_bins": BINS},
        "metrics": CLASSIFIER_METRICS if classifier else REGRESSOR_METRICS,
        "importance": IMPORTANCE,
        "n_rows": 1200,
        "artifact_path": f"u{owner.pk}/{kind}-{strategy}-v{version}.json",
        "artifact_sha256": "a" * 64,
    }
    fields.update(extra)
    return ModelVersion.objects.create(**fields)


def make_snapshot(version, time, score, outcome, values=(0.5, 10.0, 1.0), *, symbol="BTC/USDT", features_hash=None):
    return FeatureSnapshot.objects.create(
        owner=version.owner,
        bot_id=1,
        version=version,
        kind=version.kind,
        symbol=symbol,
        time=time,
        features_hash=features_hash or version.features_hash,
        values=list(values),
        score=score,
        outcome=outcome,
    )
