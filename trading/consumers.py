"""Websocket consumers: one live connection per logged-in user at ``/ws/live/``.

Anonymous connections are refused. A connection joins only its own user's group
(``market7.events.user_group``), so a user hears only about their own objects.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from market7.events import user_group


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"event": "pong"})

    async def live_event(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})
