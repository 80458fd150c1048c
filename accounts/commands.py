"""Helpers shared by management commands of every app (they sit on the accounts floor, below
all of them)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def command_owner(username: str | None):
    """The user a management command acts for: ``username`` when given, else the first
    superuser, else the first user. Raises ``CommandError`` for an unknown name or no users."""
    User = get_user_model()
    if username:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
    user = User.objects.filter(is_superuser=True).order_by("pk").first() or User.objects.order_by("pk").first()
    if user is None:
        raise CommandError("no users yet: create one (createsuperuser) or pass --owner")
    return user
