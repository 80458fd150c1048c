"""Following a ``next`` parameter without becoming an open redirect.

A form that posts ``next=/bots/7/`` is sent back there after the action; a forged
``next=//evil.example/x`` (protocol-relative) or ``https://evil.example/`` must not send the
user off-site. :func:`safe_next_url` is the one check every view that follows a ``next`` uses:
Django's ``url_has_allowed_host_and_scheme`` (the check ``LoginView`` applies), this request's
host only, https required when the request is https.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next_url(request: HttpRequest, candidate: str | None, default: str) -> str:
    """``candidate`` when it is a URL on this site (relative, or absolute on this request's host
    with an allowed scheme), otherwise ``default`` (a URL the caller built, e.g. ``reverse(...)``)."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default
