"""Scan Review and BTC Risk Panel pages (namespace ``scans``), included under ``scans/`` by
market7/urls.py; the TradingView webhook route is :data:`webhook_urlpatterns` (under ``webhooks/``).
"""

from django.urls import path

from strategies import views_scans as views

app_name = "scans"

urlpatterns = [
    path("", views.scan_review, name="review"),
    path("run/", views.scan_now, name="run"),
    path("signals/<int:pk>/", views.signal_detail, name="signal"),
    path("btc-risk/", views.btc_risk, name="btc-risk"),
    path("webhook-token/", views.webhook_token_rotate, name="webhook-token"),
]

webhook_urlpatterns = [
    path("tradingview/<str:token>/", views.tradingview_webhook, name="tradingview-webhook"),
]
