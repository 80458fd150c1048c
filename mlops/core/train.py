"""XGBoost training with purged walk-forward validation, promotion, and the gated-vs-ungated
trade comparison (pure core, no Django).

Validation is purged walk-forward only (:mod:`mlops.core.walkforward`; López de Prado, *Advances
in Financial Machine Learning*, ch. 7): each fold trains on the past and predicts the next
block; the pooled out-of-fold predictions give the pooled metrics and feed
:func:`gated_vs_ungated`. The final model is trained on all rows with the same parameters.

Model kinds: classifiers ``confidence``, ``recovery_odds``, ``safu_exit``, ``success``
(``binary:logistic``; predictions are probabilities of label 1); regressors ``dca_spend``,
``take_profit``, ``stop_loss``, ``size_multiplier`` (predictions clipped to 0.5–1.5),
``hold_hours`` (``reg:squarederror``; predictions in the label's units).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, mean_absolute_error, precision_score, roc_auc_score

from strategies.metrics import max_drawdown_pct, profit_factor, win_rate_pct

from .walkforward import splits

__all__ = [
    "CLASSIFIERS",
    "REGRESSORS",
    "DEFAULT_PARAMS",
    "TrainReport",
    "train_walk_forward",
    "promote",
    "gated_vs_ungated",
    "clip_prediction",
]

CLASSIFIERS = frozenset({"confidence", "recovery_odds", "safu_exit", "success"})
REGRESSORS = frozenset({"dca_spend", "take_profit", "stop_loss", "size_multiplier", "hold_hours"})
SIZE_MULT_RANGE = (0.5, 1.5)
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "n_jobs": 2,
}
CALIBRATION_BINS = 10


def clip_prediction(kind: str, pred: np.ndarray) -> np.ndarray:
    """Post-process raw predictions of ``kind``: ``size_multiplier`` clipped to [0.5, 1.5]."""
    if kind == "size_multiplier":
        return np.clip(pred, *SIZE_MULT_RANGE)
    return pred


@dataclass(eq=False)
class TrainReport:
    """What :func:`train_walk_forward` produced.

    ``folds``: per fold ``{train_rows, test_rows, train_end_ms, test_start_ms, test_end_ms,
    metrics | skipped}``; ``pooled``: the metrics over every out-of-fold prediction
    (classifiers ``auc, log_loss, brier, precision, threshold, positives_pct, rows,
    calibration {prob_true, prob_pred}``; regressors ``mae, rmse, baseline_mae, rows``);
    ``oof_pred``: float64 ``(n,)`` out-of-fold predictions, NaN for rows never tested;
    ``importance``: gain per feature name (features never split on are 0.0);
    ``model``: the final ``XGBClassifier``/``XGBRegressor`` fitted on all rows (not in ``to_dict``).
    """

    kind: str
    feature_names: tuple[str, ...]
    params: dict[str, Any]
    seed: int
    n_rows: int
    folds: list[dict[str, Any]]
    pooled: dict[str, Any]
    oof_pred: np.ndarray
    importance: dict[str, float]
    model: Any = field(default=None, repr=False)
    threshold: float = 0.5
    embargo_ms: int = 0
    mode: str = "expanding"

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIERS

    @property
    def booster(self) -> xgb.Booster:
        return self.model.get_booster()

    def to_dict(self, include_oof: bool = False) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf become ``None``); with ``include_oof`` also ``oof_pred`` (list)."""
        d = {
            "kind": self.kind,
            "classifier": self.is_classifier,
            "feature_names": list(self.feature_names),
            "params": dict(self.params),
            "seed": self.seed,
            "n_rows": self.n_rows,
            "threshold": self.threshold,
            "embargo_ms": self.embargo_ms,
            "mode": self.mode,
            "folds": self.folds,
            "pooled": self.pooled,
            "importance": self.importance,
        }
        if include_oof:
            d["oof_pred"] = self.oof_pred.tolist()
        return _json_safe(d)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_json_safe(v) for v in x.tolist()]
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def classifier_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """AUC (``None`` with one class), log-loss, Brier, precision of ``p >= threshold`` (``None``
    when nothing passes), percent of positives, and the 10-bin calibration curve — all from
    scikit-learn on labels ``y`` (0/1) and probabilities ``p``."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    both = len(np.unique(y)) == 2
    passed = p >= threshold
    true, pred = calibration_curve(y, p, n_bins=CALIBRATION_BINS) if both else (np.array([]), np.array([]))
    return {
        "rows": len(y),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "precision": float(precision_score(y, passed.astype(np.int64), zero_division=0)) if passed.any() else None,
        "threshold": float(threshold),
        "positives_pct": float(100.0 * y.mean()),
        "calibration": {"prob_true": true.tolist(), "prob_pred": pred.tolist()},
    }


def regressor_metrics(y: np.ndarray, p: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, Any]:
    """MAE and RMSE of predictions ``p`` for ``y`` (label units); ``baseline_mae``: MAE of the
    ``baseline`` predictions (the train-fold mean of ``y``), when given."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    out = {
        "rows": len(y),
        "mae": float(mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
    }
    if baseline is not None:
        out["baseline_mae"] = float(mean_absolute_error(y, baseline))
    return out


def _make_model(kind: str, params: dict[str, Any], seed: int):
    if kind in CLASSIFIERS:
        return xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", random_state=seed, **params)
    return xgb.XGBRegressor(objective="reg:squarederror", random_state=seed, **params)


SMALL_FIT_ROWS = 5000


def _fit(kind: str, params: dict[str, Any], seed: int, X: np.ndarray, y: np.ndarray):
    if len(y) < SMALL_FIT_ROWS and params.get("n_jobs", 1) != 1:
        # Below a few thousand rows a second OpenMP thread costs more than it saves, and on a
        # busy machine its spin-waits cost seconds per fit (measured: 200 rows, 0.16 s with one
        # thread, 3.1 s with two while the other core was busy).
        params = {**params, "n_jobs": 1}
    model = _make_model(kind, params, seed)
    model.fit(X, y.astype(np.int64) if kind in CLASSIFIERS else y)
    return model


def _predict(kind: str, model, X: np.ndarray) -> np.ndarray:
    if kind in CLASSIFIERS:
        return model.predict_proba(X)[:, 1].astype(np.float64)
    return clip_prediction(kind, model.predict(X).astype(np.float64))


def train_walk_forward(
    kind: str,
    X: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    horizons_ms: np.ndarray,
    *,
    feature_names: Sequence[str],
    n_folds: int = 4,
    embargo_ms: int = 0,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    threshold: float = 0.5,
    mode: str = "expanding",
) -> TrainReport:
    """Train model ``kind`` on ``X`` (float32 ``(n, f)``) and ``y`` (float ``(n,)``: 0/1 for
    classifiers) with purged walk-forward validation over ``times`` / ``horizons_ms`` (epoch ms,
    :func:`mlops.core.walkforward.splits` with ``n_folds``, ``embargo_ms``, ``mode``), then
    train the final model on all rows.

    ``params`` override :data:`DEFAULT_PARAMS` (``n_jobs=2`` by default). A fold whose training
    rows are empty (or hold one class, for a classifier) is skipped and says why.
    ``progress(fraction 0..1, message)`` is called after each fold and at the end.
    Raises ``ValueError`` for an unknown kind, mismatched shapes, NaN labels, labels other than
    0/1 for a classifier, or no usable fold.
    """
    if kind not in CLASSIFIERS | REGRESSORS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(CLASSIFIERS | REGRESSORS)}")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    names = tuple(feature_names)
    if X.ndim != 2 or X.shape[0] != len(y) or X.shape[1] != len(names):
        raise ValueError(f"X {X.shape}, y {y.shape}, feature_names {len(names)} do not match")
    if not np.all(np.isfinite(y)):
        raise ValueError("y has NaN or infinite labels")
    classifier = kind in CLASSIFIERS
    if classifier and not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{kind} is a classifier: labels must be 0/1")
    p = {**DEFAULT_PARAMS, **(params or {})}
    folds = splits(times, horizons_ms, n_folds, embargo_ms, mode=mode)
    oof = np.full(len(y), np.nan)
    base = np.full(len(y), np.nan)
    fold_out: list[dict[str, Any]] = []
    steps = len(folds) + 1
    for k, f in enumerate(folds):
        info = f.to_dict()
        ytr = y[f.train_idx]
        if len(f.train_idx) == 0:
            info["skipped"] = "no training rows before the test block after purge and embargo"
        elif classifier and len(np.unique(ytr)) < 2:
            info["skipped"] = f"training rows hold one class only ({int(ytr[0])})"
        elif len(f.test_idx) == 0:
            info["skipped"] = "no test rows"
        else:
            model = _fit(kind, p, seed, X[f.train_idx], ytr)
            pred = _predict(kind, model, X[f.test_idx])
            oof[f.test_idx] = pred
            yte = y[f.test_idx]
            if classifier:
                info["metrics"] = classifier_metrics(yte, pred, threshold)
            else:
                base[f.test_idx] = ytr.mean()
                info["metrics"] = regressor_metrics(yte, pred, base[f.test_idx])
        fold_out.append(info)
        if progress is not None:
            progress((k + 1) / steps, f"fold {k + 1}/{len(folds)}: " + info.get("skipped", "trained"))
    tested = np.flatnonzero(~np.isnan(oof))
    if len(tested) == 0:
        raise ValueError("no usable walk-forward fold: " + "; ".join(f.get("skipped", "") for f in fold_out))
    if classifier:
        pooled = classifier_metrics(y[tested], oof[tested], threshold)
    else:
        pooled = regressor_metrics(y[tested], oof[tested], base[tested])
    final = _fit(kind, p, seed, X, y)
    gain = final.get_booster().get_score(importance_type="gain")
    importance = {name: float(gain.get(f"f{i}", 0.0)) for i, name in enumerate(names)}
    if progress is not None:
        progress(1.0, "final model trained on all rows")
    return TrainReport(
        kind=kind,
        feature_names=names,
        params=p,
        seed=seed,
        n_rows=len(y),
        folds=fold_out,
        pooled=pooled,
        oof_pred=oof,
        importance=importance,
        model=final,
        threshold=float(threshold),
        embargo_ms=int(embargo_ms),
        mode=mode,
    )


def _as_dict(r: TrainReport | dict[str, Any]) -> dict[str, Any]:
    return r.to_dict() if isinstance(r, TrainReport) else r


def promote(
    candidate: TrainReport | dict[str, Any], active: TrainReport | dict[str, Any] | None, *, margin: float = 0.01
) -> tuple[bool, str]:
    """Should ``candidate`` replace ``active``? Compares the pooled walk-forward metric: AUC
    (higher is better) for classifiers, MAE (lower is better, label units) for regressors.

    With an active model the candidate must beat it by more than ``margin``
    (``AUC_c > AUC_a + margin``; ``MAE_c < MAE_a − margin``); with none, it must beat the
    trivial baseline the same way (AUC 0.5; the MAE of predicting the train-fold mean,
    ``pooled["baseline_mae"]``). Returns ``(promoted, reason)``; the reason carries both numbers
    (4 decimals) and the margin. Raises ``ValueError`` when the two are of different kinds.
    """
    c = _as_dict(candidate)
    a = _as_dict(active) if active is not None else None
    if a is not None and a["kind"] != c["kind"]:
        raise ValueError(f"cannot compare a {c['kind']} candidate with a {a['kind']} active model")
    clf = c["kind"] in CLASSIFIERS
    metric = "AUC" if clf else "MAE"
    key = "auc" if clf else "mae"
    cv = c["pooled"].get(key)
    if a is not None:
        other, what = a["pooled"].get(key), "active"
    else:
        other, what = (0.5 if clf else c["pooled"].get("baseline_mae")), "baseline"
    if cv is None:
        return False, f"candidate {metric} undefined (one class in the test blocks): not promoted"
    if other is None:
        return True, f"candidate {metric} {cv:.4f}; {what} {metric} undefined: promoted"
    better = cv > other + margin if clf else cv < other - margin
    verb = "beats" if better else "does not beat"
    return better, f"candidate {metric} {cv:.4f} {verb} {what} {other:.4f} by more than margin {margin:.4f}"


def _trade_stats(pnl: np.ndarray, capital: float) -> dict[str, Any]:
    pnls = [float(x) for x in pnl]
    return {
        "trades": len(pnls),
        "win_rate_pct": win_rate_pct(pnls),
        "profit_factor": profit_factor(pnls),
        "total_pnl": math.fsum(pnls),
        "max_drawdown_pct": max_drawdown_pct(np.concatenate([[capital], capital + np.cumsum(pnls)])),
    }


def gated_vs_ungated(
    pnl_quote: np.ndarray, probs: np.ndarray, threshold: float = 0.5, *, capital: float = 10_000.0
) -> dict[str, Any]:
    """Trades taken with and without a model gate: a trade is kept when ``prob >= threshold``.

    ``pnl_quote``: net P&L per trade (quote, in time order); ``probs``: the model's out-of-fold
    probability for each trade. Each side reports ``trades``, ``win_rate_pct`` (percent,
    ``None`` without trades), ``profit_factor`` (``None`` without a loss), ``total_pnl`` (quote)
    and ``max_drawdown_pct`` (percent, positive) of the equity ``capital + cumsum(pnl)`` — the
    formulas of :mod:`strategies.metrics`. Returns ``{"threshold", "ungated": {...},
    "gated": {...}}``. Raises ``ValueError`` for arrays of different lengths or NaN inputs.
    """
    pnl = np.asarray(pnl_quote, dtype=np.float64)
    pr = np.asarray(probs, dtype=np.float64)
    if pnl.shape != pr.shape or pnl.ndim != 1:
        raise ValueError(f"pnl_quote {pnl.shape} and probs {pr.shape} must be 1-D of one length")
    if not (np.all(np.isfinite(pnl)) and np.all(np.isfinite(pr))):
        raise ValueError("pnl_quote and probs must be finite")
    return {
        "threshold": float(threshold),
        "ungated": _trade_stats(pnl, capital),
        "gated": _trade_stats(pnl[pr >= threshold], capital),
    }
