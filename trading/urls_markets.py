"""Market pages (names in the ``trading`` namespace): ``markets``, ``market``, ``market-candles``.

A market is addressed by its exchange's ccxt id and a reversible symbol slug
(``trading.selectors.markets.market_slug``): ``/markets/binance/BTC-USDT/`` is ``BTC/USDT``,
``/markets/binance/BTC-USDT-USDT/`` the ``BTC/USDT:USDT`` perpetual.
"""

from django.urls import path

from trading.views import markets as views

urlpatterns = [
    path("markets/", views.markets_list, name="markets"),
    path("markets/<slug:exchange>/<str:slug>/", views.market_detail, name="market"),
    path("markets/<slug:exchange>/<str:slug>/candles.json", views.market_candles_json, name="market-candles"),
]
