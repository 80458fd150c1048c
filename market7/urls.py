"""Top-level URL routes: pages, accounts, admin, and the REST API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from market7.health import health_view, ready_view
from market7.metrics import metrics_view
from market7.views import favicon
from strategies.urls_scans import webhook_urlpatterns

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; loopback or bearer token
    path("health", health_view, name="health"),  # liveness
    path("ready", ready_view, name="ready"),  # readiness: database, Redis, worker, beat
    path("admin/", admin.site.urls),
    path("accounts/exchanges/", include("trading.urls_exchange_accounts")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("market7.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("backtests/", include("strategies.urls")),
    path("scans/", include("strategies.urls_scans")),
    path("ml/", include("mlops.urls")),
    path("webhooks/", include(webhook_urlpatterns)),
    path("", include("trading.urls")),
]
