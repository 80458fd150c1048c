"""API tokens are stored as a SHA-256 of the key, shown once, and still authenticate: issued on
the profile page, by ``drf_create_token``, or carried over from DRF's plain-text table."""

from __future__ import annotations

import hashlib
import importlib
import re
from datetime import UTC, datetime
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditLog
from accounts.tokens import token_hash, token_issue, token_revoke

pytestmark = pytest.mark.django_db


def _api(key: str | None = None) -> APIClient:
    api = APIClient()
    if key is not None:
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def _everything_stored() -> str:
    rows = list(ApiToken.objects.values_list()) + list(AuditLog.objects.values_list())
    return repr(rows)


def test_issue_stores_only_the_hash_and_the_key_authenticates(user, other_user):
    token, key = token_issue(user=user)
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    assert token.digest == hashlib.sha256(key.encode()).hexdigest() == token_hash(key)
    assert token.prefix == key[:6]
    assert key not in _everything_stored()
    assert {f.name for f in ApiToken._meta.get_fields()} == {"id", "user", "digest", "prefix", "created"}

    r = _api(key).get("/api/v1/bots/")
    assert (r.status_code, r.json()["count"]) == (200, 0)
    assert key not in r.content.decode()
    for bad in (token.digest, key[:-1], key.upper(), "x" * 40):  # the stored hash is not a key
        r = _api(bad).get("/api/v1/bots/")
        assert (r.status_code, r.json()) == (403, {"detail": "Invalid token."}), bad

    user.is_active = False
    user.save()
    r = _api(key).get("/api/v1/bots/")
    assert (r.status_code, r.json()) == (403, {"detail": "User inactive or deleted."})


def test_rotate_and_revoke(user):
    _, first = token_issue(user=user)
    _, second = token_issue(user=user)
    assert ApiToken.objects.filter(user=user).count() == 1
    assert _api(first).get("/api/v1/bots/").status_code == 403
    assert _api(second).get("/api/v1/bots/").status_code == 200
    assert token_revoke(user=user) is True
    assert token_revoke(user=user) is False
    assert _api(second).get("/api/v1/bots/").status_code == 403
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "token_create",
        "token_rotate",
        "token_revoke",
    ]


def test_drf_create_token_command_prints_the_key_once(user):
    out = StringIO()
    call_command("drf_create_token", "alice", stdout=out)
    key = re.fullmatch(r"Generated token ([0-9a-f]{40}) for user alice\n", out.getvalue()).group(1)
    assert ApiToken.objects.get(user=user).digest == token_hash(key)
    assert _api(key).get("/api/v1/bots/").status_code == 200

    with pytest.raises(CommandError) as exc:
        call_command("drf_create_token", "alice", stdout=StringIO())
    assert str(exc.value).startswith(f"user alice has a token already (starts with {key[:6]}, created ")
    assert ApiToken.objects.get(user=user).digest == token_hash(key)  # unchanged

    out = StringIO()
    call_command("drf_create_token", "alice", "--reset", stdout=out)
    new = re.fullmatch(r"Generated token ([0-9a-f]{40}) for user alice\n", out.getvalue()).group(1)
    assert new != key
    assert (_api(key).get("/api/v1/bots/").status_code, _api(new).get("/api/v1/bots/").status_code) == (403, 200)

    with pytest.raises(CommandError, match="Cannot create the Token: user nobody does not exist"):
        call_command("drf_create_token", "nobody", stdout=StringIO())


def test_migration_hashes_existing_plain_tokens_and_deletes_them(user, other_user):
    """Tokens DRF stored in plain text (``authtoken_token``) keep working after the migration,
    and no plain key stays in the database."""
    migration = importlib.import_module("accounts.migrations.0002_apitoken")
    ts = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
    alice_key, bob_key = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, created {ts} NOT NULL, user_id bigint NOT NULL)'
        )
        cursor.execute(
            'INSERT INTO authtoken_token ("key", created, user_id) VALUES (%s, %s, %s), (%s, %s, %s)',
            [
                alice_key, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), user.pk,
                bob_key, datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC), other_user.pk,
            ],
        )  # fmt: skip
    migration.hash_plain_tokens(apps, SimpleNamespace(connection=connection))

    rows = {t.user_id: (t.digest, t.prefix, t.created) for t in ApiToken.objects.all()}
    assert rows == {
        user.pk: (token_hash(alice_key), "012345", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        other_user.pk: (token_hash(bob_key), "fedcba", datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)
        cursor.execute("DROP TABLE authtoken_token")
    assert _api(alice_key).get("/api/v1/bots/").status_code == 200
    assert _api(bob_key).get("/api/v1/bots/").status_code == 200
    assert alice_key not in _everything_stored() and bob_key not in _everything_stored()


def test_migration_without_a_plain_token_table_does_nothing(user):
    migration = importlib.import_module("accounts.migrations.0002_apitoken")
    migration.hash_plain_tokens(apps, SimpleNamespace(connection=connection))
    assert ApiToken.objects.count() == 0
