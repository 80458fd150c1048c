"""The one ownership gate (DESIGN.md §3).

Every user-owned model uses :class:`OwnedQuerySet` (through ``accounts.models.OwnedModel``),
and every view, API viewset and websocket consumer reaches owned objects only through
``Model.objects.for_user(user)`` — directly or through ``accounts.mixins.OwnedObjectMixin`` /
``accounts.mixins.OwnedViewSetMixin``. Another user's object is therefore a 404, never a leak, and an
anonymous user gets an empty queryset.
"""

from __future__ import annotations

from django.db import models


class OwnedQuerySet(models.QuerySet):
    """QuerySet of a model with an ``owner`` foreign key."""

    owner_field = "owner"

    def for_user(self, user) -> OwnedQuerySet:
        """Only ``user``'s objects; none at all for an anonymous or inactive user."""
        if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self.filter(**{self.owner_field: user})
