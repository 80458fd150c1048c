"""gunicorn configuration of Market7's HTTP server (``gunicorn -c python:market7.gunicorn_conf``).

gthread workers run the WSGI app (``market7.wsgi:application``): ``WEB_WORKERS`` processes of
``WEB_THREADS`` threads each, sized from the cores by default (``market7.serving.web_concurrency``:
Postgres one process per core x 4 threads, SQLite 1 x 8). Websockets are not served here but by
daphne (``MARKET7_WS_PORT`` or a proxy, see ``docs/deploy.md``).

Environment: ``PORT`` (8000) and ``WEB_BIND`` (``127.0.0.1``: the address listened on; ``0.0.0.0``
behind a proxy on another host), ``WEB_WORKERS``, ``WEB_THREADS``, ``WEB_TIMEOUT`` (seconds a
request may run before its worker is restarted, 30), ``WEB_ACCESS_LOG`` (``1``: one line per
request on stdout; off by default, it costs throughput). Each worker's database pool holds at
most ``DB_POOL_MAX`` connections, by default ``WEB_THREADS`` (one per thread, never a wait).
Malformed values stop start-up with ImproperlyConfigured naming the variable.
"""

import os

from market7.env import env_bool, env_int, env_str
from market7.serving import web_concurrency

_sqlite = (os.environ.get("DATABASE_URL") or "sqlite:").split(":", 1)[0].lower() == "sqlite"
workers, threads = web_concurrency(sqlite=_sqlite)
worker_class = "gthread"
bind = [f"{env_str('WEB_BIND', '127.0.0.1')}:{env_int('PORT', 8000, min_value=1, max_value=65535)}"]
timeout = env_int("WEB_TIMEOUT", 30, min_value=1, max_value=3600)
graceful_timeout = 4  # honcho kills 5 s after its SIGTERM: finish the requests in flight first
keepalive = 5
accesslog = "-" if env_bool("WEB_ACCESS_LOG", False) else None
errorlog = "-"
proc_name = "market7-web"
# Read by settings in each worker (they import it after this file ran in the master).
os.environ.setdefault("DB_POOL_MAX", str(threads))


def child_exit(server, worker):
    """A worker process exited: drop its live gauges from the Prometheus multiprocess files."""
    from market7.metrics import mark_process_dead

    mark_process_dead(worker.pid)
