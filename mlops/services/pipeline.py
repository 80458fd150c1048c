"""The training pipeline of one :class:`~mlops.models.TrainingJob`: candles → features → labels
from the one engine → purged walk-forward XGBoost → artifact → a ``candidate`` version → the
promotion rule.

1. **Candles** of the job's symbols from the database with the backtests' warm-up
   (:func:`strategies.services.backtests.backtest_feed`), plus BTC/USDT as the market reference
   for the BTC features when it is stored.
2. **Labels**: the job's strategy is backtested over the window by the engine
   (:func:`mlops.core.labels.simulate`, what ``manage.py backtest`` runs) and its deals become
   decision-point labels (:func:`~mlops.core.labels.smart_dca_labels` for ``confidence`` —
   here "take profit within ``confidence_hours``", default 48 h, see :func:`_within_hours` —
   ``recovery_odds``, ``dca_spend``, ``safu_exit``; :func:`~mlops.core.labels.detector_labels`
   for ``success``, ``take_profit``, ``stop_loss``, ``size_multiplier``, ``hold_hours``).
3. **Features** (:func:`mlops.core.features.compute_features`) joined on (symbol, time).
4. **Purged walk-forward** training (:func:`mlops.core.train.train_walk_forward`) with an
   embargo of the longest label horizon; for the entry classifiers (``confidence``,
   ``success``) the trading metric: the deals gated by the out-of-fold probability versus all
   deals (:func:`~mlops.core.train.gated_vs_ungated`).
5. The final booster is saved in XGBoost's JSON format under ``MARKET7_MODELS_DIR/u<owner>/``
   (hash on the row), the training distribution of every feature is kept as decile bins for
   drift (PSI) checks, a ``candidate`` version is created and the promotion rule runs.

Raises :class:`PipelineError` (one line, for users) when the data cannot make a model: no
deals in the window, too few labelled rows, one class only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from market7.timeframes import dt_to_ms
from mlops.models import ModelVersion, TrainingJob

__all__ = ["MIN_ROWS", "PipelineError", "feature_bins", "train_pipeline", "load_job_data"]

MIN_ROWS = 30
CONFIDENCE_HOURS = 48.0
BTC_SYMBOL = "BTC/USDT"
DCA_LABEL_KINDS = ("confidence", "recovery_odds", "dca_spend", "safu_exit")
GATED_KINDS = {"confidence": "pnl_pct", "success": "pnl_pct"}


class PipelineError(ValueError):
    """The data cannot make this model; the message is one line, for users."""


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


def load_job_data(job: TrainingJob):
    """``(feed, btc, inputs)`` for ``job``: the backtest feed of its symbols and window (with
    warm-up) and BTC/USDT's candles over the same span (None when not stored)."""
    from strategies.engine import Candles
    from strategies.services.backtests import BacktestError, backtest_feed, backtest_validate
    from trading.models import Market
    from trading.selectors.candles import candles_arrays

    try:
        inputs = backtest_validate(
            strategy=job.strategy,
            symbols=list(job.symbols),
            timeframe=job.timeframe,
            start=job.start,
            end=job.end,
            capital=10_000,
            params=dict(job.options.get("strategy_params") or {}),
            exchange=job.exchange,
        )
    except BacktestError as exc:
        raise PipelineError(str(exc)) from None
    feed = backtest_feed(inputs)
    btc = None
    if BTC_SYMBOL in feed:
        btc = feed.candles(BTC_SYMBOL)
    else:
        market = Market.objects.filter(exchange__name=job.exchange, symbol=BTC_SYMBOL).first()
        if market is not None:
            first = min(int(feed.candles(s).time[0]) for s in inputs_symbols(inputs))
            arrays = candles_arrays(market=market, timeframe=job.timeframe, start=first, end=dt_to_ms(job.end) + 1)
            if len(arrays["time"]):
                btc = Candles(**arrays)
    return feed, btc, inputs


def inputs_symbols(inputs) -> list[str]:
    return [m.symbol for m in inputs.markets]


def _labels(job: TrainingJob, feed, inputs, progress):
    from mlops.core.labels import detector_labels, simulate, smart_dca_labels
    from strategies.backtest import BacktestInputError

    progress(0.05, f"backtesting {job.strategy} over {len(job.symbols)} symbols")
    try:
        result = simulate(
            job.strategy,
            inputs.params,
            feed,
            inputs_symbols(inputs),
            start_ms=dt_to_ms(inputs.start),
            end_ms=dt_to_ms(inputs.end),
            risk=inputs.risk,
        )
    except BacktestInputError as exc:
        raise PipelineError(str(exc)) from None
    if not result.trades:
        raise PipelineError(f"{job.strategy} closed no deal over the window: nothing to learn from")
    if job.kind in DCA_LABEL_KINDS:
        opts = job.options
        sets = smart_dca_labels(
            result,
            feed,
            inputs.params,
            drawdown_pct=float(opts.get("drawdown_pct", 3.0)),
            recovery_hours=float(opts.get("recovery_hours", 24.0)),
        )
        labels = sets[job.kind]
        if job.kind == "confidence":
            labels = _within_hours(labels, float(opts.get("confidence_hours", CONFIDENCE_HOURS)))
        return result, labels
    return result, detector_labels(result, feed)


def _within_hours(labels, hours: float):
    """``confidence`` = the deal reached its take profit **within** ``hours`` of the decision.

    A Smart DCA deal without a stop loss reaches its take profit sooner or later (deals still
    open at the end are censored), so "reached TP" alone is 1 for nearly every deal; what a
    trader wants to know at the base order is whether it will close soon, without sitting in a
    drawdown for days. The label's horizon stays the deal's whole life (conservative purge)."""
    from mlops.core.labels import LabelSet

    y = labels.labels["confidence"]
    quick = (y == 1.0) & (labels.horizon_ms <= hours * 3_600_000)
    new = dict(labels.labels)
    new["confidence"] = np.where(np.isnan(y), np.nan, quick.astype(np.float64))
    return LabelSet(labels.symbol, labels.time, labels.horizon_ms, new)


def train_pipeline(job: TrainingJob, *, progress: Callable[[float, str], None]) -> tuple[ModelVersion, dict]:
    """Run the pipeline (module doc) for ``job``; returns ``(candidate version, report dict)``.
    Raises :class:`PipelineError`."""
    from mlops.core.artifacts import save_booster
    from mlops.core.datasets import build_dataset
    from mlops.core.features import compute_features, feature_hash
    from mlops.core.train import gated_vs_ungated, train_walk_forward
    from mlops.services.registry import version_promote

    progress(0.01, "loading candles")
    feed, btc, inputs = load_job_data(job)
    result, labels = _labels(job, feed, inputs, progress)
    progress(0.25, f"{len(labels)} labelled decision points; computing features")
    frames = {}
    for sym in inputs_symbols(inputs):
        c = feed.candles(sym)
        frames[sym] = compute_features(c, btc=btc if sym != BTC_SYMBOL or btc is not None else c)
    data = build_dataset(frames, labels, job.kind)
    if len(data) < MIN_ROWS:
        raise PipelineError(
            f"only {len(data)} usable rows for {job.kind} (need {MIN_ROWS}; dropped {data.dropped}): "
            "widen the window or add symbols"
        )
    embargo = int(data.horizons_ms.max()) if len(data) else 0
    opts = job.options

    def fold_progress(f: float, msg: str) -> None:
        progress(0.35 + 0.55 * f, msg)

    try:
        report = train_walk_forward(
            job.kind,
            data.X,
            data.y,
            data.times,
            data.horizons_ms,
            feature_names=data.feature_names,
            n_folds=int(opts.get("folds", 4)),
            embargo_ms=embargo,
            params=dict(opts.get("params") or {}),
            seed=int(opts.get("seed", 0)),
            progress=fold_progress,
        )
    except ValueError as exc:
        raise PipelineError(f"training failed: {exc}") from None
    out = report.to_dict()
    metrics = registry_metrics(out)
    ctx_col = GATED_KINDS.get(job.kind)
    if ctx_col and ctx_col in labels.labels:
        oof = np.asarray(report.oof_pred, dtype=np.float64)
        ok = np.isfinite(oof)
        if ok.any():
            # P&L of each deal on a 100-quote stake (pnl_pct), judged on the deals the model scored
            gate = gated_vs_ungated(_context(labels, data, ctx_col)[ok], oof[ok], threshold=0.5, capital=10_000.0)
            metrics["trading"] = {
                "threshold": gate["threshold"],
                **{side: _trade_row(gate[side]) for side in ("ungated", "gated")},
            }
    progress(0.92, "saving the model")
    directory = settings.MARKET7_MODELS_DIR / f"u{job.owner_id}"
    with transaction.atomic():
        last = (
            ModelVersion.objects.select_for_update()
            .filter(owner=job.owner, kind=job.kind, strategy=job.strategy)
            .aggregate(m=Max("version"))["m"]
        )
        number = (last or 0) + 1
        path, sha = save_booster(report.booster, directory, f"{job.kind}-{job.strategy}-v{number}")
        version = ModelVersion.objects.create(
            owner=job.owner,
            kind=job.kind,
            strategy=job.strategy,
            version=number,
            exchange=job.exchange,
            symbols=list(job.symbols),
            timeframe=job.timeframe,
            train_start=job.start,
            train_end=job.end,
            horizon_hours=embargo / 3_600_000,
            features=list(data.feature_names),
            features_hash=feature_hash(data.feature_names),
            params={
                "xgboost": out.get("params", {}),
                "options": dict(opts),
                "strategy_params": inputs.params,
                "feature_bins": feature_bins(data.X, data.feature_names),
            },
            metrics=metrics,
            importance=out.get("importance", {}),
            n_rows=len(data),
            artifact_path=str(path.relative_to(settings.MARKET7_MODELS_DIR)),
            artifact_sha256=sha,
        )
    promoted, reason = version_promote(version=version)
    progress(1.0, reason)
    version.refresh_from_db()
    summary = {
        "rows": len(data),
        "dropped": data.dropped,
        "deals": len(result.trades),
        "version": version.version,
        "promoted": promoted,
        "reason": reason,
        "pooled": metrics.get("pooled", {}),
        "trading": metrics.get("trading"),
    }
    return version, _json_safe(summary)


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


def _trade_row(side: dict[str, Any]) -> dict[str, Any]:
    return {
        "trades": side["trades"],
        "win_rate_pct": side["win_rate_pct"],
        "profit_factor": side["profit_factor"],
        "pnl": side["total_pnl"],
        "max_drawdown_pct": side["max_drawdown_pct"],
    }


def _context(labels, data, column: str) -> np.ndarray:
    """The label set's context ``column`` for the dataset's rows (matched on symbol and time),
    as P&L on a 100-quote stake when it is a percent."""
    key = {(s, int(t)): i for i, (s, t) in enumerate(zip(labels.symbol, labels.time, strict=True))}
    idx = np.array([key[(s, int(t))] for s, t in zip(data.symbols, data.times, strict=True)], dtype=np.int64)
    return labels.labels[column][idx] if len(idx) else np.array([], dtype=np.float64)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
