"""The Channels layer configuration: which channels_redis layer carries the live pushes.

Two layers, chosen by ``MARKET7_CHANNEL_LAYER`` (README, Settings):

``"pubsub"`` (default) — ``channels_redis.pubsub.RedisPubSubChannelLayer``. Each server process
keeps one subscription connection; a group message is one ``PUBLISH`` and Redis pushes it to
every subscribed process, which hands it to its websockets. A burst of N messages reaches a
daphne process without N request/response round trips, which is what the one-commit,
200-user fan-out needs (``benchmarks/ws_fanout.py`` B, on the 2-core machine: p95 517 ms with
``"queue"``, 159 ms with ``"pubsub"``). Nothing is stored in Redis: a process that is not
connected when a message is published never gets it (a page catches up from the snapshot it
is sent on every websocket (re)connect, or asks for one). channels_redis calls this layer
beta.

``"queue"`` — ``channels_redis.core.RedisChannelLayer``, the classic layer. Messages wait in a
Redis sorted set per server process, at most ``capacity`` of them, for ``expiry`` seconds, so a
short disconnect loses nothing; the process fetches them one round trip each.

Both get the same Redis URL, key prefix and connection-pool bound (``max_connections``:
redis-py's default of 100 raised ``MaxConnectionsError`` when a few hundred websockets of one
process joined their groups at once on the queue layer).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHANNEL_LAYER_KINDS", "channel_layer_config"]

#: Values of ``MARKET7_CHANNEL_LAYER``.
CHANNEL_LAYER_KINDS = ("pubsub", "queue")

_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "queue": "channels_redis.core.RedisChannelLayer",
}


def channel_layer_config(
    kind: str, redis_url: str, *, prefix: str, max_connections: int, capacity: int, expiry: int
) -> dict[str, Any]:
    """The ``CHANNEL_LAYERS["default"]`` dict for ``kind`` (one of :data:`CHANNEL_LAYER_KINDS`).

    ``capacity`` (messages per channel) and ``expiry`` (seconds) apply to ``"queue"`` only; the
    pubsub layer stores nothing. Unknown ``kind``: ``ValueError``.
    """
    if kind not in _BACKENDS:
        raise ValueError(f"unknown channel layer {kind!r}; use one of {', '.join(CHANNEL_LAYER_KINDS)}")
    config: dict[str, Any] = {
        "hosts": [{"address": redis_url, "max_connections": max_connections}],
        "prefix": prefix,
    }
    if kind == "queue":
        config.update(capacity=capacity, expiry=expiry)
    return {"BACKEND": _BACKENDS[kind], "CONFIG": config}
