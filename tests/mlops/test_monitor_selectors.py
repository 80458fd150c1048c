"""Selectors of the ML Monitor: live accuracy per week, PSI drift of live snapshots, the
walk-forward tables and the calibration plot geometry — exact values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops import selectors as sel
from tests.mlops.monitor_helpers import CLASSIFIER_METRICS, REGRESSOR_METRICS, make_snapshot, make_version

pytestmark = pytest.mark.django_db


def at(day, hour=0):
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def test_live_accuracy_of_a_classifier_per_week(user, other_user):
    v = make_version(user, 1, status="active")
    make_snapshot(v, at(2, 10), 0.7, 1.0)  # hit
    make_snapshot(v, at(3), 0.4, 1.0)  # miss
    make_snapshot(v, at(7, 23), 0.2, 0.0)  # hit (Sunday: still the week of Monday 1 January)
    make_snapshot(v, at(8), 0.5, 0.0)  # 0.5 counts as "yes": a miss, next week
    make_snapshot(v, at(9), 0.9, None)  # outcome unknown: left out
    make_snapshot(make_version(user, 2), at(4), 0.9, 0.0)  # another version: left out
    assert sel.live_accuracy(v) == [
        # Brier: (0.09 + 0.36 + 0.04) / 3
        {"week": at(1), "n": 3, "accuracy": 0.666667, "brier": 0.163333},
        {"week": at(8), "n": 1, "accuracy": 0.0, "brier": 0.25},
    ]


def test_live_error_of_a_regressor_per_week(user):
    v = make_version(user, 1, kind="dca_spend")
    make_snapshot(v, at(2), 0.3, 0.5)
    make_snapshot(v, at(3), 0.6, 0.5)
    assert sel.live_accuracy(v) == [{"week": at(1), "n": 2, "mae": 0.15}]


def test_feature_drift_is_psi_of_the_newest_snapshots_with_the_versions_features(user):
    v = make_version(user, 1, status="active")  # bins: ret_1 quarters of 0..4, rsi_14 halves of 0..100
    rets = [0.5, 1.5, 1.5, 2.5, 3.5, 3.5, 3.5, 3.5]
    for i, r in enumerate(rets):
        make_snapshot(v, at(2, i), 0.6, None, values=(r, 10.0 if i % 2 else 60.0, 1.0))
    make_snapshot(v, at(3), 0.6, None, values=(None, None, 1.0))  # missing values are ignored
    make_snapshot(v, at(4), 0.6, None, values=(99.0, 99.0, 1.0), features_hash="0" * 64)  # other features
    assert sel.feature_drift(v, min_values=1) == [
        # (-1/8)ln(1/2) + 0 + (-1/8)ln(1/2) + (1/4)ln 2 = (1/2) ln 2
        {"feature": "ret_1", "psi": 0.346574, "level": "shifted", "n": 8},
        {"feature": "rsi_14", "psi": 0.0, "level": "stable", "n": 8},
    ]
    # only the newest `limit` snapshots count: the last four are all 3.5 (the NaN row has no
    # ret_1), three bins empty: 0.75 ln 4 + 3 (1e-4 - 0.25) ln(1e-4 / 0.25)
    assert sel.feature_drift(v, limit=5, min_values=1)[0] == {
        "feature": "ret_1",
        "psi": 6.905408,
        "level": "shifted",
        "n": 4,
    }
    # with fewer than 50 live values (the default) a PSI is noise: shown, judged "few"
    assert [(r["feature"], r["psi"], r["level"]) for r in sel.feature_drift(v)] == [
        ("ret_1", 0.346574, "few"),
        ("rsi_14", 0.0, "few"),
    ]


def test_feature_drift_without_bins_or_snapshots(user):
    assert sel.feature_drift(make_version(user, 1, params={})) == []
    assert sel.feature_drift(make_version(user, 2)) == [
        {"feature": "ret_1", "psi": None, "level": "none", "n": 0},
        {"feature": "rsi_14", "psi": None, "level": "none", "n": 0},
    ]


def test_fold_rows_of_a_classifier_and_a_regressor():
    table = sel.fold_rows(CLASSIFIER_METRICS, classifier=True)
    assert table["columns"] == ["auc", "logloss", "brier", "precision"]
    assert table["rows"][1] == {
        "fold": 1,
        "train_end": "2024-09-01T00:00:00Z",
        "test_start": "2024-09-04T00:00:00Z",
        "test_end": "2024-12-31T00:00:00Z",
        "n_train": 1000,
        "n_test": 200,
        "values": [
            {"metric": "auc", "value": 0.62},
            {"metric": "logloss", "value": 0.65},
            {"metric": "brier", "value": 0.225},
            {"metric": "precision", "value": 0.59},
        ],
    }
    assert [c["value"] for c in table["pooled"]] == [0.61, 0.66, 0.23, 0.58]
    reg = sel.fold_rows(REGRESSOR_METRICS, classifier=False)
    assert reg["pooled"] == [{"metric": "mae", "value": 0.12}, {"metric": "rmse", "value": 0.2}]
    assert sel.fold_rows({}, classifier=True) == {
        "columns": ["auc", "logloss", "brier", "precision"],
        "rows": [],
        "pooled": None,
    }


def test_importance_rows_top_n_largest_first():
    rows = sel.importance_rows({"rsi_14": 30.0, "ret_1": 50.0, "atr_pct": 20.0, "zero": 0.0}, top=3)
    assert rows == [
        {"feature": "ret_1", "gain": 50.0, "share_pct": 50.0, "width_pct": 100.0},
        {"feature": "rsi_14", "gain": 30.0, "share_pct": 30.0, "width_pct": 60.0},
        {"feature": "atr_pct", "gain": 20.0, "share_pct": 20.0, "width_pct": 40.0},
    ]
    assert len(sel.importance_rows({f"f{i:02d}": float(i) for i in range(30)})) == 20
    assert sel.importance_rows({}) == []


def test_trading_rows_gated_minus_ungated():
    t = sel.trading_rows(CLASSIFIER_METRICS)
    assert t["threshold"] == 0.5
    assert [(r["key"], r["ungated"], r["gated"], r["delta"]) for r in t["rows"]] == [
        ("trades", 40, 25, -15),
        ("win_rate_pct", 55.0, 64.0, 9.0),
        ("profit_factor", 1.3, 1.8, 0.5),
        ("pnl", 120.5, 150.25, 29.75),
        ("max_drawdown_pct", 8.1, 5.0, -3.1),
    ]
    assert sel.trading_rows(REGRESSOR_METRICS) is None


def test_calibration_chart_geometry():
    c = sel.calibration_chart(CLASSIFIER_METRICS)
    # plot area 300 px from 52 to 352; y grows downward: y = 52 + (1 - p) * 300
    assert c["points"] == "82.0,292.0 202.0,202.0 322.0,127.0"
    assert (c["box"], c["end"], c["mid"]) == (404, 352, 202)
    assert [t["value"] for t in c["ticks"]] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert [(t["x"], t["y"]) for t in c["ticks"]][1] == (127.0, 277.0)
    assert sel.calibration_chart(REGRESSOR_METRICS) is None
    assert sel.calibration_chart({"calibration": {"prob_pred": [0.1], "prob_true": []}}) is None


def test_versions_grouped_by_kind_and_strategy(user, other_user):
    v1 = make_version(user, 1, status="retired", activated_at=at(1))
    v2 = make_version(user, 2, status="active", activated_at=at(2))
    r1 = make_version(user, 1, kind="dca_spend")
    make_version(other_user, 1)
    groups = sel.versions_grouped(user)
    assert [
        (g["kind"], g["strategy"], [v.pk for v in g["versions"]], g["active"], g["can_rollback"]) for g in groups
    ] == [
        ("confidence", "smart_dca", [v2.pk, v1.pk], v2, True),
        ("dca_spend", "smart_dca", [r1.pk], None, False),
    ]
    assert groups[0]["kind_label"] == "Confidence (take profit within 48 h)"
