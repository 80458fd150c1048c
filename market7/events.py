"""The one place side effects leave a transaction: websocket pushes after commit.

``publish(user_id, event, data)`` schedules a message to the user's live group on the Redis
channel layer with ``transaction.on_commit``, so a rolled-back step pushes nothing
(Zulip's "send events on commit"). Consumers in ``trading.consumers`` relay them to browsers.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    """Channel-layer group that every live connection of ``user_id`` joins."""
    return f"user.{int(user_id)}"


def send_now(user_id: int, event: str, data: dict[str, Any]) -> None:
    """Push immediately (no transaction involved). Failures are logged, never raised:
    a missed push must not undo a committed trade."""
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "live.event", "event": event, "data": data})
    except Exception:  # pragma: no cover - depends on Redis being down
        log.exception("live push %s to user %s failed", event, user_id)


def publish(user_id: int, event: str, data: dict[str, Any]) -> None:
    """Send ``event`` with JSON-safe ``data`` to ``user_id``'s live connections after commit."""
    transaction.on_commit(lambda: send_now(user_id, event, data))
