"""Content-Security-Policy header (a tiny middleware; no dependency).

Every HTML page gets :data:`PAGE_POLICY`: scripts only from this origin (``static/``: the
vendored htmx, its ws extension, lightweight-charts and our ``static/js``; no inline script,
no ``eval``), nothing from another origin at all, no framing (``frame-ancestors 'none'``),
forms and the websocket to this site only. ``json_script`` data blocks
(``<script type="application/json">``) are data, not scripts, and are not affected.

Styles allow ``'unsafe-inline'``: templates carry computed ``style="width: 42%"`` attributes
(progress bars, heat cells, legend colours), htmx adds its indicator ``<style>`` and
lightweight-charts its attribution ``<style>``. Injected CSS cannot run code; scripts are
what the policy guards.

The API docs (URL names ``swagger-ui`` and ``redoc``) get :data:`DOCS_POLICY`, the policy of
``templates/drf_spectacular/redoc.html``'s own ``<meta>``: drf-spectacular's templates start
Swagger UI and ReDoc with an inline script and ReDoc runs a ``blob:`` worker. Those pages show
our schema only, no user data.

``MARKET7_CSP_REPORT_ONLY=1`` sends ``Content-Security-Policy-Report-Only`` instead (to try a
change on a running site). See README "Security".
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost

from market7.serving import LIVE_WS_PATH, live_ws_url

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self' {ws}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_URL_NAMES = frozenset({"swagger-ui", "redoc"})


class ContentSecurityPolicyMiddleware:
    """Add the policy to every response that has none yet (``Content-Security-Policy`` header,
    or ``-Report-Only`` with ``MARKET7_CSP_REPORT_ONLY``)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "MARKET7_CSP_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )

    def __call__(self, request):
        response = self.get_response(request)
        if self.header in response:
            return response
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name in DOCS_URL_NAMES:
            response[self.header] = DOCS_POLICY
        else:
            # 'self' covers ws:/wss: of this host in CSP 3; older engines need them spelled out.
            try:
                host = request.get_host()
            except DisallowedHost:  # the 400 for a bad Host header: no origin to name
                ws = ""
            else:
                ws = f"ws://{host} wss://{host}"
                if settings.MARKET7_WS_PORT:  # daphne on its own port (market7/serving.py)
                    live = live_ws_url(host=host, secure=request.is_secure(), ws_port=settings.MARKET7_WS_PORT)
                    ws += " " + live.removesuffix(LIVE_WS_PATH)
            response[self.header] = PAGE_POLICY.format(ws=ws).replace("'self' ;", "'self';")
        return response
