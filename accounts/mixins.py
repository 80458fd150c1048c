"""View and viewset mixins that apply the ownership gate (``accounts.ownership``)."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import models


class OwnedObjectMixin(LoginRequiredMixin):
    """For class-based views: ``get_queryset()`` is the model's ``for_user`` set.

    Anonymous users are redirected to login; a pk outside the user's set raises Http404
    through Django's ``get_object``.
    """

    model: type[models.Model]

    def get_queryset(self):
        return self.model.objects.for_user(self.request.user)


class OwnedViewSetMixin:
    """For DRF viewsets: scope ``queryset`` to the requesting user and set the owner on create."""

    def get_queryset(self):
        return self.queryset.model.objects.for_user(self.request.user)

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
