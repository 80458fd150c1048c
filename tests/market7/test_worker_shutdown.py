"""`make run` stops warm: honcho sends SIGTERM to the process group of each Procfile entry, so
the Celery worker's pool processes get it too. A step in flight must finish and the worker
exit without a ``WorkerLostError`` traceback (market7/celery.py moves pool processes into their
own process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.services


def _wait_for(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()}")
        time.sleep(0.1)


def test_sigterm_to_the_worker_group_finishes_the_task_in_flight(tmp_path):
    from market7.celery import app

    queue = f"shutdown-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "MARKET7_VAR_DIR": str(settings.VAR_DIR)}
    with open(log, "w") as out:
        worker = subprocess.Popen(
            # the Procfile's worker options (prefork pool), on a queue of its own
            [sys.executable, "-m", "celery", "-A", "market7", "worker", "-Q", queue, "--concurrency", "2",
             "--pool", "prefork", "--loglevel", "INFO", "--include", "tests.market7._slow_task",
             "--hostname", f"{queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # as honcho starts each Procfile entry
        )  # fmt: skip
    try:
        _wait_for(lambda: " ready." in log.read_text(), 60, "the worker to be ready", log)
        app.send_task("tests.market7.slow", args=[str(tmp_path), 2.0], queue=queue)
        _wait_for(lambda: (tmp_path / "started").exists(), 30, "the task to start", log)
        os.killpg(worker.pid, signal.SIGTERM)  # what honcho does on Ctrl-C
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = log.read_text()
    assert (tmp_path / "done").exists(), output
    assert "Traceback" not in output and "WorkerLostError" not in output, output
    assert "Warm shutdown" in output
    assert "Task tests.market7.slow[" in output and "succeeded" in output
    assert worker.returncode == 0, output
