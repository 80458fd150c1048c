"""How Market7 is served: web concurrency, database connection pools, the live websocket URL.

The arrangement (measured in ``docs/deploy.md``): HTTP by gunicorn with ``gthread`` workers
running the WSGI app (``market7/wsgi.py``, config ``market7/gunicorn_conf.py``), websockets by
daphne on a port of its own (``MARKET7_WS_PORT``), or behind a proxy that sends ``/ws/`` to
daphne and the rest to gunicorn on one origin. Every process opens its Postgres connections
through one bounded psycopg pool (Django's ``OPTIONS["pool"]``).

Everything here is plain functions of numbers and strings, so settings, the gunicorn config
and tests share them without Django being set up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from market7.env import env_int

LIVE_WS_PATH = "/ws/live/"


def cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def web_concurrency(*, sqlite: bool, environ_: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(workers, threads)`` of gunicorn: ``WEB_WORKERS`` / ``WEB_THREADS`` or the defaults.

    Defaults: on Postgres one worker process per core (Python runs one thread at a time per
    process; a page is mostly Python, so processes give the cores) with 4 threads each (they
    overlap the waits on Postgres and Redis). On SQLite one worker with 8 threads: a single
    writer file gains nothing from more processes and each would hold its own connections.
    Malformed or out of range (1-64 workers, 1-64 threads): ImproperlyConfigured.
    """
    workers = env_int("WEB_WORKERS", 1 if sqlite else cores(), min_value=1, max_value=64, environ_=environ_)
    threads = env_int("WEB_THREADS", 8 if sqlite else 4, min_value=1, max_value=64, environ_=environ_)
    return workers, threads


def pool_options(*, environ_: Mapping[str, str] | None = None) -> dict | None:
    """psycopg_pool ``ConnectionPool`` arguments for Django's ``OPTIONS["pool"]``, or None.

    ``DB_POOL_MAX`` (default 4; 0 turns pooling off: one connection per request, closed after
    it) bounds the connections ONE process holds; ``DB_POOL_MIN`` (default 1, at most the
    max) stay open while idle; ``DB_POOL_TIMEOUT`` (seconds, default 10) is how long a
    request waits for a free connection before ``psycopg_pool.PoolTimeout`` (a 500). Idle
    connections above the minimum close after 5 minutes. Malformed: ImproperlyConfigured.
    """
    pool_max = env_int("DB_POOL_MAX", 4, min_value=0, max_value=1000, environ_=environ_)
    if pool_max == 0:
        return None
    pool_min = env_int("DB_POOL_MIN", 1, min_value=0, max_value=pool_max, environ_=environ_)
    timeout = env_int("DB_POOL_TIMEOUT", 10, min_value=1, max_value=600, environ_=environ_)
    return {"min_size": pool_min, "max_size": pool_max, "timeout": float(timeout), "max_idle": 300.0}


def live_ws_url(*, host: str, secure: bool, ws_port: int | None) -> str:
    """The URL the page's websocket connects to.

    ``ws_port`` None: ``/ws/live/`` on the page's own origin (daphne alone, or a proxy routing
    ``/ws/`` to daphne). Otherwise daphne on that port of the host the page was served from
    (``host`` is ``request.get_host()``, already checked against ``ALLOWED_HOSTS``; its port
    is dropped): ``ws://127.0.0.1:8001/ws/live/``. The session cookie is not bound to a port
    and Channels' ``AllowedHostsOriginValidator`` compares host names only, so login carries
    across the two ports.
    """
    if ws_port is None:
        return LIVE_WS_PATH
    if host.startswith("["):  # IPv6 literal: "[::1]:8000" or "[::1]"
        hostname = host[: host.index("]") + 1]
    else:
        hostname = host.split(":", 1)[0]
    return f"{'wss' if secure else 'ws'}://{hostname}:{ws_port}{LIVE_WS_PATH}"
