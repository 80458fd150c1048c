"""The scheduled retraining: a weekly beat entry on the research queue that queues one job per
active model on the newest window; the promotion rule then decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import TestCase

from mlops.models import TrainingJob
from tests.mlops.test_registry import make_version
from trading.services.candles import candles_import

pytestmark = pytest.mark.django_db


def test_retrain_beat_entry_is_weekly_on_research_and_expires(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from market7.celery import app

    entry = app.conf.beat_schedule["ml-retrain"]
    assert entry == {
        "task": "mlops.tasks.retrain_active",
        "schedule": 604800.0,
        "options": {"queue": "research", "expires": 3600, "expire_seconds": 3600},
    }
    ModelEntry.from_entry("ml-retrain", app=app, **entry)
    task = PeriodicTask.objects.get(name="ml-retrain")
    assert (task.queue, task.expire_seconds, task.interval.every, task.interval.period) == (
        "research",
        3600,
        604800,
        "seconds",
    )


def test_every_active_model_is_retrained_on_the_newest_window(
    bundled_data_dir, user, other_user, settings, monkeypatch
):
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    settings.MARKET7_ML_RETRAIN_DAYS = 90
    enqueued = []
    monkeypatch.setattr("mlops.tasks.train_model.apply_async", lambda args, queue: enqueued.append((args[0], queue)))
    active = make_version(user, 1, status="active")
    active.symbols, active.params = ["BTC/USDT", "ETH/USDT"], {"options": {"folds": 3}}
    active.save()
    make_version(user, 2)  # a candidate is not retrained
    make_version(other_user, 1, kind="recovery_odds", status="active")  # symbols [] -> refused, skipped
    from mlops.services.training import retrain_active_models

    with TestCase.captureOnCommitCallbacks(execute=True):
        ids = retrain_active_models(now=datetime(2025, 8, 31, 12, 30, tzinfo=UTC))
    job = TrainingJob.objects.get()
    assert ids == [job.pk] and enqueued == [(job.pk, "research")]
    assert (job.owner_id, job.kind, job.strategy, job.source, job.symbols, job.options) == (
        user.pk,
        "confidence",
        "smart_dca",
        "schedule",
        ["BTC/USDT", "ETH/USDT"],
        {"folds": 3},
    )
    end = datetime(2025, 8, 30, 23, tzinfo=UTC)
    assert (job.start, job.end) == (end - timedelta(days=90), end)
