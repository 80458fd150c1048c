"""A task for the shutdown test only (imported by its worker with ``--include``): writes
``<dir>/started``, sleeps, writes ``<dir>/done``."""

import time
from pathlib import Path

from market7.celery import app


@app.task(name="tests.market7.slow", acks_late=True)
def slow(directory: str, seconds: float) -> str:
    Path(directory, "started").write_text("1")
    time.sleep(seconds)
    Path(directory, "done").write_text("1")
    return "done"
