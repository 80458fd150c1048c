"""Security settings: https-only cookies and HSTS follow MARKET7_HTTPS (off for the embedded
local http setup, required in production) and stay off with DEBUG; the always-on headers and
the Content-Security-Policy are on every response."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from market7.csp import DOCS_POLICY

KEYS = [
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY", "MARKET7_CSP_REPORT_ONLY",
]  # fmt: skip

# Each case imports the settings module afresh from its environment, in one child process.
_PROBE = """
import importlib, json, os, sys
cases, out = json.loads(sys.argv[1]), []
base = dict(os.environ)
for env in cases:
    os.environ.clear(); os.environ.update(base); os.environ.update(env)
    try:
        import market7.settings as s
        s = importlib.reload(s)
        out.append({k: getattr(s, k) for k in json.loads(sys.argv[2])})
    except Exception as exc:
        out.append({"error": f"{type(exc).__name__}: {exc}"})
print(json.dumps(out))
"""


def _settings(cases: list[dict]) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKET7_HTTPS", "MARKET7_HSTS", "DEBUG"))}
    env |= {"SECRET_KEY": "test-only-secret-key-for-the-settings-matrix", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(cases), json.dumps(KEYS)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


ALWAYS = {
    "SECURE_CONTENT_TYPE_NOSNIFF": True,
    "X_FRAME_OPTIONS": "DENY",
    "SECURE_REFERRER_POLICY": "same-origin",
    "MARKET7_CSP_REPORT_ONLY": False,
}
PLAIN_HTTP = {"SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False, "SECURE_HSTS_SECONDS": 0}
HTTPS = {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_HSTS_SECONDS": 31_536_000}
PROXY = ["HTTP_X_FORWARDED_PROTO", "https"]


def test_settings_matrix():
    cases = [
        ({}, PLAIN_HTTP | {"SECURE_PROXY_SSL_HEADER": None}),  # make run: DEBUG off, plain http
        ({"DEBUG": "1"}, PLAIN_HTTP | {"SECURE_PROXY_SSL_HEADER": None}),
        ({"MARKET7_HTTPS": "1"}, HTTPS | {"SECURE_PROXY_SSL_HEADER": PROXY}),  # production
        ({"MARKET7_HTTPS": "1", "DEBUG": "1"}, PLAIN_HTTP | {"SECURE_PROXY_SSL_HEADER": PROXY}),
        (
            {"MARKET7_HTTPS": "1", "MARKET7_HSTS_SECONDS": "300"},
            HTTPS | {"SECURE_HSTS_SECONDS": 300, "SECURE_PROXY_SSL_HEADER": PROXY},
        ),
        ({"MARKET7_CSP_REPORT_ONLY": "yes"}, PLAIN_HTTP | {"SECURE_PROXY_SSL_HEADER": None}),
    ]
    got = _settings([env for env, _ in cases])
    for (env, expected), values in zip(cases, got, strict=True):
        report_only = {"MARKET7_CSP_REPORT_ONLY": "MARKET7_CSP_REPORT_ONLY" in env}
        assert values == ALWAYS | expected | report_only, env


def test_bad_values_stop_start_up_naming_the_variable():
    got = _settings([{"MARKET7_HTTPS": "maybe"}, {"MARKET7_HSTS_SECONDS": "-1"}])
    assert got[0] == {
        "error": "ImproperlyConfigured: MARKET7_HTTPS='maybe' is not a boolean; use one of 1/0, true/false, yes/no, on/off"
    }
    assert got[1]["error"].startswith("ImproperlyConfigured: MARKET7_HSTS_SECONDS=-1 is below the minimum 0")


@pytest.mark.django_db
def test_headers_on_pages_and_the_api_docs():
    r = Client().get("/accounts/login/")
    assert r.status_code == 200
    assert r["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self' ws://testserver wss://testserver; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    assert (r["X-Frame-Options"], r["Referrer-Policy"], r["X-Content-Type-Options"]) == (
        "DENY",
        "same-origin",
        "nosniff",
    )
    assert "Strict-Transport-Security" not in r  # plain http
    assert "Secure" not in r.cookies["csrftoken"].output()
    for url in ("/api/redoc/", "/api/docs/"):
        assert Client().get(url)["Content-Security-Policy"] == DOCS_POLICY, url
    assert "script-src 'self' 'unsafe-inline' blob:" in DOCS_POLICY
    # the API answers carry the page policy too (nothing there may run script)
    assert "script-src 'self';" in Client().get("/api/v1/markets/")["Content-Security-Policy"]


@pytest.mark.django_db
def test_connect_src_names_daphne_on_its_own_port(settings):
    """With MARKET7_WS_PORT (make run: gunicorn on PORT, daphne on PORT+1) the page's websocket
    goes to another origin, which 'self' does not cover: the policy names it."""
    settings.MARKET7_WS_PORT = 8001
    csp = Client().get("/accounts/login/", HTTP_HOST="127.0.0.1:8000")["Content-Security-Policy"]
    assert "connect-src 'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000 ws://127.0.0.1:8001;" in csp


@pytest.mark.django_db
def test_over_https_behind_the_proxy_hsts_and_secure_cookies_are_sent():
    with override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        SECURE_HSTS_SECONDS=31_536_000,
        SESSION_COOKIE_SECURE=True,
        CSRF_COOKIE_SECURE=True,
    ):
        r = Client().get("/accounts/login/", headers={"x-forwarded-proto": "https"})
        assert r["Strict-Transport-Security"] == "max-age=31536000"
        assert "Secure" in r.cookies["csrftoken"].output()
        assert "Strict-Transport-Security" not in Client().get("/accounts/login/")  # not over https
