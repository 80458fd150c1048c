"""``manage.py ml_train`` and ``manage.py ml_evaluate`` on real bundled candles in the database."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from mlops.models import ModelVersion, TrainingJob
from mlops.services import serving
from trading.services.candles import candles_import

SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT"


@pytest.fixture
def setup(db, bundled_data_dir, make_user, tmp_path):
    make_user("quant", "trader", is_superuser=True)
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz", "SOLUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    serving._predictors.clear()
    with override_settings(MARKET7_MODELS_DIR=tmp_path / "models"):
        yield tmp_path


def call(name, *args):
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def train(tmp_path, *extra):
    return call(
        "ml_train", "--model", "confidence", "--strategy", "smart_dca", "--symbols", SYMBOLS,
        "--start", "2025-03-20", "--end", "2025-06-20", "--folds", "3", "--json", str(tmp_path / "train.json"), *extra,
    )  # fmt: skip


def test_ml_train_registers_a_version_and_writes_the_report(setup):
    out = train(setup)
    v = ModelVersion.objects.get()
    report = json.loads((setup / "train.json").read_text())
    assert report["version"] == v.version == 1 and report["job"] == TrainingJob.objects.get().pk
    assert report["artifact"] == {"path": v.artifact_path, "sha256": v.artifact_sha256}
    assert report["promotion"]["reason"] == v.promotion["reason"]
    auc = v.metrics["pooled"]["auc"]
    assert f"version 1 ({v.status}): {v.n_rows} rows, walk-forward AUC {auc:.4f}" in out
    assert TrainingJob.objects.get().source == "command"


def test_ml_train_bad_input_exits_with_the_reason(setup):
    with pytest.raises(CommandError, match="model kind 'success' learns detector signals"):
        call(
            "ml_train",
            "--model",
            "success",
            "--strategy",
            "smart_dca",
            "--symbols",
            SYMBOLS,
            "--start",
            "2025-04-01",
            "--end",
            "2025-06-01",
        )
    assert TrainingJob.objects.count() == 0


def test_ml_evaluate_refuses_a_window_the_model_saw(setup):
    train(setup)
    v = ModelVersion.objects.get()
    embargo_end = v.train_end + timedelta(hours=v.horizon_hours)
    with pytest.raises(CommandError) as err:
        call(
            "ml_evaluate",
            "--strategy",
            "smart_dca",
            "--symbols",
            SYMBOLS,
            "--start",
            "2025-06-01",
            "--end",
            "2025-07-31",
            "--model-version",
            "1",
        )
    assert str(err.value) == (
        f"confidence v1 was trained on 2025-03-20 00:00 → {v.train_end:%Y-%m-%d %H:%M} (+ {v.horizon_hours:g} h label "
        f"horizon, to {embargo_end:%Y-%m-%d %H:%M}); the evaluation window 2025-06-01 00:00 → 2025-07-31 23:59 overlaps it: "
        f"choose a window after {embargo_end:%Y-%m-%d %H:%M} or before 2025-03-20 00:00"
    )


def test_ml_evaluate_reports_gated_and_ungated_backtests_side_by_side(setup):
    train(setup)
    v = ModelVersion.objects.get()
    out = call(
        "ml_evaluate", "--strategy", "smart_dca", "--symbols", SYMBOLS, "--start", "2025-07-15", "--end", "2025-08-31",
        "--model-version", "1", "--threshold", "0.5", "--json", str(setup / "eval.json"),
    )  # fmt: skip
    r = json.loads((setup / "eval.json").read_text())
    assert r["model"]["version"] == 1 and r["threshold"] == 0.5 and r["fallback"] is None
    # the ungated side is the plain backtest with the confidence guard off (the backtest command)
    params = {**v.params["strategy_params"], "confidence_dca_guard_enabled": False}
    (setup / "p.json").write_text(json.dumps(params))
    call(
        "backtest", "--strategy", "smart_dca", "--symbols", SYMBOLS, "--start", "2025-07-15", "--end", "2025-08-31",
        "--capital", "10000", "--params", str(setup / "p.json"), "--json", str(setup / "bt.json"),
    )  # fmt: skip
    bt = json.loads((setup / "bt.json").read_text())["metrics"]
    for k in ("trades", "total_return_pct", "win_rate_pct", "max_drawdown_pct", "final_equity"):
        assert r["ungated"][k] == bt[k], k
    # the gated side differs from the ungated one only by the model's gate
    assert r["difference"]["trades"] == r["gated"]["trades"] - r["ungated"]["trades"]
    c = r["classification"]
    assert c["rows"] > 0 and 0.0 <= c["auc"] <= 1.0
    assert f"model on this window: {c['rows']} deals, AUC {c['auc']:.4f}" in out
    assert np.isfinite(c["brier"])
