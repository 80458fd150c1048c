"""Template context of the serving arrangement (see ``market7/serving.py``)."""

from django.conf import settings

from market7.serving import live_ws_url


def live_socket(request) -> dict:
    """``live_ws_url``: where the page's one websocket connects (``/ws/live/`` on the page's
    origin, or ``ws[s]://<page host>:<MARKET7_WS_PORT>/ws/live/`` when daphne has its own port)."""
    if not settings.MARKET7_WS_PORT:
        return {"live_ws_url": live_ws_url(host="", secure=False, ws_port=None)}
    return {
        "live_ws_url": live_ws_url(
            host=request.get_host(), secure=request.is_secure(), ws_port=settings.MARKET7_WS_PORT
        )
    }
