"""Websocket consumers: one live connection per logged-in user at ``/ws/live/``.

Anonymous connections are refused (close code 4401). A connection joins only its own user's
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
``{"event": "pong"}``.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection

from market7.events import user_group


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
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await _snapshot(user, only_if_bots=True)
        if snapshot is not None:
            await self.send_json({"event": "snapshot", "data": snapshot})

    async def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"event": "pong"})
        elif kind == "snapshot":
            await self.send_json({"event": "snapshot", "data": await _snapshot(self.scope["user"], only_if_bots=False)})

    async def live_event(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})

    async def live_batch(self, message):
        for item in message["events"]:
            await self.send_json({"event": item["event"], "data": item["data"]})
