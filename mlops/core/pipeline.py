"""The training pipeline's pure part: the engine's deals → labels → features → purged
walk-forward XGBoost → the registry's metrics (no Django; the ML service and the retraining
benchmark both run it).

* :func:`simulate_labels` backtests a strategy over a feed with the one engine
  (:func:`mlops.core.labels.simulate`) and returns its label sets by model kind: Smart DCA →
  ``confidence`` (take profit within ``confidence_hours``, default 48 h — see
  :func:`within_hours`), ``recovery_odds``, ``dca_spend``, ``safu_exit``; a detector strategy →
  ``success``, ``take_profit``, ``stop_loss``, ``size_multiplier``, ``hold_hours`` (one label set
  holding all five).
* :func:`feature_frames` computes every symbol's features once (BTC/USDT's candles as the
  reference; BTC itself against its own).
* :func:`train_kind` joins labels and features (the deal models — :data:`DEAL_KINDS` — take
  the label set's deal-state columns :data:`~mlops.core.deal_features.DEAL_FEATURE_NAMES`
  after the candle features, so their ``feature_names`` and hash include them), trains with an embargo of the longest label
  horizon, and returns the report with the registry's metrics shape (:func:`registry_metrics`),
  the gated-vs-ungated trading metric for the entry classifiers and the drift bins.

Raises :class:`PipelineError` (one line, for users) when the data cannot make a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BTC_SYMBOL",
    "CONFIDENCE_HOURS",
    "DCA_KINDS",
    "DEAL_KINDS",
    "DETECTOR_KINDS",
    "MIN_ROWS",
    "PipelineError",
    "TrainOutcome",
    "feature_bins",
    "feature_frames",
    "registry_metrics",
    "simulate_labels",
    "train_kind",
    "within_hours",
]

MIN_ROWS = 30
CONFIDENCE_HOURS = 48.0
BTC_SYMBOL = "BTC/USDT"
DCA_KINDS = ("confidence", "recovery_odds", "dca_spend", "safu_exit")
DEAL_KINDS = frozenset({"recovery_odds", "dca_spend", "safu_exit"})  # + the deal-state features
DETECTOR_KINDS = ("success", "take_profit", "stop_loss", "size_multiplier", "hold_hours")
GATED_KINDS = {"confidence": "pnl_pct", "success": "pnl_pct"}


class PipelineError(ValueError):
    """The data cannot make this model; the message is one line, for users."""


@dataclass
class TrainOutcome:
    """``report``: the :class:`~mlops.core.train.TrainReport` (final model in ``report.model``);
    ``metrics``: the registry's metrics shape; ``bins``: drift bins; ``rows``, ``dropped``,
    ``embargo_ms``: the dataset's size, rows left out by reason, the embargo used."""

    report: Any
    metrics: dict[str, Any]
    bins: dict[str, Any]
    rows: int
    dropped: dict[str, int]
    embargo_ms: int
    feature_names: tuple[str, ...]


def simulate_labels(
    strategy: str,
    params: Mapping[str, Any],
    feed,
    symbols,
    *,
    start_ms: int,
    end_ms: int,
    risk: dict[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
):
    """``(result, {kind: LabelSet})`` of ``strategy`` backtested over ``feed`` (module doc).
    ``options``: ``drawdown_pct`` (3), ``recovery_hours`` (24), ``confidence_hours`` (48).
    Raises :class:`PipelineError` for bad params or a run without any closed deal."""
    from strategies.backtest import BacktestInputError
    from strategies.base import ParamError
    from strategies.registry import StrategyNotFound, get_strategy

    from .labels import detector_labels, simulate, smart_dca_labels

    opts = dict(options or {})
    try:
        params = get_strategy(strategy).validate_params(dict(params))  # defaults filled, as the run sees them
    except (ParamError, StrategyNotFound) as exc:
        raise PipelineError(f"invalid params: {exc}") from None
    try:
        result = simulate(strategy, params, feed, list(symbols), start_ms=start_ms, end_ms=end_ms, risk=risk)
    except BacktestInputError as exc:
        raise PipelineError(str(exc)) from None
    if not result.trades:
        raise PipelineError(f"{strategy} closed no deal over the window: nothing to learn from")
    if strategy == "smart_dca":
        sets = smart_dca_labels(
            result,
            feed,
            params,
            drawdown_pct=float(opts.get("drawdown_pct", 3.0)),
            recovery_hours=float(opts.get("recovery_hours", 24.0)),
        )
        sets["confidence"] = within_hours(sets["confidence"], float(opts.get("confidence_hours", CONFIDENCE_HOURS)))
        return result, sets
    labels = detector_labels(result, feed)
    return result, dict.fromkeys(DETECTOR_KINDS, labels)


def feature_frames(feed, symbols, btc=None) -> dict[str, Any]:
    """``{symbol: FeatureFrame}`` over each symbol's candles in ``feed`` (module doc)."""
    from .features import compute_features

    out = {}
    for sym in symbols:
        c = feed.candles(sym)
        out[sym] = compute_features(c, btc=c if sym == BTC_SYMBOL else btc)
    return out


def train_kind(
    kind: str,
    labels,
    frames: Mapping[str, Any],
    *,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> TrainOutcome:
    """Train model ``kind`` on ``labels`` joined with ``frames`` (module doc). ``options``:
    ``folds`` (4), ``params`` (XGBoost), ``seed`` (0), ``threshold`` (0.5, the gate);
    ``extra``: more rows ``(X, y, times_ms, horizons_ms)`` — real outcomes of bots — appended
    before training. Raises :class:`PipelineError`."""
    from .datasets import build_dataset
    from .deal_features import DEAL_FEATURE_NAMES
    from .train import gated_vs_ungated, train_walk_forward

    opts = dict(options or {})
    data = build_dataset(frames, labels, kind, DEAL_FEATURE_NAMES if kind in DEAL_KINDS else ())
    X, y, times, horizons = data.X, data.y, data.times, data.horizons_ms
    if extra is not None and len(extra[1]):
        X = np.vstack([X, extra[0].astype(np.float32)])
        y = np.concatenate([y, extra[1]])
        times = np.concatenate([times, extra[2]])
        horizons = np.concatenate([horizons, extra[3]])
    if len(y) < MIN_ROWS:
        raise PipelineError(
            f"only {len(y)} usable rows for {kind} (need {MIN_ROWS}; dropped {data.dropped}): "
            "widen the window or add symbols"
        )
    embargo = int(horizons.max())
    try:
        report = train_walk_forward(
            kind,
            X,
            y,
            times,
            horizons,
            feature_names=data.feature_names,
            n_folds=int(opts.get("folds", 4)),
            embargo_ms=embargo,
            params=dict(opts.get("params") or {}),
            seed=int(opts.get("seed", 0)),
            progress=progress,
        )
    except ValueError as exc:
        raise PipelineError(f"training failed: {exc}") from None
    metrics = registry_metrics(report.to_dict())
    col = GATED_KINDS.get(kind)
    if col and col in labels.labels:
        oof = np.asarray(report.oof_pred[: len(data)], dtype=np.float64)
        ok = np.isfinite(oof)
        if ok.any():
            # the simulated deals the model scored out of fold: P&L on a 100-quote stake (pnl_pct)
            gate = gated_vs_ungated(
                _context(labels, data, col)[ok], oof[ok], threshold=float(opts.get("threshold", 0.5)), capital=10_000.0
            )
            metrics["trading"] = {
                "threshold": gate["threshold"],
                **{side: _trade_row(gate[side]) for side in ("ungated", "gated")},
            }
    return TrainOutcome(
        report=report,
        metrics=metrics,
        bins=feature_bins(X, data.feature_names),
        rows=len(y),
        dropped=data.dropped,
        embargo_ms=embargo,
        feature_names=tuple(data.feature_names),
    )


def _trade_row(side: dict[str, Any]) -> dict[str, Any]:
    return {
        "trades": side["trades"],
        "win_rate_pct": side["win_rate_pct"],
        "profit_factor": side["profit_factor"],
        "pnl": side["total_pnl"],
        "max_drawdown_pct": side["max_drawdown_pct"],
    }


def feature_bins(X: np.ndarray, names, n_bins: int = 10) -> dict[str, dict[str, list[float]]]:
    """Decile bins of every feature column of ``X`` (float, NaN ignored) for drift checks:
    ``{name: {"edges": [e0..ek] (k + 1 increasing, duplicates merged), "fractions": [f1..fk]
    (share of the training rows per bin, sum 1)}}``; a constant column has one bin."""
    out: dict[str, dict[str, list[float]]] = {}
    for j, name in enumerate(names):
        col = X[:, j].astype(np.float64)
        col = col[np.isfinite(col)]
        if len(col) == 0:
            continue
        edges = np.unique(np.quantile(col, np.linspace(0.0, 1.0, n_bins + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0], edges[0]])
            counts = np.array([len(col)])
        else:
            counts, _ = np.histogram(col, bins=edges)
        out[name] = {"edges": [float(e) for e in edges], "fractions": [float(c) / len(col) for c in counts]}
    return out


def within_hours(labels, hours: float):
    """``confidence`` = the deal reached its take profit **within** ``hours`` of the decision.

    A Smart DCA deal without a stop loss reaches its take profit sooner or later (deals still
    open at the end are censored), so "reached TP" alone is 1 for nearly every deal; what a
    trader wants to know at the base order is whether it will close soon, without sitting in a
    drawdown for days. The label's horizon stays the deal's whole life (conservative purge)."""
    from .labels import LabelSet

    y = labels.labels["confidence"]
    quick = (y == 1.0) & (labels.horizon_ms <= hours * 3_600_000)
    new = dict(labels.labels)
    new["confidence"] = np.where(np.isnan(y), np.nan, quick.astype(np.float64))
    return LabelSet(labels.symbol, labels.time, labels.horizon_ms, new)


def registry_metrics(out: dict[str, Any]) -> dict[str, Any]:
    """The ``ModelVersion.metrics`` shape from a ``TrainReport.to_dict()``: ``{"kind", "pooled":
    {auc, logloss, brier, precision, n ...} | {mae, rmse, baseline_mae, n}, "folds": [{fold,
    train_end, test_start, test_end (ISO), n_train, n_test, <metrics> | skipped}],
    "calibration": {prob_pred, prob_true}}`` (classifiers)."""
    from strategies.backtest import iso

    pooled = dict(out.get("pooled") or {})
    calibration = pooled.pop("calibration", None)
    if "log_loss" in pooled:
        pooled["logloss"] = pooled["log_loss"]
    pooled["n"] = pooled.get("rows", out.get("n_rows"))
    folds = []
    for k, f in enumerate(out.get("folds") or []):
        row = {
            "fold": k,
            "train_end": iso(f["train_end_ms"]) if f.get("train_end_ms") is not None else None,
            "test_start": iso(f["test_start_ms"]) if f.get("test_start_ms") is not None else None,
            "test_end": iso(f["test_end_ms"]) if f.get("test_end_ms") is not None else None,
            "n_train": f.get("train_rows"),
            "n_test": f.get("test_rows"),
        }
        m = dict(f.get("metrics") or {})
        m.pop("calibration", None)
        if "log_loss" in m:
            m["logloss"] = m["log_loss"]
        row.update(m)
        if f.get("skipped"):
            row["skipped"] = f["skipped"]
        folds.append(row)
    metrics: dict[str, Any] = {"kind": out.get("kind"), "pooled": pooled, "folds": folds}
    if calibration:
        metrics["calibration"] = {"prob_pred": calibration.get("prob_pred"), "prob_true": calibration.get("prob_true")}
    return metrics


def _context(labels, data, column: str) -> np.ndarray:
    """The label set's context ``column`` for the dataset's rows (matched on symbol and time),
    as P&L on a 100-quote stake when it is a percent."""
    key = {(s, int(t)): i for i, (s, t) in enumerate(zip(labels.symbol, labels.time, strict=True))}
    idx = np.array([key[(s, int(t))] for s, t in zip(data.symbols, data.times, strict=True)], dtype=np.int64)
    return labels.labels[column][idx] if len(idx) else np.array([], dtype=np.float64)
