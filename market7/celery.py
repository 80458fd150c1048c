"""The Celery app and the one beat schedule.

Queues (an enum, PostHog style): ``trading`` for latency-sensitive bot steps, ``research``
for backtests, imports and training, ``default`` for the rest. Beat runs with
django-celery-beat's database scheduler; the schedule below is synced into it at start.
"""

from __future__ import annotations

import os
from enum import StrEnum

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")


class TaskQueue(StrEnum):
    DEFAULT = "default"
    TRADING = "trading"
    RESEARCH = "research"


app = Celery("market7")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(q.value) for q in TaskQueue]
app.conf.task_default_queue = TaskQueue.DEFAULT.value
app.autodiscover_tasks()

# The one beat schedule. Each entry expires so a backlog after downtime does not pile up.
app.conf.beat_schedule = {
    "bots-due": {
        "task": "trading.tasks.bots_due",
        "schedule": 60.0,
        "options": {"queue": TaskQueue.TRADING.value, "expires": 55},
    },
}


@app.task(name="market7.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by health checks and tests: returns ``value`` unchanged."""
    return value
