"""Market pages (names in the ``trading`` namespace): ``markets``, ``market``, ``market-candles``; the
watchlist actions ``market-watch``, ``watchlist-multiplier``, ``markets-watch-liquid``.

A market is addressed by its exchange's ccxt id and a reversible symbol slug
(``trading.selectors.markets.market_slug``): ``/markets/binance/BTC-USDT/`` is ``BTC/USDT``,
``/markets/binance/BTC-USDT-USDT/`` the ``BTC/USDT:USDT`` perpetual.
"""

from django.urls import path

from trading.views import markets as views
from trading.views import markets_watch as watch

urlpatterns = [
    path("markets/", views.markets_list, name="markets"),
    path("markets/watch-liquid/", watch.markets_watch_liquid, name="markets-watch-liquid"),
    path("markets/watchlist/<int:pk>/multiplier/", watch.watchlist_multiplier, name="watchlist-multiplier"),
    path("markets/<slug:exchange>/<str:slug>/watch/", watch.market_watch, name="market-watch"),
    path("markets/<slug:exchange>/<str:slug>/", views.market_detail, name="market"),
    path("markets/<slug:exchange>/<str:slug>/candles.json", views.market_candles_json, name="market-candles"),
]
