"""The one place side effects leave a transaction: websocket pushes after commit.

``publish(user_id, event, data)`` queues a message for the user's live group on the Redis
channel layer and sends it only once the transaction commits, so a rolled-back step pushes
nothing (Zulip's "send events on commit"). Consumers in ``trading.consumers`` relay them to
browsers, one JSON message ``{"event", "data"}`` per event.

Batching. Events published inside one transaction are collected and leave together after
COMMIT, through ONE ``on_commit`` callback (not one per event) and ONE event-loop entry
(``async_to_sync``) for all of them. Per user group, in publish order, one channel-layer
message carries them — type ``live.event`` for one event (the message shape used before
batching), ``live.batch`` with ``events: [{"event", "data"}, ...]`` for several, split every
:data:`BATCH_MAX` events — sent with the layer's own ``group_send``, one per message, groups
concurrently (at most :data:`SEND_CONCURRENCY` at once), each group's messages in order.
Before batching a 200-event commit made 200 sequential ``async_to_sync(group_send)`` calls,
each on a fresh event loop with a fresh Redis connection.

Savepoints. The collected events live in a *segment*: the run of consecutive ``publish``
calls made at one savepoint level of one transaction on one database connection. Each
segment registers one ``on_commit`` callback at its own level, so Django's own bookkeeping
decides what survives: a rolled-back savepoint drops its segments' callbacks (their events are
never sent), a rolled-back transaction drops them all. A transaction that publishes only at
one level — every bot step, every service call — is one segment, hence one send. Publishing
at another level (inside a nested ``atomic``, or back out of it) starts a new segment, which
keeps publish order since ``on_commit`` callbacks run in registration order.

Outside a transaction (autocommit) ``publish`` sends at once, as ``on_commit`` does.
Failures are logged, never raised: a missed push must not undo a committed trade.

Every push goes through :func:`send_now` (the commit flush passes each event through it with
``batch=``), so patching ``market7.events.send_now`` still sees — or silences — every event,
one call per event, in order (``tests/trading/test_runner.py``, ``benchmarks/bot_step.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DEFAULT_DB_ALIAS, connections, transaction

log = logging.getLogger(__name__)

#: Most events one ``live.batch`` message carries; a larger burst for one user is split into
#: several messages, sent in order.
BATCH_MAX = 200
#: Most ``group_send`` calls in flight at once during a flush.
SEND_CONCURRENCY = 16

_SEGMENT_ATTR = "_market7_live_segment"

Push = tuple[int, str, dict[str, Any]]


def user_group(user_id: int) -> str:
    """Channel-layer group that every live connection of ``user_id`` joins."""
    return f"user.{int(user_id)}"


def group_messages(pushes: Iterable[Push]) -> dict[str, list[dict[str, Any]]]:
    """Channel-layer messages per user group for ``pushes`` (``(user_id, event, data)``), in order.

    One event: ``{"type": "live.event", "event", "data"}``; several: ``{"type": "live.batch",
    "events": [{"event", "data"}, ...]}`` with at most :data:`BATCH_MAX` events per message.
    """
    per_group: dict[str, list[dict[str, Any]]] = {}
    for user_id, event, data in pushes:
        per_group.setdefault(user_group(user_id), []).append({"event": event, "data": data})
    messages: dict[str, list[dict[str, Any]]] = {}
    for group, events in per_group.items():
        if len(events) == 1:
            messages[group] = [{"type": "live.event", **events[0]}]
        else:
            messages[group] = [
                {"type": "live.batch", "events": events[i : i + BATCH_MAX]} for i in range(0, len(events), BATCH_MAX)
            ]
    return messages


async def _send_groups(layer, messages: dict[str, list[dict[str, Any]]]) -> None:
    """Send every group's messages, each group's in order; failures are logged, never raised."""
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send_group(group: str, group_messages_: list[dict[str, Any]]) -> None:
        async with gate:
            for message in group_messages_:  # in order; one group's messages never overtake
                try:
                    await layer.group_send(group, message)
                except Exception:
                    log.exception("live push to %s failed (%s)", group, _describe(message))

    await asyncio.gather(*(send_group(group, msgs) for group, msgs in messages.items()))


def _describe(message: dict[str, Any]) -> str:
    if message.get("type") == "live.batch":
        return f"{len(message['events'])} events"
    return str(message.get("event"))


def send_many(pushes: Iterable[Push]) -> None:
    """Push ``(user_id, event, data)`` items now, grouped per user in order, in one event-loop
    entry. Failures are logged, never raised."""
    try:
        messages = group_messages(pushes)
        if not messages:
            return
        layer = get_channel_layer()
        if layer is None:
            log.error("live push skipped: no channel layer configured")
            return
        async_to_sync(_send_groups)(layer, messages)
    except Exception:  # e.g. called from inside a running event loop, or Redis unreachable
        log.exception("live push failed")


def send_now(user_id: int, event: str, data: dict[str, Any], *, batch: list[Push] | None = None) -> None:
    """Push immediately (no transaction involved). Failures are logged, never raised:
    a missed push must not undo a committed trade.

    With ``batch`` (a list) the push is appended to it instead, for :func:`send_many` to
    deliver together with the others: the after-commit flush routes every event through here
    this way, so this stays the one function each push goes through.
    """
    if batch is not None:
        batch.append((user_id, event, data))
        return
    send_many([(user_id, event, data)])


class _Segment:
    """Events published at one savepoint level of one transaction; one ``on_commit`` callback."""

    __slots__ = ("sids", "pushes", "done", "callback")

    def __init__(self, sids: tuple):
        self.sids = sids
        self.pushes: list[Push] = []
        self.done = False
        self.callback = self.flush  # one bound method, so it can be found by identity

    def flush(self) -> None:
        self.done = True
        pushes, self.pushes = self.pushes, []
        batch: list[Push] = []
        for user_id, event, data in pushes:
            send_now(user_id, event, data, batch=batch)
        send_many(batch)


def _registered(connection, segment: _Segment) -> bool:
    """Is the segment's callback still pending on ``connection`` (not dropped by a rollback)?"""
    callback = segment.callback
    return any(func is callback for _, func, _ in reversed(connection.run_on_commit))


def publish(user_id: int, event: str, data: dict[str, Any], *, using: str | None = None) -> None:
    """Send ``event`` with JSON-safe ``data`` to ``user_id``'s live connections after commit.

    Inside a transaction the event joins the transaction's batch (see the module docstring);
    outside one it is sent at once.
    """
    connection = connections[using or DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        # Autocommit: on_commit runs it right away (and refuses manual transaction management).
        transaction.on_commit(lambda: send_now(user_id, event, data), using=using)
        return
    sids = tuple(connection.savepoint_ids)
    segment: _Segment | None = getattr(connection, _SEGMENT_ATTR, None)
    if segment is None or segment.done or segment.sids != sids or not _registered(connection, segment):
        segment = _Segment(sids)
        transaction.on_commit(segment.callback, using=using)
        setattr(connection, _SEGMENT_ATTR, segment)
    segment.pushes.append((user_id, event, data))
