"""/health (liveness) and /ready (database, Redis, worker heartbeat, beat tick), and the two
heartbeats: a real Celery worker's bootstep and beat's scheduler tick."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from django_celery_beat.schedulers import DatabaseScheduler

from market7 import health
from market7.beat import HeartbeatScheduler

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CHECK_KEYS = {
    "database": {"status", "latency_ms"},
    "redis": {"status", "latency_ms"},
    "worker": {"status", "latency_ms", "workers", "age_s"},
    "beat": {"status", "latency_ms", "age_s"},
}


@pytest.fixture
def keys(monkeypatch):
    """Heartbeat keys of this test only (a worker another test started keeps beating)."""
    suffix = f"{os.getpid()}:{time.monotonic_ns()}"
    monkeypatch.setattr(health, "WORKERS_KEY", f"m7:test:workers:{suffix}")
    monkeypatch.setattr(health, "BEAT_KEY", f"m7:test:beat:{suffix}")
    yield
    with health.redis_client() as r:
        r.delete(health.WORKERS_KEY, health.BEAT_KEY)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(client) -> tuple[int, dict]:
    response = client.get("/ready")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


def test_health_answers_ok_without_touching_any_service(client, settings, django_assert_num_queries):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"] == "text/plain"


def test_ready_is_200_with_every_check_ok(client, keys):
    health.worker_heartbeat(hostname="celery@a")
    health.worker_heartbeat(hostname="celery@b")
    health.beat_heartbeat()
    status, body = ready(client)
    assert status == 200
    assert set(body) == {"status", "checks"}
    assert body["status"] == "ok"
    assert {name: set(check) for name, check in body["checks"].items()} == CHECK_KEYS
    assert {name: check["status"] for name, check in body["checks"].items()} == dict.fromkeys(CHECK_KEYS, "ok")
    assert body["checks"]["worker"]["workers"] == 2
    assert 0 <= body["checks"]["worker"]["age_s"] < 5
    assert 0 <= body["checks"]["beat"]["age_s"] < 5
    assert all(isinstance(c["latency_ms"], float) and c["latency_ms"] >= 0 for c in body["checks"].values())


def test_ready_is_503_without_worker_or_beat_heartbeats(client, keys):
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "fail"
    checks = {name: {k: v for k, v in c.items() if k != "latency_ms"} for name, c in body["checks"].items()}
    assert checks == {
        "database": {"status": "ok"},
        "redis": {"status": "ok"},
        "worker": {"status": "fail", "workers": 0, "age_s": None, "error": "no worker heartbeat"},
        "beat": {"status": "fail", "age_s": None, "error": "no beat tick recorded"},
    }


def test_ready_is_503_with_stale_heartbeats(client, keys, settings):
    settings.MARKET7_READY_WORKER_MAX_AGE_S = 60
    settings.MARKET7_READY_BEAT_MAX_AGE_S = 60
    now = time.time()
    health.worker_heartbeat(hostname="celery@old", now=now - 120)
    health.beat_heartbeat(now=now - 90)
    status, body = ready(client)
    assert status == 503
    worker, beat = body["checks"]["worker"], body["checks"]["beat"]
    assert (worker["status"], worker["workers"]) == ("fail", 0)
    assert 120 <= worker["age_s"] < 125
    assert worker["error"] == f"newest worker heartbeat {worker['age_s']} s old"
    assert beat["status"] == "fail" and 90 <= beat["age_s"] < 95
    assert beat["error"] == f"beat's last tick {beat['age_s']} s old"
    # a fresh heartbeat of one worker is enough
    health.worker_heartbeat(hostname="celery@new")
    health.beat_heartbeat()
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["worker"]["workers"] == 1


def test_ready_is_503_when_redis_is_unreachable(client, keys, settings):
    health.worker_heartbeat(hostname="celery@a")
    health.beat_heartbeat()
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    status, body = ready(client)
    assert status == 503
    checks = {name: {k: v for k, v in c.items() if k != "latency_ms"} for name, c in body["checks"].items()}
    assert checks == {
        "database": {"status": "ok"},
        "redis": {"status": "fail", "error": "ConnectionError"},
        "worker": {"status": "fail", "workers": 0, "age_s": None, "error": "redis unreachable (ConnectionError)"},
        "beat": {"status": "fail", "age_s": None, "error": "redis unreachable (ConnectionError)"},
    }
    assert b"127.0.0.1" not in json.dumps(body).encode()  # no address or URL in the answer


def test_ready_checks_can_be_narrowed(client, keys, settings):
    settings.MARKET7_READY_CHECKS = ["database", "redis"]
    status, body = ready(client)
    assert status == 200
    assert set(body["checks"]) == {"database", "redis"}


def test_unknown_ready_check_stops_start_up():
    env = {**os.environ, "MARKET7_READY_CHECKS": "database,disk"}
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "ImproperlyConfigured: MARKET7_READY_CHECKS must name some of database, redis, worker, beat" in proc.stderr


# --- the heartbeats ---------------------------------------------------------------------------


def test_a_real_worker_beats_while_it_runs_and_clears_its_entry_when_it_stops(keys, django_db_blocker):
    from celery.contrib.testing.worker import start_worker

    from market7.celery import app

    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", queues=["m7-test-heartbeat"]
    ) as worker:
        with health.redis_client() as r:
            score = r.zscore(health.WORKERS_KEY, worker.hostname)
        assert score is not None and time.time() - score < 5
        hostname = worker.hostname
    with health.redis_client() as r:
        assert r.zscore(health.WORKERS_KEY, hostname) is None


def test_beat_scheduler_tick_writes_the_heartbeat_at_most_every_few_seconds(keys):
    scheduler = HeartbeatScheduler.__new__(HeartbeatScheduler)  # no schedule sync: only the tick is tested
    with mock.patch.object(DatabaseScheduler, "tick", return_value=4.5) as parent:
        assert scheduler.tick() == 4.5
        with health.redis_client() as r:
            first = float(r.get(health.BEAT_KEY))
            assert time.time() - first < 5
            r.set(health.BEAT_KEY, "1.0")
            assert scheduler.tick() == 4.5  # within BEAT_HEARTBEAT_S: not written again
            assert r.get(health.BEAT_KEY) == b"1.0"
            scheduler._heartbeat_at -= health.BEAT_HEARTBEAT_S
            scheduler.tick()
            assert float(r.get(health.BEAT_KEY)) > first - 1
    assert parent.call_count == 3


def test_beat_uses_the_heartbeat_scheduler():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULER == "market7.beat:HeartbeatScheduler"
    assert "--scheduler market7.beat:HeartbeatScheduler" in (ROOT / "Procfile").read_text()


def test_heartbeats_are_exported_as_metrics(client, keys):
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, float]:
        text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}

    samples = scrape()
    assert samples["market7_celery_workers"] == 0
    assert "market7_beat_last_tick_timestamp_seconds" not in samples
    now = time.time()
    health.worker_heartbeat(hostname="celery@a", now=now)
    health.worker_heartbeat(hostname="celery@stale", now=now - 3600)
    health.beat_heartbeat(now=now - 30)
    samples = scrape()
    assert samples["market7_celery_workers"] == 1
    assert samples["market7_beat_last_tick_timestamp_seconds"] == pytest.approx(now - 30, abs=1e-3)
