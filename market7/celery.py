"""The Celery app and the one beat schedule.

Queues (an enum, PostHog style): ``trading`` for latency-sensitive bot steps, ``research``
for backtests, imports and training, ``default`` for the rest. Beat runs with
django-celery-beat's database scheduler; the schedule below is synced into it at start.
"""

from __future__ import annotations

import os
from enum import StrEnum

from celery import Celery, bootsteps
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready
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
        "options": {"queue": TaskQueue.TRADING.value, "expires": 55, "expire_seconds": 55},
    },
}


def scan_beat_entry() -> dict:
    """The scheduled-scan beat entry from the settings: every ``MARKET7_SCAN_EVERY_S`` seconds
    on the ``research`` queue, expiring after 90 % of the interval (the next run supersedes it).
    ``expire_seconds`` is the option django-celery-beat's database scheduler stores (it ignores
    ``expires``); ``expires`` is what Celery's own scheduler reads."""
    from django.conf import settings

    every = float(settings.MARKET7_SCAN_EVERY_S)
    expires = int(every * 0.9)
    return {
        "task": "strategies.tasks.scan_watchlists",
        "schedule": every,
        "options": {"queue": TaskQueue.RESEARCH.value, "expires": expires, "expire_seconds": expires},
    }


def retrain_beat_entry() -> dict:
    """The scheduled-retraining beat entry: every ``MARKET7_ML_RETRAIN_EVERY_S`` seconds (weekly
    by default) on the ``research`` queue, expiring after one hour (a missed run waits for the
    next one rather than piling up)."""
    from django.conf import settings

    every = float(settings.MARKET7_ML_RETRAIN_EVERY_S)
    expires = int(min(3600.0, every * 0.9))
    return {
        "task": "mlops.tasks.retrain_active",
        "schedule": every,
        "options": {"queue": TaskQueue.RESEARCH.value, "expires": expires, "expire_seconds": expires},
    }


@app.on_after_configure.connect
def _schedule_scans(sender, **_kwargs) -> None:
    """Add the scheduled scan and retraining once the settings are read (beat syncs the
    schedule at start)."""
    sender.conf.beat_schedule["scan-watchlists"] = scan_beat_entry()
    sender.conf.beat_schedule["ml-retrain"] = retrain_beat_entry()


@worker_process_init.connect
def _own_process_group(**_kwargs) -> None:
    """Move each prefork pool process into a process group of its own.

    honcho (``make run``), foreman and similar supervisors stop a Procfile entry with
    ``killpg(SIGTERM)``: without this, the pool processes get the SIGTERM meant for the worker,
    die mid-task, and the worker prints a ``WorkerLostError`` traceback. In their own group only
    the worker's main process gets it and shuts down warm: it stops taking tasks, lets the
    running ones finish and closes the pool. Pool processes still die with the main process
    (Celery sets PDEATHSIG=SIGKILL) and still ignore SIGINT (Ctrl-C in a terminal).
    """
    os.setpgid(0, 0)


@worker_ready.connect
def _kick_due_bots(**_kwargs) -> None:
    """A (re)started worker kicks the due bots at once, and again after one claim lease: a
    killed worker took its queued steps and replay chains with it, and its claims run out after
    ``MARKET7_BOT_CLAIM_LEASE_S`` (``trading.services.scheduling.bots_kick_on_worker_start``)."""
    from trading.services.scheduling import bots_kick_on_worker_start

    bots_kick_on_worker_start()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Refresh this worker's heartbeat in Redis every ``WORKER_HEARTBEAT_S`` seconds from the
    worker's timer thread, and remove it at shutdown (``/ready``, ``market7.health``)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        from market7.health import WORKER_HEARTBEAT_S, worker_heartbeat

        worker_heartbeat(hostname=worker.hostname)
        self.tref = worker.timer.call_repeatedly(
            WORKER_HEARTBEAT_S, worker_heartbeat, kwargs={"hostname": worker.hostname}, priority=10
        )

    def stop(self, worker):
        from market7.health import worker_heartbeat_clear

        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        worker_heartbeat_clear(hostname=worker.hostname)

    terminate = stop  # a cold shutdown (second Ctrl-C, SIGQUIT) clears it too


app.steps["worker"].add(WorkerHeartbeat)


@worker_process_shutdown.connect
def _metrics_process_dead(pid=None, **_kwargs) -> None:
    """A pool process that exits drops its live gauges from the metrics files."""
    from market7.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@app.task(name="market7.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by health checks and tests: returns ``value`` unchanged."""
    return value
