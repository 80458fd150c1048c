"""Reads of the ML Monitor and the models API: a user's versions grouped by model, a version's
walk-forward tables, live accuracy on real outcomes, feature drift, training jobs.

Every query starts at ``X.objects.for_user(user)`` (another user's version is a 404). Pure
shaping helpers (``fold_rows``, ``importance_rows``, ``trading_rows``, ``calibration_chart``)
take the stored JSON (``ModelVersion.metrics`` / ``importance``) and return rows for templates.

Shapes of the stored JSON (written by the training pipeline)::

    metrics = {"pooled": {"auc", "logloss", "brier", "precision", "n"} | {"mae", "rmse", "n"},
               "folds": [{"fold", "train_end", "test_start", "test_end", "n_train", "n_test", <metric>...}],
               "calibration": {"prob_pred": [...], "prob_true": [...]},
               "trading": {"ungated": {...}, "gated": {...}, "threshold": 0.5}}
    importance = {"feature": gain}
    params["feature_bins"] = {"feature": {"edges": [...], "fractions": [...]}}
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.shortcuts import get_object_or_404

from mlops.core.drift import psi, psi_level
from mlops.models import FeatureSnapshot, ModelKind, ModelVersion, TrainingJob

__all__ = [
    "CLASSIFIER_FOLD_METRICS",
    "REGRESSOR_FOLD_METRICS",
    "TRADING_METRICS",
    "calibration_chart",
    "feature_drift",
    "fold_rows",
    "importance_rows",
    "jobs_for_user",
    "live_accuracy",
    "trading_rows",
    "version_for_user",
    "versions_grouped",
]

CLASSIFIER_FOLD_METRICS = ("auc", "logloss", "brier", "precision")
REGRESSOR_FOLD_METRICS = ("mae", "rmse")
TRADING_METRICS = (
    ("trades", "Trades"),
    ("win_rate_pct", "Win rate %"),
    ("profit_factor", "Profit factor"),
    ("pnl", "P&L"),
    ("max_drawdown_pct", "Max drawdown %"),
)
DRIFT_SNAPSHOTS = 1000
# Below this many live values a PSI is noise (10 bins): shown, but judged "few"
DRIFT_MIN_VALUES = 50


def version_for_user(user, pk: int) -> ModelVersion:
    """The user's version ``pk``; Http404 for another user's or a missing one."""
    return get_object_or_404(ModelVersion.objects.for_user(user), pk=pk)


def versions_grouped(user) -> list[dict]:
    """The user's versions grouped by model, ordered by kind then strategy:
    ``[{"kind", "kind_label", "strategy", "active": ModelVersion | None, "can_rollback": bool,
    "versions": [ModelVersion, newest version first]}]``. ``can_rollback``: some retired version
    was active once (what :func:`mlops.services.registry.version_rollback` needs)."""
    labels = dict(ModelKind.choices)
    groups: dict[tuple[str, str], dict] = {}
    for v in ModelVersion.objects.for_user(user).order_by("kind", "strategy", "-version"):
        g = groups.setdefault(
            (v.kind, v.strategy),
            {
                "kind": v.kind,
                "kind_label": labels.get(v.kind, v.kind),
                "strategy": v.strategy,
                "active": None,
                "can_rollback": False,
                "versions": [],
            },
        )
        g["versions"].append(v)
        if v.status == ModelVersion.Status.ACTIVE:
            g["active"] = v
        elif v.status == ModelVersion.Status.RETIRED and v.activated_at is not None:
            g["can_rollback"] = True
    return list(groups.values())


def jobs_for_user(user, *, limit: int = 20) -> list[TrainingJob]:
    """The user's newest ``limit`` training jobs, each with ``progress_pct`` (0..100 int)."""
    jobs = list(TrainingJob.objects.for_user(user).select_related("version").order_by("-created_at", "-id")[:limit])
    for job in jobs:
        job.progress_pct = progress_pct(job.progress)
    return jobs


def progress_pct(fraction: float | None) -> int:
    """A 0..1 fraction as a whole percent, clamped to 0..100."""
    return round(min(max(fraction or 0.0, 0.0), 1.0) * 100)


def fold_rows(metrics: dict, *, classifier: bool) -> dict:
    """Per-fold walk-forward table: ``{"columns": [metric names], "rows": [{"fold", "train_end",
    "test_start", "test_end", "n_train", "n_test", "values": [{"metric", "value" (float | None)}
    per column]}], "pooled": [{"metric", "value"}] | None}``. Classifiers: AUC, log-loss, Brier,
    precision; regressors: MAE, RMSE."""
    columns = list(CLASSIFIER_FOLD_METRICS if classifier else REGRESSOR_FOLD_METRICS)
    rows = []
    for f in (metrics or {}).get("folds") or []:
        rows.append(
            {
                "fold": f.get("fold"),
                "train_end": f.get("train_end"),
                "test_start": f.get("test_start"),
                "test_end": f.get("test_end"),
                "n_train": f.get("n_train"),
                "n_test": f.get("n_test"),
                "values": [{"metric": c, "value": f.get(c)} for c in columns],
            }
        )
    pooled = (metrics or {}).get("pooled")
    return {
        "columns": columns,
        "rows": rows,
        "pooled": [{"metric": c, "value": pooled.get(c)} for c in columns] if pooled else None,
    }


def importance_rows(importance: dict, *, top: int = 20) -> list[dict]:
    """The ``top`` features by gain, largest first (ties by name): ``[{"feature", "gain",
    "share_pct" (of the total gain, percent), "width_pct" (bar length, percent of the largest)}]``."""
    items = sorted(((float(g), str(n)) for n, g in (importance or {}).items()), key=lambda t: (-t[0], t[1]))
    total = sum(g for g, _ in items if g > 0)
    best = items[0][0] if items and items[0][0] > 0 else 0.0
    return [
        {
            "feature": name,
            "gain": gain,
            "share_pct": round(100 * gain / total, 2) if total else 0.0,
            "width_pct": round(100 * gain / best, 1) if best else 0.0,
        }
        for gain, name in items[:top]
    ]


def trading_rows(metrics: dict) -> dict | None:
    """Gated-vs-ungated backtest over the test blocks: ``{"threshold": float | None, "rows":
    [{"key", "label", "ungated", "gated", "delta"}]}`` (delta = gated − ungated, rounded to 6
    decimals; None when a side is missing), or None without a trading block. P&L in the quote
    currency, percents as percent numbers."""
    trading = (metrics or {}).get("trading")
    if not trading:
        return None
    ungated, gated = trading.get("ungated") or {}, trading.get("gated") or {}
    rows = []
    for key, label in TRADING_METRICS:
        a, b = ungated.get(key), gated.get(key)
        delta = round(b - a, 6) if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append({"key": key, "label": label, "ungated": a, "gated": b, "delta": delta})
    return {"threshold": trading.get("threshold"), "rows": rows}


# Calibration plot geometry: a square SVG viewBox with margins for the axis labels.
CAL_SIZE, CAL_PAD = 300, 52


def calibration_chart(metrics: dict) -> dict | None:
    """Server-rendered calibration (reliability) plot of ``metrics["calibration"]``: mean
    predicted probability (x) vs observed frequency (y), both 0..1, on a ``CAL_SIZE`` px square
    plot area inside a ``CAL_SIZE + 2·CAL_PAD`` viewBox. Returns ``{"size", "pad", "box", "end" (pad + size), "mid",
    "points": "x,y x,y ..." (polyline), "dots": [{"x", "y", "pred", "true"}], "ticks": [{"value" (text),
    "x", "y"}]}`` (SVG coordinates, y grows downward) or None without calibration data."""
    cal = (metrics or {}).get("calibration") or {}
    pred, true = cal.get("prob_pred") or [], cal.get("prob_true") or []
    if not pred or len(pred) != len(true):
        return None

    def sx(p: float) -> float:
        return round(CAL_PAD + p * CAL_SIZE, 1)

    def sy(p: float) -> float:
        return round(CAL_PAD + (1 - p) * CAL_SIZE, 1)

    dots = [{"x": sx(p), "y": sy(t), "pred": p, "true": t} for p, t in zip(pred, true, strict=True)]
    return {
        "size": CAL_SIZE,
        "pad": CAL_PAD,
        "box": CAL_SIZE + 2 * CAL_PAD,
        "end": CAL_PAD + CAL_SIZE,
        "mid": CAL_PAD + CAL_SIZE // 2,
        "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "dots": dots,
        "ticks": [{"value": f"{v / 4:.2f}", "x": sx(v / 4), "y": sy(v / 4)} for v in range(5)],
    }


def _week_start(t: datetime) -> datetime:
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def live_accuracy(version: ModelVersion) -> list[dict]:
    """How ``version`` did on real outcomes: its :class:`FeatureSnapshot` rows whose
    ``outcome`` is known, grouped by the ISO week (Monday 00:00 UTC) of the decision candle,
    oldest first. Classifiers: ``{"week", "n", "accuracy" (fraction of decisions where
    ``score >= 0.5`` matched ``outcome >= 0.5``), "brier" (mean of (score − outcome)²)}``;
    regressors: ``{"week", "n", "mae"}`` (mean |score − outcome|, the target's unit). Values
    rounded to 6 decimals."""
    rows = (
        FeatureSnapshot.objects.for_user(version.owner)
        .filter(version=version, outcome__isnull=False)
        .order_by("time", "id")
        .values_list("time", "score", "outcome")
    )
    weeks: dict[datetime, list[tuple[float, float]]] = {}
    for time, score, outcome in rows:
        weeks.setdefault(_week_start(time), []).append((score, outcome))
    out = []
    for week, pairs in weeks.items():
        n = len(pairs)
        if version.is_classifier:
            hits = sum((s >= 0.5) == (o >= 0.5) for s, o in pairs)
            brier = sum((s - o) ** 2 for s, o in pairs) / n
            out.append({"week": week, "n": n, "accuracy": round(hits / n, 6), "brier": round(brier, 6)})
        else:
            out.append({"week": week, "n": n, "mae": round(sum(abs(s - o) for s, o in pairs) / n, 6)})
    return out


def feature_drift(
    version: ModelVersion, *, limit: int = DRIFT_SNAPSHOTS, min_values: int = DRIFT_MIN_VALUES
) -> list[dict]:
    """PSI (:func:`mlops.core.drift.psi`) of each binned training feature over the newest
    ``limit`` live snapshots scored by ``version`` (those with its ``features_hash`` — values in
    its feature order), largest first: ``[{"feature", "psi" (float | None), "level"
    ("stable" | "moderate" | "shifted" | "none", or "few" below ``min_values`` (default
    :data:`DRIFT_MIN_VALUES`) live values, where a PSI over 10 bins is noise), "n" (finite live values)}]``. Features without
    stored bins are left out; no bins at all gives ``[]``."""
    bins = (version.params or {}).get("feature_bins") or {}
    if not bins:
        return []
    snaps = list(
        FeatureSnapshot.objects.for_user(version.owner)
        .filter(version=version, features_hash=version.features_hash)
        .order_by("-time", "-id")
        .values_list("values", flat=True)[:limit]
    )
    position = {name: i for i, name in enumerate(version.features)}
    rows = []
    for name, b in bins.items():
        i = position.get(name)
        if i is None:
            continue
        column = [v[i] if i < len(v) else None for v in snaps]
        finite = [x for x in column if x is not None and math.isfinite(x)]
        try:
            value = psi(b["edges"], b["fractions"], finite)
        except ValueError:  # malformed bins: no figure rather than a broken page
            value = None
        rows.append(
            {
                "feature": name,
                "psi": None if value is None else round(value, 6),
                "level": "few" if value is not None and len(finite) < min_values else psi_level(value),
                "n": len(finite),
            }
        )
    rows.sort(key=lambda r: (r["psi"] is None, r["level"] == "few", -(r["psi"] or 0.0), r["feature"]))
    return rows
