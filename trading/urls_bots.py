"""Bot, dashboard and trades pages (names in the ``trading`` namespace).

``home`` (``/``) is the dashboard. Fragments (``_``-prefixed paths) serve HTMX swaps and the
live refresh. Every URL is scoped to the logged-in user; another user's bot is a 404.
"""

from django.urls import path

from trading.views import bot_analytics, bots, dashboard, deals, trades

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("dashboard/equity.json", dashboard.equity_json, name="dashboard-equity"),
    path("live/", dashboard.live_fragments, name="live-fragments"),
    path("bots/", bots.bot_list, name="bots"),
    path("bots/new/", bots.bot_create, name="bot-create"),
    path("bots/_params/", bots.bot_params, name="bot-params"),
    path("bots/stop-all/", bots.bots_stop_all, name="bots-stop-all"),
    path("bots/<int:pk>/", bots.bot_detail, name="bot"),
    path("bots/<int:pk>/edit/", bots.bot_edit, name="bot-edit"),
    path("bots/<int:pk>/events/", bots.bot_events, name="bot-events"),
    path("bots/<int:pk>/chart.json", bots.bot_chart_json, name="bot-chart"),
    path("bots/<int:pk>/_row/", bots.bot_row, name="bot-row"),
    path("bots/<int:pk>/close-all/", bots.bot_close_all, name="bot-close-all"),
    path("bots/<int:pk>/trades/<int:trade_id>/close/", bots.bot_close_trade, name="bot-close-trade"),
    path("bots/<int:pk>/equity.json", bot_analytics.bot_equity_json, name="bot-equity"),
    # before the <slug:action> catch-all below, which would take "_performance" for an action
    path("bots/<int:pk>/_performance/", bot_analytics.bot_performance, name="bot-performance"),
    # part A (risk, clone, presets): before the catch-all action route, which would take them
    path("bots/<int:pk>/resume-trading/", bots.bot_resume_trading, name="bot-resume-trading"),
    path("bots/<int:pk>/clone/", bots.bot_clone, name="bot-clone"),
    path("bots/<int:pk>/save-preset/", bots.bot_save_preset, name="bot-save-preset"),
    path("bots/<int:pk>/<slug:action>/", bots.bot_action, name="bot-action"),
    path("trades/", trades.trades_list, name="trades"),
    path("trades/export.csv", trades.trades_csv, name="trades-csv"),
    path("bots/presets/", bots.preset_list, name="bot-presets"),
    path("bots/presets/<int:preset_id>/delete/", bots.preset_delete, name="bot-preset-delete"),
    path("bots/<int:pk>/deals/<int:trade_id>/", deals.deal_detail, name="deal"),
    path("bots/<int:pk>/deals/<int:trade_id>/close/", deals.deal_close, name="deal-close"),
    path("bots/<int:pk>/deals/<int:trade_id>/add-funds/", deals.deal_add_funds, name="deal-add-funds"),
    path("bots/<int:pk>/deals/<int:trade_id>/exits/", deals.deal_set_exits, name="deal-set-exits"),
]
