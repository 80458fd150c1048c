"""Websocket URL routes of every app, collected in one list for ``asgi.py``.

The last route catches every other path and closes it with 4404 (``trading.consumers``,
docs/bots.md "Close codes") instead of letting the router raise "No route found".
"""

from django.urls import re_path

from trading.consumers import not_found
from trading.routing import websocket_urlpatterns as trading_ws

websocket_urlpatterns = [*trading_ws, re_path(r"", not_found)]
