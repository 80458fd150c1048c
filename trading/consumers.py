"""Websocket consumers: one live connection per logged-in user at ``/ws/live/``.

Refusals are close codes sent **after** accepting the handshake (a close before accept reaches
the browser as a bare HTTP 403 and a 1006 close, without the reason): 4401 not logged in (no
session, a forged or expired cookie), 4404 no websocket at that path (``market7/routing.py``),
4503 live updates unavailable (the channel layer's Redis cannot be reached; logged as one
warning, no traceback) — :data:`CLOSE_CODES`, docs/bots.md. A connection joins only its own user's
group (``market7.events.user_group``), so a user hears only about their own objects: every
bot event is published with the bot owner's id (``trading.services.runner``).

Messages are JSON ``{"event": <name>, "data": {...}}``; the events and their data are listed
in ``docs/bots.md`` (``price``, ``order_filled``, ``trade_opened``, ``trade_closed``, ``pnl``,
``bot_status``, ``snapshot``).

From the channel layer a connection gets ``live.event`` (one event) or ``live.batch`` (the
events of one commit, in publish order — ``market7.events``); either way the browser gets one
JSON message per event, in order.

Snapshot: right after connecting, a user who has bots receives one ``snapshot`` event (their
bots, the dashboard summary and the last prices — ``trading.selectors.bots.live_snapshot``), so
a page shows current values before the next push; a user without bots gets none. A client can
ask again at any time with ``{"type": "snapshot"}``. ``{"type": "ping"}`` answers
``{"event": "pong"}``. Anything else (not JSON, a binary frame, an unknown type) answers
``{"event": "error", "data": {"reason": ...}}`` and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection
from redis.exceptions import RedisError

from market7 import metrics
from market7.events import user_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_UNAVAILABLE = 4503
#: ``{code: meaning}`` of the live websocket's refusals (docs/bots.md, "Close codes").
CLOSE_CODES = {
    CLOSE_UNAUTHENTICATED: "not logged in",
    CLOSE_NOT_FOUND: "no websocket at this path",
    CLOSE_UNAVAILABLE: "live updates unavailable (channel layer unreachable), retry later",
}
#: What an unreachable channel layer raises (redis-py errors, refused/reset sockets, timeouts).
CHANNEL_LAYER_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


async def refuse(receive, send, code: int) -> None:
    """A raw ASGI refusal: wait for the handshake, accept it, close with ``code``. Needs no
    channel layer (an anonymous client costs no Redis subscription)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": code})
            return
        if message["type"] == "websocket.disconnect":
            return


async def not_found(scope, receive, send) -> None:
    """ASGI app of every websocket path without a route: closed with 4404 (instead of the
    router's "No route found" exception, a traceback and a 500-like close)."""
    await refuse(receive, send, CLOSE_NOT_FOUND)


@database_sync_to_async
def _snapshot(user, *, only_if_bots: bool) -> dict | None:
    from trading.models import Bot
    from trading.selectors.bots import live_snapshot

    try:
        if only_if_bots and not Bot.objects.for_user(user).exists():
            return None
        return live_snapshot(user=user)
    finally:
        # Each connection runs its sync code in its own thread; with CONN_MAX_AGE that thread
        # would keep a database connection open for as long as the websocket lives (200 open
        # sockets = 200 Postgres connections). Give it back now.
        connection.close()


class LiveConsumer(AsyncJsonWebsocketConsumer):
    _handshake = False  # websocket.connect received
    _accepted = False
    _counted = False  # counted in market7_websocket_connections
    group = None

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse(receive, send, CLOSE_UNAUTHENTICATED)
            return
        try:
            # channels' consumer opens the channel (pubsub layer: a Redis subscription) and
            # reads it for the whole connection: Redis can fail here, in connect, or later.
            await super().__call__(scope, receive, send)
        except CHANNEL_LAYER_ERRORS as exc:
            logger.warning(
                "live websocket of user %s closed (%s): channel layer unavailable (%s: %s)",
                user.pk,
                CLOSE_UNAVAILABLE,
                type(exc).__name__,
                exc,
            )
            await self._forget_group()
            self._uncount()
            if self._accepted:
                await send({"type": "websocket.close", "code": CLOSE_UNAVAILABLE})
            elif self._handshake:
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": CLOSE_UNAVAILABLE})
            else:
                await refuse(receive, send, CLOSE_UNAVAILABLE)

    async def _forget_group(self) -> None:
        """Best effort: leave the group when the layer failed mid-connection (a pubsub layer
        keeps its in-process group table even while Redis is away)."""
        if self.group and getattr(self, "channel_layer", None) is not None:
            with contextlib.suppress(*CHANNEL_LAYER_ERRORS):
                await asyncio.wait_for(self.channel_layer.group_discard(self.group, self.channel_name), 1)

    async def websocket_connect(self, message):
        self._handshake = True
        await super().websocket_connect(message)

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self._accepted = True
        if not self._counted:
            self._counted = True
            metrics.websocket_opened()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            metrics.websocket_closed()

    async def connect(self):
        user = self.scope["user"]
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await _snapshot(user, only_if_bots=True)
        if snapshot is not None:
            await self.send_json({"event": "snapshot", "data": snapshot})

    async def disconnect(self, code):
        self._uncount()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _error(self, reason: str) -> None:
        await self.send_json({"event": "error", "data": {"reason": reason}})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self._error("binary frames are not read")
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self._error("not a JSON message")
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"event": "pong"})
        elif kind == "snapshot":
            await self.send_json({"event": "snapshot", "data": await _snapshot(self.scope["user"], only_if_bots=False)})
        else:
            await self._error(f"unknown message type {kind!r} (use ping or snapshot)")

    async def live_event(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})

    async def live_batch(self, message):
        for item in message["events"]:
            await self.send_json({"event": item["event"], "data": item["data"]})
