"""Training jobs: create (validated, queued on the ``research`` queue), execute (claimed once,
progress written as it goes, failures recorded with their error), and the weekly retraining.

``training_job_create`` checks every input and saves nothing when one is bad
(:class:`TrainingError`, one line for users). ``training_job_execute`` claims a queued job with
a conditional ``UPDATE`` (a duplicate delivery of the task does nothing), runs the pipeline of
:mod:`mlops.services.pipeline` — candles → features → labels from the one engine → purged
walk-forward XGBoost → artifact → a ``candidate`` version → the promotion rule — and ends
``done`` (with its version) or ``failed`` (with the error message); it never raises.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mlops.models import ModelKind, ModelVersion, TrainingJob

log = logging.getLogger(__name__)

__all__ = [
    "DCA_KINDS",
    "DETECTOR_KINDS",
    "TrainingError",
    "retrain_active_models",
    "training_job_create",
    "training_job_execute",
]

DCA_KINDS = frozenset({"confidence", "recovery_odds", "dca_spend", "safu_exit"})
DETECTOR_KINDS = frozenset({"success", "take_profit", "stop_loss", "size_multiplier", "hold_hours"})
DETECTOR_STRATEGIES = ("fork_score", "scalping", "dca_detector", "swing", "channel")
MAX_SYMBOLS = 50


class TrainingError(ValueError):
    """Bad training inputs; the message is one line, for users."""


def _check_kind(kind: str, strategy: str) -> None:
    if kind not in ModelKind.values:
        raise TrainingError(f"unknown model kind {kind!r}; choose one of {', '.join(ModelKind.values)}")
    if kind in DCA_KINDS and strategy != "smart_dca":
        raise TrainingError(f"model kind {kind!r} learns Smart DCA deals: strategy must be smart_dca")
    if kind in DETECTOR_KINDS and strategy not in DETECTOR_STRATEGIES:
        raise TrainingError(
            f"model kind {kind!r} learns detector signals: strategy must be one of {', '.join(DETECTOR_STRATEGIES)}"
        )


def training_job_create(
    *,
    user,
    kind: str,
    strategy: str,
    symbols: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    exchange: str = "binance",
    options: dict[str, Any] | None = None,
    source: str = TrainingJob.Source.PAGE,
    enqueue: bool = True,
) -> TrainingJob:
    """Validate and save a queued :class:`TrainingJob` owned by ``user``; with ``enqueue`` start
    it on the ``research`` queue after commit.

    ``start``/``end``: aware datetimes (open times of the first and last training candle);
    ``symbols``: ccxt symbols with stored candles of ``timeframe`` covering the window;
    ``options``: ``{"folds": 2..10, "params": {xgboost...}, "tp_pct", "sl_pct", "horizon"}``
    (see :mod:`mlops.services.pipeline`). Raises :class:`TrainingError`; nothing is saved then.
    """
    from strategies.services.backtests import BacktestError, backtest_validate

    _check_kind(kind, strategy)
    symbols = [s.strip() for s in symbols if s and s.strip()]
    if not symbols:
        raise TrainingError("give at least one symbol")
    if len(symbols) > MAX_SYMBOLS:
        raise TrainingError(f"at most {MAX_SYMBOLS} symbols per training job")
    options = dict(options or {})
    folds = options.get("folds", 4)
    if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= 10:
        raise TrainingError("folds must be an integer from 2 to 10")
    if end - start < timedelta(days=14):
        raise TrainingError("the training window must span at least 14 days")
    try:
        v = backtest_validate(
            strategy=strategy,
            symbols=symbols,
            timeframe=timeframe,
            start=start,
            end=end,
            capital=10_000,
            exchange=exchange,
        )
    except BacktestError as exc:
        raise TrainingError(str(exc)) from None
    with transaction.atomic():
        job = TrainingJob.objects.create(
            owner=user,
            kind=kind,
            strategy=strategy,
            exchange=exchange,
            symbols=[m.symbol for m in v.markets],
            timeframe=timeframe,
            start=v.start,
            end=v.end,
            options=options,
            source=source,
        )
        if enqueue:
            from mlops.tasks import train_model

            transaction.on_commit(lambda: train_model.apply_async(args=[job.pk], queue="research"))
    return job


def _claim(job_id: int) -> bool:
    now = timezone.now()
    return bool(
        TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.QUEUED).update(
            status=TrainingJob.Status.RUNNING, started_at=now, progress=0.0, message="starting"
        )
    )


def _progress(job_id: int):
    last = [-1.0]

    def report(fraction: float, message: str) -> None:
        fraction = max(0.0, min(1.0, float(fraction)))
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            TrainingJob.objects.filter(pk=job_id).update(progress=fraction, message=message[:200])

    return report


def training_job_execute(*, job_id: int) -> TrainingJob:
    """Run queued job ``job_id`` to ``done`` or ``failed`` (see module doc). A job that is not
    queued (already claimed by another delivery) is returned unchanged."""
    from mlops.services.pipeline import PipelineError, train_pipeline

    if not _claim(job_id):
        return TrainingJob.objects.get(pk=job_id)
    job = TrainingJob.objects.get(pk=job_id)
    try:
        version, report = train_pipeline(job, progress=_progress(job_id))
    except PipelineError as exc:
        return _finish(job_id, status=TrainingJob.Status.FAILED, error=str(exc))
    except Exception as exc:  # a training bug must not leave the job "running" forever
        log.exception("training job %s failed", job_id)
        return _finish(job_id, status=TrainingJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    return _finish(job_id, status=TrainingJob.Status.DONE, version=version, report=report)


def _finish(job_id: int, *, status: str, error: str = "", version: ModelVersion | None = None, report=None):
    fields = {"status": status, "finished_at": timezone.now(), "error": error[:2000]}
    if status == TrainingJob.Status.DONE:
        fields.update(progress=1.0, message="done", version=version, report=report or {})
    else:
        fields.update(message="failed")
    TrainingJob.objects.filter(pk=job_id).update(**fields)
    return TrainingJob.objects.get(pk=job_id)


def retrain_active_models(*, now: datetime | None = None) -> list[int]:
    """Queue one retraining job per active version (the weekly beat): same kind, strategy,
    symbols, timeframe and options, on the newest ``MARKET7_ML_RETRAIN_DAYS`` days up to the
    last closed day, so the newest outcomes are included; the promotion rule then decides.
    A version whose inputs no longer validate is skipped with a log line. Returns job ids."""
    now = now or timezone.now()
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=settings.MARKET7_ML_RETRAIN_DAYS)
    ids = []
    for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).select_related("owner").order_by("pk"):
        try:
            job = training_job_create(
                user=v.owner,
                kind=v.kind,
                strategy=v.strategy,
                symbols=list(v.symbols),
                timeframe=v.timeframe,
                start=start,
                end=end,
                exchange=v.exchange,
                options=dict(v.params.get("options", {})),
                source=TrainingJob.Source.SCHEDULE,
            )
        except TrainingError as exc:
            log.warning("retraining of %s (owner %s) skipped: %s", v, v.owner_id, exc)
            continue
        ids.append(job.pk)
    return ids
