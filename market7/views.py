"""Project-level views that belong to no app: the favicon at the path browsers ask for."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    """``GET /favicon.ico``: the vendored ``static/img/favicon.ico`` (32×32, image/x-icon).
    Pages also link ``img/favicon.svg``; this answers browsers and tools that ask the root."""
    path = finders.find("img/favicon.ico")
    if not path:
        raise Http404("favicon missing")
    return FileResponse(open(path, "rb"), content_type="image/x-icon")  # noqa: SIM115 (closed by the response)
