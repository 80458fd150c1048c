"""Backtest pages (namespace ``backtests``), included under ``backtests/`` by market7/urls.py:

path("backtests/", include("strategies.urls")),
"""

from django.urls import path

from strategies import views

app_name = "backtests"

urlpatterns = [
    path("", views.backtest_list, name="list"),
    path("new/", views.backtest_new, name="new"),
    path("_params/", views.backtest_params, name="params"),
    path("compare/", views.backtest_compare, name="compare"),
    path("<int:pk>/", views.backtest_detail, name="detail"),
    path("<int:pk>/_progress/", views.backtest_progress, name="progress"),
    path("<int:pk>/chart.json", views.backtest_chart, name="chart"),
    path("<int:pk>/trades.csv", views.backtest_trades_csv, name="trades_csv"),
    path("<int:pk>/report.json", views.backtest_report_json, name="report_json"),
]
