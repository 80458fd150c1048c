"""Page routes of the trading app: market pages (``urls_markets``) and bot pages (``urls_bots``)."""

from django.urls import include, path

app_name = "trading"

urlpatterns = [
    path("", include("trading.urls_markets")),
    path("", include("trading.urls_bots")),
]
