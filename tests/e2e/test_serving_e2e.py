"""Browser end-to-end for the `make run` arrangement: HTTP by gunicorn on one port, websockets by
daphne on another (``MARKET7_WS_PORT``). The page, served by gunicorn, opens its websocket on
daphne's port of the same host; the session cookie (not bound to a port) authenticates it and
Channels' AllowedHostsOriginValidator accepts the other-port origin; a push for the user
reaches the page."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.e2e.conftest import ARTIFACTS, _database_url, _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def _wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see test-artifacts/{what}.log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # answering
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer on {url} within 60 s")
        time.sleep(0.2)


@pytest.fixture
def split_servers(transactional_db):
    """``(http_url, ws_port)``: gunicorn (market7/gunicorn_conf.py) and daphne as `make run` starts them."""
    from django.db import connection

    web_port, ws_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market7.settings",
        "DATABASE_URL": _database_url(dict(connection.settings_dict)),
        "REDIS_URL": settings.REDIS_URL,
        "MARKET7_VAR_DIR": str(settings.VAR_DIR),
        "PORT": str(web_port),
        "MARKET7_WS_PORT": str(ws_port),
        "WEB_WORKERS": "1",
        "WEB_THREADS": "4",
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    bin_dir = os.path.dirname(sys.executable)
    commands = {
        "gunicorn": [
            os.path.join(bin_dir, "gunicorn"),
            "-c",
            "python:market7.gunicorn_conf",
            "market7.wsgi:application",
        ],
        "daphne_ws": [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(ws_port),
            "market7.asgi:application",
        ],
    }
    procs, logs = [], []
    try:
        for name, cmd in commands.items():
            log = open(ARTIFACTS / f"{name}.log", "w")  # noqa: SIM115  (closed below)
            logs.append(log)
            procs.append(subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait_http(f"http://127.0.0.1:{web_port}/accounts/login/", procs[0], "gunicorn")
        _wait_http(f"http://127.0.0.1:{ws_port}/accounts/login/", procs[1], "daphne_ws")
        yield f"http://127.0.0.1:{web_port}", ws_port
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs:
            log.close()


def test_page_from_gunicorn_gets_live_pushes_from_daphne_on_its_own_port(make_user, page, split_servers, artifact):
    from market7.events import send_now

    http_url, ws_port = split_servers
    user = make_user("wendy", "trader")
    page.goto(f"{http_url}/accounts/login/?next=/")
    page.fill("#id_username", "wendy")
    page.fill("#id_password", "pw-Market7!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{http_url}/")
    assert page.get_attribute("#live", "ws-connect") == f"ws://127.0.0.1:{ws_port}/ws/live/"
    page.wait_for_function("document.body.dataset.liveConnected === 'true'")
    page.evaluate(
        "window.__m7_pushes = []; document.body.addEventListener('m7:live', e => window.__m7_pushes.push(e.detail))"
    )
    # async_to_sync must not run in this thread (Playwright's event loop lives here).
    pusher = threading.Thread(target=send_now, args=(user.pk, "bot.status", {"bot_id": 0, "status": "paused"}))
    pusher.start()
    pusher.join(10)
    page.wait_for_function("window.__m7_pushes.length >= 1")
    assert page.evaluate("window.__m7_pushes[0]") == {"event": "bot.status", "data": {"bot_id": 0, "status": "paused"}}
    assert page.evaluate("document.body.dataset.liveConnected") == "true"
    page.screenshot(path=artifact("e2e_serving_split_ports.png"))
    assert page.m7_errors == []
