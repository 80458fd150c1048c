"""End-to-end browser fixtures: a REAL daphne server on the test database and Debian's chromium
driven by Playwright (sync API).

Fixtures (use them from any ``tests/e2e/test_*.py``):

- ``live_server_url`` (session): ``"http://127.0.0.1:<port>"`` of a ``daphne`` subprocess
  serving ``market7.asgi:application`` (HTTP *and* websockets, ``/ws/live/``) on the pytest
  test database (SQLite: ``var/test_market7.sqlite3``; Postgres: ``test_<name>``) and the same
  Redis. The subprocess sees only **committed** rows, so e2e tests must use ``transactional_db``
  (not ``db``). Its log goes to ``test-artifacts/daphne.log``.
- ``browser`` (session): headless ``/usr/bin/chromium`` via ``playwright.sync_api``. Skips when
  chromium is missing; fails instead with ``MARKET7_REQUIRE_SERVICES=1`` (``tests.conftest.require``).
- ``page`` (function): a fresh browser context + page (1400x900) whose console errors and page
  errors are collected in ``page.m7_errors`` (list of str); closed after the test.
- ``login(page, username, password="pw-Market7!")``: logs in through the real login form and
  waits for the redirect.
- ``artifact(name)``: path ``test-artifacts/<name>`` (folder created; gitignored) for screenshots.

Playwright's sync API runs its own event loop in this thread, which trips Django's async-safety
check on ORM calls made by the test while the browser is open; ``browser`` therefore sets
``DJANGO_ALLOW_ASYNC_UNSAFE=true`` for the session (test code and the server never run
concurrently on one connection: the server is another process).

Example::

    pytestmark = [pytest.mark.e2e, pytest.mark.services]

    def test_something(transactional_db, make_user, page, live_server_url, login, artifact):
        make_user("erin", "trader")
        login(page, "erin")
        page.goto(f"{live_server_url}/bots/")
        page.screenshot(path=artifact("bots.png"))
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(db: dict) -> str:
    """DATABASE_URL naming the (already created) test database of ``connection.settings_dict``."""
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def artifact():
    ARTIFACTS.mkdir(exist_ok=True)
    return lambda name: str(ARTIFACTS / name)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    """Base URL of a real daphne process on the test database (see module docstring)."""
    from django.db import connection

    with django_db_blocker.unblock():
        db = dict(connection.settings_dict)  # NAME is the test database's by now
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market7.settings",
        "DATABASE_URL": _database_url(db),
        "REDIS_URL": settings.REDIS_URL,
        "MARKET7_VAR_DIR": str(settings.VAR_DIR),
        "PORT": str(port),
        "DEBUG": "1",  # static files from the finders (whitenoise), no collectstatic needed
        "PYTHONUNBUFFERED": "1",
    }
    log_path = ARTIFACTS / "daphne.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "market7.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{url}/accounts/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not answer on {url} within 60 s; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through Playwright (Playwright cannot download browsers here)."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, request):
    """A fresh context and page; ``page.m7_errors`` collects console errors and page errors.

    The site's Content-Security-Policy (``market7/csp.py``) forbids eval, which Playwright's
    polling ``wait_for_function`` needs, so the context bypasses it — except for tests marked
    ``@pytest.mark.enforce_csp`` (tests/e2e/test_csp_e2e.py), which check the policy itself."""
    enforce = request.node.get_closest_marker("enforce_csp") is not None
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=not enforce)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.m7_errors = errors
    yield pg
    context.close()


@pytest.fixture
def login(live_server_url):
    """``login(page, username, password="pw-Market7!", next="/")``: real login form, then waits
    until the browser has left the login page."""

    def do(pg, username: str, password: str = "pw-Market7!", next: str = "/markets/"):
        pg.goto(f"{live_server_url}/accounts/login/?next={quote(next)}")
        pg.fill("#id_username", username)
        pg.fill("#id_password", password)
        pg.click("button[type=submit]")
        pg.wait_for_url(lambda u: "/accounts/login/" not in u)

    return do
