"""Websocket URL routes of every app, collected in one list for ``asgi.py``."""

from trading.routing import websocket_urlpatterns as trading_ws

websocket_urlpatterns = [*trading_ws]
