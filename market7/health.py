"""Liveness and readiness for load balancers, and the heartbeats readiness reads.

- ``GET /health`` (:func:`health_view`): 200 ``ok`` from any process that can run a view; it
  touches no service (no database, no Redis), so a failing dependency never restarts web.
- ``GET /ready`` (:func:`ready_view`): JSON with one entry per check in
  ``MARKET7_READY_CHECKS`` (default all four)::

      {"status": "ok" | "fail",
       "checks": {"database": {"status", "latency_ms"},
                  "redis":    {"status", "latency_ms"},
                  "worker":   {"status", "latency_ms", "workers", "age_s"},
                  "beat":     {"status", "latency_ms", "age_s"}}}

  A failed check also carries ``"error"`` (a short text, never a URL or credential); any failed
  check makes the answer 503. ``latency_ms`` is the time the check took (rounded to 0.1 ms);
  ``age_s`` is the age of the newest heartbeat (None when there is none).

Heartbeats live in Redis: every Celery worker refreshes its entry in the sorted set
:data:`WORKERS_KEY` every :data:`WORKER_HEARTBEAT_S` seconds (a bootstep in ``market7.celery``)
and removes it when it stops; beat writes :data:`BEAT_KEY` from its scheduler's tick
(``market7.beat.HeartbeatScheduler``, at most every :data:`BEAT_HEARTBEAT_S` seconds). A worker
is up when its heartbeat is younger than ``MARKET7_READY_WORKER_MAX_AGE_S``, beat when its tick is
younger than ``MARKET7_READY_BEAT_MAX_AGE_S``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

WORKERS_KEY = "m7:health:workers"
BEAT_KEY = "m7:health:beat"
WORKER_HEARTBEAT_S = 10.0
BEAT_HEARTBEAT_S = 5.0
READY_CHECKS = ("database", "redis", "worker", "beat")


@contextlib.contextmanager
def redis_client(timeout_ms: int | None = None) -> Iterator[Any]:
    """A short-lived redis-py client on ``settings.REDIS_URL`` whose connect and read timeouts
    are ``timeout_ms`` (default ``MARKET7_READY_TIMEOUT_MS``); closed on exit."""
    import redis
    from django.conf import settings

    seconds = (timeout_ms or settings.MARKET7_READY_TIMEOUT_MS) / 1000.0
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=seconds, socket_connect_timeout=seconds, retry_on_timeout=False
    )
    try:
        yield client
    finally:
        client.close()


def worker_heartbeat(*, hostname: str, now: float | None = None) -> None:
    """Record that the worker ``hostname`` is alive (and forget entries older than an hour)."""
    now = time.time() if now is None else now
    try:
        with redis_client(2000) as r:
            pipe = r.pipeline(transaction=False)
            pipe.zadd(WORKERS_KEY, {hostname: now})
            pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - 3600)
            pipe.execute()
    except Exception as exc:  # a heartbeat never stops the worker; /ready will say it is stale
        log.warning("worker heartbeat failed: %s", exc)


def worker_heartbeat_clear(*, hostname: str) -> None:
    """Forget the worker ``hostname`` (it is stopping)."""
    try:
        with redis_client(2000) as r:
            r.zrem(WORKERS_KEY, hostname)
    except Exception as exc:
        log.warning("worker heartbeat clear failed: %s", exc)


def beat_heartbeat(*, now: float | None = None) -> None:
    """Record beat's tick (kept a day, so /ready can say how stale it is)."""
    now = time.time() if now is None else now
    try:
        with redis_client(2000) as r:
            r.set(BEAT_KEY, repr(now), ex=86_400)
    except Exception as exc:
        log.warning("beat heartbeat failed: %s", exc)


# --- checks ----------------------------------------------------------------------------------


def _check_database(_r: Any) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def _check_redis(r: Any) -> dict[str, Any]:
    r.ping()
    return {}


def _check_worker(r: Any) -> dict[str, Any]:
    from django.conf import settings

    now = time.time()
    max_age = settings.MARKET7_READY_WORKER_MAX_AGE_S
    entries = r.zrangebyscore(WORKERS_KEY, now - max_age, "+inf", withscores=True)
    newest = r.zrevrange(WORKERS_KEY, 0, 0, withscores=True)
    age = round(now - newest[0][1], 1) if newest else None
    extra = {"workers": len(entries), "age_s": age}
    if not entries:
        raise _CheckFailed("no worker heartbeat" if age is None else f"newest worker heartbeat {age} s old", extra)
    return extra


def _check_beat(r: Any) -> dict[str, Any]:
    from django.conf import settings

    raw = r.get(BEAT_KEY)
    age = round(time.time() - float(raw), 1) if raw is not None else None
    extra = {"age_s": age}
    if age is None:
        raise _CheckFailed("no beat tick recorded", extra)
    if age > settings.MARKET7_READY_BEAT_MAX_AGE_S:
        raise _CheckFailed(f"beat's last tick {age} s old", extra)
    return extra


class _CheckFailed(Exception):
    def __init__(self, message: str, extra: dict[str, Any]) -> None:
        super().__init__(message)
        self.extra = extra


_CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "database": _check_database,
    "redis": _check_redis,
    "worker": _check_worker,
    "beat": _check_beat,
}
_FAILED_EXTRA = {"worker": {"workers": 0, "age_s": None}, "beat": {"age_s": None}}


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run the configured checks; ``(all ok, {name: result})`` (see the module doc)."""
    from django.conf import settings

    results: dict[str, dict[str, Any]] = {}
    redis_down: str | None = None
    with redis_client() as r:
        for name in settings.MARKET7_READY_CHECKS:
            started = time.perf_counter()
            try:
                if name in ("worker", "beat") and redis_down:
                    raise _CheckFailed(f"redis unreachable ({redis_down})", dict(_FAILED_EXTRA[name]))
                extra = _CHECKS[name](r)
                result = {"status": "ok", **extra}
            except _CheckFailed as exc:
                result = {"status": "fail", **exc.extra, "error": str(exc)}
            except Exception as exc:
                log.warning("ready: %s check failed: %s", name, exc)
                if name == "redis":
                    redis_down = type(exc).__name__
                result = {"status": "fail", **_FAILED_EXTRA.get(name, {}), "error": type(exc).__name__}
            result["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
            results[name] = result
    return all(r["status"] == "ok" for r in results.values()), results


# --- views -----------------------------------------------------------------------------------


def health_view(request):
    """``GET /health``: liveness, ``200 ok`` (text/plain)."""
    from django.http import HttpResponse

    return HttpResponse("ok\n", content_type="text/plain")


def ready_view(request):
    """``GET /ready``: readiness JSON, 200 when every check passes, else 503."""
    from django.http import JsonResponse

    ok, checks = readiness()
    response = JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response
