"""Shared fixtures: users with roles, data folders, a real Celery worker, service checks.

Tests that need a real service (Redis, Postgres, a browser) call :func:`require` — it skips
when the service is missing, and fails instead when ``MARKET7_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings


async def ws_connect(user, login=None):
    """A ``WebsocketCommunicator`` on ``/ws/live/`` logged in as ``user`` through a real session
    cookie (as a browser: ``AuthMiddlewareStack`` reads it), already connected.

    ``login(client, user)`` logs the Django test client in; it defaults to ``force_login`` run
    through ``sync_to_async``.
    """
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from market7.asgi import application

    client = Client()
    if login is None:
        await sync_to_async(client.force_login)(user)
    else:
        await login(client, user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    ws = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())],
    )
    connected, _ = await ws.connect()
    assert connected
    return ws


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (CI, MARKET7_REQUIRE_SERVICES=1) when ``condition`` is false."""
    if condition:
        return
    if settings.MARKET7_REQUIRE_SERVICES or os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def bundled_data_dir() -> Path:
    path = Path(settings.MARKET7_BUNDLED_DATA)
    assert path.is_dir(), f"bundled data missing at {path}"
    return path


@pytest.fixture
def shared_data_dir() -> Path:
    path = Path(settings.MARKET7_SHARED_DATA) / "ohlcv"
    require(path.is_dir(), f"../shared/data not present at {path}")
    return path


@pytest.fixture
def make_user(db, django_user_model):
    """``make_user(username, role="trader", password="pw-Market7!")`` -> a user in that role group."""
    from accounts.roles import Role, user_set_role

    def make(username: str = "alice", role: str | None = "trader", password: str = "pw-Market7!", **extra):
        user = django_user_model.objects.create_user(username=username, password=password, **extra)
        if role:
            user_set_role(user=user, role=Role(role))
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice", "trader")


@pytest.fixture
def other_user(make_user):
    return make_user("bob", "trader")


@pytest.fixture
def viewer(make_user):
    return make_user("victor", "viewer")


@pytest.fixture(scope="session")
def celery_session_worker_real(django_db_blocker):
    """A real Celery worker thread consuming from the real Redis broker (all queues)."""
    from celery.contrib.testing.worker import start_worker

    from market7.celery import TaskQueue, app

    app.conf.task_always_eager = False
    with django_db_blocker.unblock():
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=10,
            queues=[q.value for q in TaskQueue],
        ) as worker:
            yield worker


def pytest_collection_modifyitems(config, items):
    """Run the end-to-end browser tests last.

    Playwright's sync API keeps an event loop running in the main thread while its
    session-scoped browser lives; async tests (websocket consumers) collected after it would
    then fail with "Runner.run() cannot be called from a running event loop".
    """
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))
