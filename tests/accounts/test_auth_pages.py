"""Account pages: login, logout, password change, sign-up (setting checked per request),
anonymous redirects, and the role a sign-up gets."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from accounts.models import AuditLog, User

PW = "pw-Market7!"


@pytest.mark.parametrize("url_name", ["accounts:profile", "accounts:password_change", "accounts:password_change_done"])
def test_anonymous_is_sent_to_login_with_next(client, db, url_name):
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_anonymous_token_post_redirects_and_creates_nothing(client, db):
    from accounts.models import ApiToken as Token

    response = client.post(reverse("accounts:token"), {"action": "rotate"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/profile/token/"
    assert Token.objects.count() == 0


def test_login_page_renders_form_and_layout(client, db):
    response = client.get("/accounts/login/?next=/markets/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<input type="text" name="username"' in html
    assert '<input type="password" name="password"' in html
    assert 'name="next" value="/markets/"' in html
    assert "vendor/htmx/htmx.min.js" in html and "css/market7.css" in html
    assert "Sign up" not in html  # sign-up is off by default


def test_login_then_redirects_to_next_and_logout_by_post(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": PW, "next": "/markets/"})
    assert response.status_code == 302
    assert response["Location"] == "/markets/"
    assert client.session[SESSION_KEY] == str(user.pk)

    page = client.get("/accounts/profile/")
    html = page.content.decode()
    assert '<form method="post" action="/accounts/logout/">' in html  # the nav's logout form
    assert "alice" in html and 'class="badge badge-trader"' in html

    assert client.get("/accounts/logout/").status_code == 405  # GET never logs out
    assert SESSION_KEY in client.session
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert SESSION_KEY not in client.session


def test_login_with_wrong_password_fails(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_password_change_flow(client, user):
    client.force_login(user)
    page = client.get("/accounts/password/")
    assert page.status_code == 200
    assert 'name="old_password"' in page.content.decode()

    response = client.post(
        "/accounts/password/",
        {"old_password": PW, "new_password1": "N3w-secret-pass", "new_password2": "N3w-secret-pass"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/done/"
    assert client.get("/accounts/password/done/").status_code == 200  # still logged in
    user.refresh_from_db()
    assert user.check_password("N3w-secret-pass")
    assert not user.check_password(PW)


def test_password_change_with_wrong_old_password_changes_nothing(client, user):
    client.force_login(user)
    response = client.post(
        "/accounts/password/",
        {"old_password": "nope", "new_password1": "N3w-secret-pass", "new_password2": "N3w-secret-pass"},
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PW)


def test_signup_is_404_when_disabled(client, db, settings):
    settings.MARKET7_SIGNUP_ENABLED = False
    assert client.get("/accounts/signup/").status_code == 404
    response = client.post(
        "/accounts/signup/", {"username": "eve", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"}
    )
    assert response.status_code == 404
    assert not User.objects.filter(username="eve").exists()


def test_signup_when_enabled_creates_a_logged_in_viewer(client, db, settings):
    settings.MARKET7_SIGNUP_ENABLED = True
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert "start as <strong>viewer</strong>" in page.content.decode()

    response = client.post(
        "/accounts/signup/",
        {"username": "eve", "email": "eve@example.org", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    eve = User.objects.get(username="eve")
    assert eve.email == "eve@example.org"
    assert list(eve.groups.values_list("name", flat=True)) == ["viewer"]
    assert eve.role == "viewer"
    assert not eve.is_staff and not eve.is_superuser
    assert client.session[SESSION_KEY] == str(eve.pk)
    assert list(AuditLog.objects.values_list("action", "user__username")) == [("user_signup", "eve")]


def test_signup_rejects_mismatched_passwords(client, db, settings):
    settings.MARKET7_SIGNUP_ENABLED = True
    response = client.post(
        "/accounts/signup/", {"username": "eve", "password1": "Sup3r-secret-pw", "password2": "other-pw-123"}
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="eve").exists()
    assert AuditLog.objects.count() == 0


def test_login_page_links_signup_only_when_enabled(client, db, settings):
    settings.MARKET7_SIGNUP_ENABLED = True
    assert 'href="/accounts/signup/"' in client.get("/accounts/login/").content.decode()
