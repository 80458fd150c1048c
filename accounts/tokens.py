"""API tokens: issue, revoke, hash, and the DRF authentication that checks them.

A key is 40 random hex characters; the database keeps only its SHA-256
(:class:`accounts.models.ApiToken`). :func:`token_issue` returns the key once, to be shown to
the user right away; afterwards only its first characters are known. Clients send
``Authorization: Token <key>`` (the header DRF's ``TokenAuthentication`` reads), checked by
:class:`HashedTokenAuthentication`.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.models import ApiToken, AuditLog
from accounts.ownership import OwnedQuerySet

KEY_BYTES = 20  # 40 hex characters, the shape DRF's keys had
PREFIX_LEN = 6


def token_hash(key: str) -> str:
    """Hex SHA-256 of ``key`` (64 characters): what is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TokenQuerySet(OwnedQuerySet):
    owner_field = "user"


def tokens_for(user) -> TokenQuerySet:
    """The user's API tokens (at most one); none for anonymous or inactive users."""
    return TokenQuerySet(model=ApiToken).for_user(user)


@transaction.atomic
def token_issue(*, user) -> tuple[ApiToken, str]:
    """Replace the user's API token with a fresh one (create it when missing); audit-logged
    (``token_create`` / ``token_rotate``). Returns ``(token row, key)``: the key is not stored
    and cannot be shown again."""
    had = ApiToken.objects.filter(user=user).delete()[0] > 0
    key = secrets.token_hex(KEY_BYTES)
    token = ApiToken.objects.create(user=user, digest=token_hash(key), prefix=key[:PREFIX_LEN])
    AuditLog.objects.create(
        user=user, action="token_rotate" if had else "token_create", object_type="user", object_id=str(user.pk)
    )
    return token, key


@transaction.atomic
def token_revoke(*, user) -> bool:
    """Delete the user's API token; ``True`` when there was one (audit-logged ``token_revoke``)."""
    deleted = ApiToken.objects.filter(user=user).delete()[0] > 0
    if deleted:
        AuditLog.objects.create(user=user, action="token_revoke", object_type="user", object_id=str(user.pk))
    return deleted


class HashedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` checked against the stored SHA-256 of the key.

    Same header, keyword and errors as DRF's ``TokenAuthentication`` (``Invalid token.``,
    ``User inactive or deleted.``); the key itself is never looked up or stored.
    """

    model = ApiToken

    def authenticate_credentials(self, key: str):
        try:
            token = ApiToken.objects.select_related("user").get(digest=token_hash(key))
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (token.user, token)
