"""DEBUG is off by default, so an unknown URL shows the friendly 404 page (never Django's
technical page with the URL list); errors render 500.html; the favicon is served."""

import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings
from django.urls import path


def _settings_value(code: str, env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(env_extra)
    program = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='market7.settings'; django.setup(); "
        f"from django.conf import settings; print({code})"
    )
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_debug_is_off_unless_asked_for(tmp_path):
    assert _settings_value("settings.DEBUG", {"MARKET7_VAR_DIR": str(tmp_path)}) == "False"
    assert _settings_value("settings.DEBUG", {"MARKET7_VAR_DIR": str(tmp_path), "DEBUG": "1"}) == "True"


def test_secret_key_is_generated_once_and_reused_with_debug_off(tmp_path):
    env = {"MARKET7_VAR_DIR": str(tmp_path)}
    first = _settings_value("settings.SECRET_KEY", env)
    assert len(first) >= 50
    assert (tmp_path / "secret_key").read_text() == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert _settings_value("settings.SECRET_KEY", env) == first
    assert _settings_value("settings.SECRET_KEY", {**env, "SECRET_KEY": "from-env"}) == "from-env"


@pytest.mark.django_db
def test_unknown_url_is_the_friendly_404_without_the_url_list(make_user):
    client = Client()
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html
    assert "<code>/no-such-page/</code>" in html
    assert "URLconf" not in html and "api/v1/" not in html
    assert 'href="/accounts/login/"' in html  # anonymous: no app nav, a way in

    client.force_login(make_user("nina"))
    html = client.get("/bots/999999/").content.decode()
    assert "<h1>Page not found</h1>" in html
    assert 'aria-label="Main"' in html  # the site layout with its nav for a logged-in user


def _boom(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _boom)]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_server_error_renders_the_standalone_500_page():
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html
    assert "RuntimeError" not in html and "Traceback" not in html


@pytest.mark.django_db
def test_favicon_is_served():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # ICO header
    assert len(body) == 219
