"""The live websocket refuses what it cannot serve with a documented close code (docs/bots.md,
"Close codes") — after accepting, so the browser sees the code — never a server error:

- 4401: not logged in (no session, a forged or expired session cookie);
- 4404: no websocket at that path;
- 4503: live updates unavailable (the channel layer's Redis cannot be reached), logged once as
  a warning without a traceback;
- malformed frames (not JSON, binary, unknown type) get an ``error`` event and the connection
  stays open.

Real ASGI application, real session cookies, a real Redis URL on a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections

from market7.channel_layers import channel_layer_config
from tests.conftest import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
async def _settle_channel_layer():
    yield
    layer = get_channel_layer()
    pending = list(getattr(layer, "receive_cleaners", ()))
    if pending:
        await asyncio.wait(pending, timeout=5)


def _app():
    # Importing market7.asgi runs django.setup(), which re-applies LOGGING and so drops
    # caplog's handler: import it before a test starts capturing (see _imported_asgi).
    from market7.asgi import application

    return application


@pytest.fixture(autouse=True)
def _imported_asgi():
    _app()


async def _closed_with(ws: WebsocketCommunicator) -> int:
    """The close code after an accepted handshake."""
    connected, _ = await ws.connect(timeout=5)
    assert connected, "the handshake is accepted so that the close code reaches the browser"
    message = await ws.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_anonymous_is_closed_with_4401():
    ws = WebsocketCommunicator(_app(), "/ws/live/", headers=[ORIGIN])
    assert await _closed_with(ws) == 4401


async def test_forged_session_cookie_is_closed_with_4401():
    cookie = f"{settings.SESSION_COOKIE_NAME}=forged0000000000000000000000000000".encode()
    ws = WebsocketCommunicator(_app(), "/ws/live/", headers=[ORIGIN, (b"cookie", cookie)])
    assert await _closed_with(ws) == 4401


async def test_unknown_path_is_closed_with_4404(caplog):
    with caplog.at_level(logging.ERROR):
        ws = WebsocketCommunicator(_app(), "/ws/nothing-here/", headers=[ORIGIN])
        assert await _closed_with(ws) == 4404
    assert "Traceback" not in caplog.text and "No route found" not in caplog.text


def _dead_redis_url() -> str:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


@pytest.mark.parametrize("kind", ["pubsub", "queue"])
async def test_redis_down_is_closed_with_4503_and_logged_without_traceback(make_user, settings, caplog, kind):
    user = await sync_to_async(make_user)("wsdana", "trader")
    cookie_user = await _session_cookie(user)
    settings.CHANNEL_LAYERS = {
        "default": channel_layer_config(
            kind, _dead_redis_url(), prefix="m7t", max_connections=10, capacity=100, expiry=60
        )
    }
    with caplog.at_level(logging.WARNING):
        ws = WebsocketCommunicator(_app(), "/ws/live/", headers=[ORIGIN, (b"cookie", cookie_user)])
        assert await _closed_with(ws) == 4503
        await ws.wait(timeout=5)
    warnings = [r for r in caplog.records if r.name == "trading.consumers"]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert (
        warnings[0]
        .getMessage()
        .startswith(f"live websocket of user {user.pk} closed (4503): channel layer unavailable")
    )
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text


async def _session_cookie(user) -> bytes:
    from django.test import Client

    client = Client()

    def login():
        try:
            client.force_login(user)
        finally:
            connections.close_all()

    await sync_to_async(login)()
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def test_malformed_frames_get_an_error_event_and_the_socket_stays_open(make_user):
    user = await sync_to_async(make_user)("wserin", "viewer")
    ws = await ws_connect(user)
    await ws.send_to(text_data="{not json")
    assert await ws.receive_json_from(timeout=5) == {"event": "error", "data": {"reason": "not a JSON message"}}
    await ws.send_to(bytes_data=b"\x00\x01")
    assert await ws.receive_json_from(timeout=5) == {"event": "error", "data": {"reason": "binary frames are not read"}}
    await ws.send_json_to({"type": "launch"})
    assert await ws.receive_json_from(timeout=5) == {
        "event": "error",
        "data": {"reason": "unknown message type 'launch' (use ping or snapshot)"},
    }
    await ws.send_json_to(["ping"])
    assert await ws.receive_json_from(timeout=5) == {
        "event": "error",
        "data": {"reason": "unknown message type None (use ping or snapshot)"},
    }
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"event": "pong"}
    await ws.disconnect()
