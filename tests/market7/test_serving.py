"""The serving arrangement (market7/serving.py, gunicorn_conf.py): web sizing from the cores and
the environment, the bounded psycopg pool per process, and the page's websocket URL."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from market7.serving import cores, live_ws_url, pool_options, web_concurrency
from tests.conftest import require


def test_web_concurrency_defaults_follow_the_cores_and_the_database():
    assert web_concurrency(sqlite=False, environ_={}) == (cores(), 4)
    assert web_concurrency(sqlite=True, environ_={}) == (1, 8)


def test_web_concurrency_from_the_environment_and_refused_values():
    assert web_concurrency(sqlite=True, environ_={"WEB_WORKERS": "3", "WEB_THREADS": "16"}) == (3, 16)
    with pytest.raises(ImproperlyConfigured, match=r"^WEB_WORKERS=0 is below the minimum 1$"):
        web_concurrency(sqlite=False, environ_={"WEB_WORKERS": "0"})
    with pytest.raises(ImproperlyConfigured, match=r"^WEB_THREADS='many' is not an integer$"):
        web_concurrency(sqlite=False, environ_={"WEB_THREADS": "many"})


def test_pool_options_defaults_bounds_and_off():
    assert pool_options(environ_={}) == {"min_size": 1, "max_size": 4, "timeout": 10.0, "max_idle": 300.0}
    assert pool_options(environ_={"DB_POOL_MAX": "12", "DB_POOL_MIN": "0", "DB_POOL_TIMEOUT": "3"}) == {
        "min_size": 0,
        "max_size": 12,
        "timeout": 3.0,
        "max_idle": 300.0,
    }
    assert pool_options(environ_={"DB_POOL_MAX": "0"}) is None
    with pytest.raises(ImproperlyConfigured, match=r"^DB_POOL_MIN=5 is above the maximum 4$"):
        pool_options(environ_={"DB_POOL_MIN": "5"})
    with pytest.raises(ImproperlyConfigured, match=r"^DB_POOL_MAX=-1 is below the minimum 0$"):
        pool_options(environ_={"DB_POOL_MAX": "-1"})


def test_gunicorn_config_sizes_the_pool_of_each_worker_from_its_threads(monkeypatch):
    import importlib

    import market7.gunicorn_conf as conf

    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("WEB_WORKERS", "3")
    monkeypatch.setenv("WEB_THREADS", "6")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("DB_POOL_MAX", raising=False)
    monkeypatch.delenv("WEB_BIND", raising=False)
    importlib.reload(conf)
    assert (conf.workers, conf.threads, conf.worker_class, conf.bind) == (3, 6, "gthread", ["127.0.0.1:8123"])
    import os

    assert os.environ["DB_POOL_MAX"] == "6"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/x.sqlite3")
    monkeypatch.delenv("WEB_WORKERS")
    monkeypatch.delenv("WEB_THREADS")
    importlib.reload(conf)
    assert (conf.workers, conf.threads) == (1, 8)


@pytest.mark.parametrize(
    ("host", "secure", "port", "url"),
    [
        ("127.0.0.1:8000", False, None, "/ws/live/"),
        ("127.0.0.1:8000", False, 8001, "ws://127.0.0.1:8001/ws/live/"),
        ("localhost:8000", True, 9443, "wss://localhost:9443/ws/live/"),
        ("market7.example", False, 8001, "ws://market7.example:8001/ws/live/"),
        ("[::1]:8000", False, 8001, "ws://[::1]:8001/ws/live/"),
        ("[::1]", False, 8001, "ws://[::1]:8001/ws/live/"),
    ],
)
def test_live_ws_url(host, secure, port, url):
    assert live_ws_url(host=host, secure=secure, ws_port=port) == url


def test_page_connects_its_websocket_to_the_ws_port_of_its_own_host(client, user, settings):
    client.force_login(user)
    settings.MARKET7_WS_PORT = None
    assert 'ws-connect="/ws/live/"' in client.get("/").content.decode()
    settings.MARKET7_WS_PORT = 8001
    body = client.get("/", HTTP_HOST="localhost:8000").content.decode()
    assert 'ws-connect="ws://localhost:8001/ws/live/"' in body


def _connections_to(dbname: str, own_pid: int) -> int:
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER"), dbname="postgres"
    ) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (dbname, own_pid)
        ).fetchone()
    return row[0]


@pytest.mark.services
def test_postgres_pool_is_applied_and_bounds_concurrent_threads(transactional_db):
    """12 threads each hold a connection for 0.3 s; the pool (max 4) makes them queue: Postgres
    never sees more than 4 connections of this process, and all 12 queries ran."""
    require(connection.vendor == "postgresql", "needs Postgres (DATABASE_URL)")
    options = connection.settings_dict["OPTIONS"]["pool"]
    assert (options["min_size"], options["max_size"]) == (1, 4)
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    dbname = connection.settings_dict["NAME"]
    done: list[int] = []
    lock = threading.Lock()

    def hold() -> None:
        from django.db import connection as conn

        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.3), 1")
                value = cursor.fetchone()[1]
            with lock:
                done.append(value)
        finally:
            conn.close()  # back to the pool, as at the end of a request

    threads = [threading.Thread(target=hold) for _ in range(12)]
    peak = 0
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _connections_to(dbname, own_pid=-1))
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    assert done == [1] * 12
    assert peak == 4
    assert connection.pool.get_stats()["pool_max"] == 4
