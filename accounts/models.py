"""Users and the audit log.

``User`` is the custom user model from the first migration. Roles are Django groups (see
``accounts.roles``). Every user-owned object elsewhere derives from :class:`OwnedModel`,
whose manager gives the one ownership gate ``Model.objects.for_user(user)``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from accounts.ownership import OwnedQuerySet


class User(AbstractUser):
    """A Market7 user. Roles come from group membership: viewer, trader, admin."""

    display_currency = models.CharField(max_length=10, default="USDT", help_text="Quote currency shown in totals.")

    class Meta:
        ordering = ["username"]

    @property
    def role(self) -> str:
        """The highest role the user holds: ``admin``, ``trader``, ``viewer`` or ``""``."""
        from accounts.roles import Role, user_role

        role = user_role(self)
        return role.value if isinstance(role, Role) else ""


class OwnedModel(models.Model):
    """Abstract base of every user-owned object: an ``owner`` and the ``for_user`` gate."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class AuditLog(models.Model):
    """Who did what to which object, for operators. Written by services, never edited."""

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. bot_start, candles_import")
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.user or '-'} {self.action} {self.object_type}#{self.object_id}"


class ApiToken(models.Model):
    """A user's REST API token (at most one), stored as the SHA-256 of its key.

    The key (40 hex characters, ``Authorization: Token <key>``) is shown once when it is
    issued (``accounts.tokens.token_issue``) and never stored: only ``digest`` (its hex
    SHA-256, unique) and ``prefix`` (its first 6 characters, so the profile page can tell the
    user which key is current). A plain SHA-256 without salt is enough for a random 160-bit key
    (nothing to brute-force) and lets authentication find the row with one indexed lookup.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
