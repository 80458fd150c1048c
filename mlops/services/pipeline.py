"""The training pipeline of one :class:`~mlops.models.TrainingJob`: candles → features → labels
from the one engine → purged walk-forward XGBoost → artifact → a ``candidate`` version → the
promotion rule.

1. **Candles** of the job's symbols from the database with the backtests' warm-up
   (:func:`strategies.services.backtests.backtest_feed`), plus BTC/USDT as the market reference
   for the BTC features when it is stored.
2. **Labels**: the job's strategy is backtested over the window by the engine
   (:func:`mlops.core.labels.simulate`, what ``manage.py backtest`` runs) and its deals become
   decision-point labels (:func:`~mlops.core.labels.smart_dca_labels` for ``confidence`` —
   here "take profit within ``confidence_hours``", default 48 h, see :func:`mlops.core.pipeline.within_hours` —
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
from mlops.core.pipeline import (
    BTC_SYMBOL,
    MIN_ROWS,
    PipelineError,
    feature_bins,
    feature_frames,
    registry_metrics,
    simulate_labels,
    train_kind,
    within_hours,
)
from mlops.models import FeatureSnapshot, ModelVersion, TrainingJob

__all__ = [
    "MIN_ROWS",
    "PipelineError",
    "feature_bins",
    "load_job_data",
    "real_outcome_rows",
    "registry_metrics",
    "train_pipeline",
    "within_hours",
]

REAL_OUTCOME_HORIZON_MS = 48 * 3_600_000


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


def real_outcome_rows(job: TrainingJob, feature_names) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real outcomes of the owner's bots for ``job``'s kind and strategy: the feature snapshots
    stored when an active model scored a deal (same feature set), whose outcome is known, with
    decision times inside the job's window and on its symbols. Returns ``(X float32, y, times
    ms, horizons ms)`` (horizon 48 h: the confidence label's)."""
    from mlops.core.features import feature_hash

    qs = FeatureSnapshot.objects.filter(
        owner_id=job.owner_id,
        kind=job.kind,
        version__strategy=job.strategy,
        outcome__isnull=False,
        features_hash=feature_hash(feature_names),
        symbol__in=list(job.symbols),
        time__gte=job.start,
        time__lte=job.end,
    ).order_by("time", "pk")
    rows = list(qs.values_list("values", "outcome", "time"))
    if not rows:
        return np.zeros((0, len(feature_names)), np.float32), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    X = np.array([[np.nan if v is None else v for v in r[0]] for r in rows], dtype=np.float32)
    y = np.array([r[1] for r in rows], dtype=np.float64)
    t = np.array([dt_to_ms(r[2]) for r in rows], dtype=np.int64)
    return X, y, t, np.full(len(rows), REAL_OUTCOME_HORIZON_MS, dtype=np.int64)


def train_pipeline(job: TrainingJob, *, progress: Callable[[float, str], None]) -> tuple[ModelVersion, dict]:
    """Run the pipeline (module doc) for ``job``; returns ``(candidate version, report dict)``.
    Raises :class:`PipelineError`."""
    from mlops.core.artifacts import save_booster
    from mlops.core.features import feature_hash
    from mlops.services.registry import version_promote

    progress(0.01, "loading candles")
    feed, btc, inputs = load_job_data(job)
    symbols = inputs_symbols(inputs)
    progress(0.05, f"backtesting {job.strategy} over {len(symbols)} symbols")
    result, sets = simulate_labels(
        job.strategy,
        inputs.params,
        feed,
        symbols,
        start_ms=dt_to_ms(inputs.start),
        end_ms=dt_to_ms(inputs.end),
        risk=inputs.risk,
        options=job.options,
    )
    labels = sets[job.kind]
    progress(0.25, f"{len(labels)} labelled decision points; computing features")
    frames = feature_frames(feed, symbols, btc)
    names = next(iter(frames.values())).names
    extra = real_outcome_rows(job, names) if job.kind in ("confidence", "success") else None
    outcome = train_kind(
        job.kind,
        labels,
        frames,
        options=job.options,
        progress=lambda f, msg: progress(0.35 + 0.55 * f, msg),
        extra=extra,
    )
    progress(0.92, "saving the model")
    directory = settings.MARKET7_MODELS_DIR / f"u{job.owner_id}"
    out = outcome.report.to_dict()
    with transaction.atomic():
        last = (
            ModelVersion.objects.select_for_update()
            .filter(owner=job.owner, kind=job.kind, strategy=job.strategy)
            .aggregate(m=Max("version"))["m"]
        )
        number = (last or 0) + 1
        path, sha = save_booster(outcome.report.model, directory, f"{job.kind}-{job.strategy}-v{number}")
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
            horizon_hours=outcome.embargo_ms / 3_600_000,
            features=list(outcome.feature_names),
            features_hash=feature_hash(outcome.feature_names),
            params={
                "xgboost": out.get("params", {}),
                "options": dict(job.options),
                "strategy_params": inputs.params,
                "feature_bins": outcome.bins,
            },
            metrics=outcome.metrics,
            importance=out.get("importance", {}),
            n_rows=outcome.rows,
            artifact_path=str(path.relative_to(settings.MARKET7_MODELS_DIR)),
            artifact_sha256=sha,
        )
    promoted, reason = version_promote(version=version)
    progress(1.0, reason)
    version.refresh_from_db()
    summary = {
        "rows": outcome.rows,
        "real_outcomes": 0 if extra is None else len(extra[1]),
        "dropped": outcome.dropped,
        "deals": len(result.trades),
        "version": version.version,
        "promoted": promoted,
        "reason": reason,
        "pooled": outcome.metrics.get("pooled", {}),
        "trading": outcome.metrics.get("trading"),
    }
    return version, _json_safe(summary)


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
