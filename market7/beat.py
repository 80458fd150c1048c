"""Celery beat's scheduler: django-celery-beat's database scheduler, plus a heartbeat.

Each tick (at most every 5 s with the database scheduler) records the time in Redis, at most
every ``market7.health.BEAT_HEARTBEAT_S`` seconds, so ``/ready`` can tell a stopped or stuck
beat (``market7.health``). Selected by ``CELERY_BEAT_SCHEDULER`` and the Procfile's ``beat``.
"""

from __future__ import annotations

import time

from django_celery_beat.schedulers import DatabaseScheduler

from market7.health import BEAT_HEARTBEAT_S, beat_heartbeat


class HeartbeatScheduler(DatabaseScheduler):
    """The database scheduler whose tick also writes beat's heartbeat."""

    _heartbeat_at = 0.0

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        now = time.time()
        if now - self._heartbeat_at >= BEAT_HEARTBEAT_S:
            self._heartbeat_at = now
            beat_heartbeat(now=now)
        return interval
