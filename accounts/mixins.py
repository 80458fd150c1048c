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
    """For DRF viewsets: scope ``queryset`` to the requesting user and set the owner on create.

    It also takes the router's format suffix (``/api/v1/bots/7/pause.json``) out of the
    handler's keyword arguments: DRF passes it as ``format=`` to every handler, and an
    ``@action`` method written as ``def pause(self, request, pk=None)`` would fail with a
    ``TypeError`` (a 500) before ``get_object`` ran the ownership check. The suffix still
    selects the renderer (``get_format_suffix``).
    """

    def dispatch(self, request, *args, **kwargs):
        from rest_framework.settings import api_settings

        self._format_suffix = kwargs.pop(api_settings.FORMAT_SUFFIX_KWARG, None)
        return super().dispatch(request, *args, **kwargs)

    def get_format_suffix(self, **kwargs):
        return getattr(self, "_format_suffix", None)

    def get_queryset(self):
        return self.queryset.model.objects.for_user(self.request.user)

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
