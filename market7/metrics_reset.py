"""``python -m market7.metrics_reset``: empty the Prometheus multiprocess directory before the
services start (``make serve`` runs it; a systemd deployment runs it in ``ExecStartPre`` of the
first unit). Files of processes from an earlier run would otherwise be summed into /metrics.

The directory is ``PROMETHEUS_MULTIPROC_DIR``, default ``$MARKET7_VAR_DIR/prometheus``
(``var/prometheus``), as in the settings. Django is not set up.
"""

from __future__ import annotations

import os
from pathlib import Path


def multiproc_dir() -> Path:
    var = os.environ.get("MARKET7_VAR_DIR") or Path(__file__).resolve().parent.parent / "var"
    return Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(var) / "prometheus")


def reset(path: Path) -> int:
    """Remove the ``*.db`` files in ``path`` (created if missing); returns how many."""
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


if __name__ == "__main__":
    d = multiproc_dir()
    print(f"metrics: cleared {reset(d)} files in {d}")
