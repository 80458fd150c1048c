"""The OpenAPI schema of ``/api/v1/`` as API users read it (drf-spectacular).

``Market7AutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) changes three things of
drf-spectacular's ``AutoSchema``:

- descriptions come only from docstrings written on the endpoint itself (the action method or
  the viewset class), never from base classes and mixins, whose docstrings are notes for
  developers (``OwnedViewSetMixin``: "For DRF viewsets: scope ``queryset`` ...");
- every operation gets a summary: the one given with ``extend_schema``, else one made from the
  action (``list`` -> "List bots", ``close_all`` -> "Close all");
- an endpoint whose model is behind the ownership gate (``Model.objects.for_user``) says so.

``schema_paths_resolve`` is used by tests: every path the schema lists resolves in the URLconf.
"""

from __future__ import annotations

import inspect
import re

from django.urls import Resolver404, resolve
from drf_spectacular.openapi import AutoSchema

_STANDARD_SUMMARIES = {
    "list": "List {plural}",
    "retrieve": "One {name}",
    "create": "Create a {name}",
    "update": "Replace a {name}",
    "partial_update": "Change a {name}",
    "destroy": "Delete a {name}",
}
OWNED_NOTE = "Scoped to your own {plural}: another user's {name} is a 404."


def _model(view):
    queryset = getattr(view, "queryset", None)
    return getattr(queryset, "model", None)


class Market7AutoSchema(AutoSchema):
    def _own_doc(self) -> str:
        action = getattr(self.view, "action", None) or self.method.lower()
        func = getattr(self.view.__class__, action, None)
        doc = getattr(func, "__doc__", None)
        if func is not None and getattr(func, "__module__", "").split(".")[0] in {"rest_framework", "drf_spectacular"}:
            doc = None  # DRF's own list/create/... carry no user-facing text
        if not doc:
            doc = self.view.__class__.__dict__.get("__doc__")
        return _clean(doc or "")

    def get_description(self) -> str:
        text = self._own_doc()
        model = _model(self.view)
        if model is not None and hasattr(model.objects, "for_user"):
            note = OWNED_NOTE.format(name=model._meta.verbose_name, plural=model._meta.verbose_name_plural)
            text = f"{text}\n\n{note}" if text else note
        return text

    def get_summary(self) -> str | None:
        action = getattr(self.view, "action", None)
        model = _model(self.view)
        if action in _STANDARD_SUMMARIES and model is not None:
            return _STANDARD_SUMMARIES[action].format(
                name=model._meta.verbose_name, plural=model._meta.verbose_name_plural
            )
        if action:
            return action.replace("_", " ").capitalize()
        return None


def _clean(doc: str) -> str:
    return "\n".join(line.rstrip() for line in inspect.cleandoc(doc).splitlines()).strip()


def schema_paths_resolve(schema: dict) -> dict[str, str]:
    """``{path: error}`` for every path of an OpenAPI ``schema`` dict that the URLconf does not
    resolve (path parameters filled with ``1``); empty when all resolve."""

    failures = {}
    for path in schema.get("paths", {}):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        try:
            resolve(concrete)
        except Resolver404 as exc:
            failures[path] = str(exc)
    return failures
