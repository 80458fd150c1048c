"""The profile page's API token: create, rotate, revoke — each user only ever touches their own,
and the token really authenticates the API as that user."""

from __future__ import annotations

import re

from accounts.models import ApiToken as Token
from accounts.models import AuditLog
from accounts.tokens import token_hash, token_issue
from accounts.views import tokens_for


def test_profile_shows_role_and_no_token(client, viewer):
    client.force_login(viewer)
    html = client.get("/accounts/profile/").content.decode()
    assert 'class="badge badge-viewer">viewer<' in html
    assert "You have no API token." in html
    assert ">Create token<" in html


def test_create_rotate_revoke_own_token_only(client, user, other_user):
    bobs, _ = token_issue(user=other_user)
    client.force_login(user)

    response = client.post("/accounts/profile/token/", {"action": "rotate"})
    assert response.status_code == 200
    first = Token.objects.get(user=user)
    html = response.content.decode()
    key = re.search(r'<code class="token-key" id="token-key">([0-9a-f]{40})</code>', html).group(1)  # shown once
    assert (first.digest, first.prefix) == (token_hash(key), key[:6])  # only its hash is stored
    assert "<html" in html  # plain POST: whole profile page

    # Later views show only a prefix.
    later = client.get("/accounts/profile/").content.decode()
    assert key not in later
    assert f"<code>{key[:6]}…</code>" in later

    response = client.post("/accounts/profile/token/", {"action": "rotate"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    second = Token.objects.get(user=user)
    html = response.content.decode()
    key2 = re.search(r'<code class="token-key" id="token-key">([0-9a-f]{40})</code>', html).group(1)
    assert key2 != key and second.digest == token_hash(key2)
    assert '<section class="card" id="api-token">' in html
    assert "<html" not in html  # HTMX: the token section only

    response = client.post("/accounts/profile/token/", {"action": "revoke"})
    assert response.status_code == 200
    assert not Token.objects.filter(user=user).exists()
    assert Token.objects.get(user=other_user).digest == bobs.digest  # untouched throughout
    assert list(AuditLog.objects.filter(user=user).order_by("id").values_list("action", "user__username")) == [
        ("token_create", "alice"),
        ("token_rotate", "alice"),
        ("token_revoke", "alice"),
    ]


def test_unknown_action_is_400_and_changes_nothing(client, user):
    client.force_login(user)
    assert client.post("/accounts/profile/token/", {"action": "steal"}).status_code == 400
    assert client.get("/accounts/profile/token/").status_code == 405
    assert Token.objects.count() == 0


def test_token_authenticates_the_api_as_its_user(client, user):
    client.force_login(user)
    html = client.post("/accounts/profile/token/", {"action": "rotate"}).content.decode()
    key = re.search(r'id="token-key">([0-9a-f]{40})<', html).group(1)
    client.logout()
    from rest_framework.test import APIClient

    api = APIClient()
    assert api.get("/api/v1/markets/").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/markets/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    bad = api.get("/api/v1/markets/")
    # 403 rather than 401: SessionAuthentication comes first and sends no WWW-Authenticate.
    assert (bad.status_code, bad.json()) == (403, {"detail": "Invalid token."})


def test_ownership_gate_on_tokens(user, other_user, django_user_model):
    """``OwnedQuerySet.for_user`` (through ``tokens_for``): own rows only; none for anonymous
    or inactive users."""
    from django.contrib.auth.models import AnonymousUser

    mine, _ = token_issue(user=user)
    token_issue(user=other_user)
    assert list(tokens_for(user)) == [mine]
    assert list(tokens_for(AnonymousUser())) == []
    assert list(tokens_for(None)) == []
    user.is_active = False
    user.save()
    assert list(tokens_for(user)) == []
    assert Token.objects.count() == 2  # the gate filters; it never deletes
