"""``market7.events``: the events of one transaction leave after COMMIT, batched, in order.

Everything here runs on the real channel layer (the Redis of the settings) and real database
transactions (``transaction=True``): websocket clients are ``WebsocketCommunicator``s on the
real ASGI application, logged in with a real session cookie.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils.module_loading import import_string

from market7 import events
from market7.channel_layers import CHANNEL_LAYER_KINDS, channel_layer_config
from market7.events import publish, user_group
from tests.conftest import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _settle_channel_layer():
    """After each test, let channels_redis finish its post-receive cleanups in the test's event
    loop: one left pending keeps a per-process lock that the next test's loop cannot take
    ("Lock ... is bound to a different event loop")."""
    yield
    layer = get_channel_layer()
    pending = list(getattr(layer, "receive_cleaners", ()))
    if pending:
        await asyncio.wait(pending, timeout=5)


def _in_thread(fn):
    """``sync_to_async(fn)`` that gives the worker thread's database connection back afterwards
    (with ``CONN_MAX_AGE`` it would stay open and block dropping the test database)."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run)


async def _connect(user) -> WebsocketCommunicator:
    return await ws_connect(user, login=lambda client, u: _in_thread(client.force_login)(u))


async def _receive(ws: WebsocketCommunicator, count: int) -> list[dict]:
    return [await ws.receive_json_from(timeout=5) for _ in range(count)]


def _touch(user) -> None:
    """A real write, so the transaction has something to commit."""
    type(user).objects.filter(pk=user.pk).update(last_name=f"n{user.pk}")


async def test_events_of_one_transaction_arrive_all_in_order_only_after_commit(make_user):
    alice = await _in_thread(make_user)("evalice")
    ws = await _connect(alice)
    n = 250
    published, commit = threading.Event(), threading.Event()
    pending_callbacks = []

    def step():
        with transaction.atomic():
            _touch(alice)
            for i in range(n):
                publish(alice.pk, "pnl", {"i": i, "equity": f"{1000 + i}.5"})
            pending_callbacks.append(len(connection.run_on_commit))
            published.set()
            assert commit.wait(10)

    task = asyncio.ensure_future(_in_thread(step)())
    while not published.is_set():
        await asyncio.sleep(0.01)
    assert pending_callbacks == [1]  # one on_commit callback for the whole transaction
    assert await ws.receive_nothing(timeout=0.3)  # nothing before COMMIT
    commit.set()
    await task
    got = await _receive(ws, n)
    assert got == [{"event": "pnl", "data": {"i": i, "equity": f"{1000 + i}.5"}} for i in range(n)]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_a_rolled_back_transaction_sends_nothing(make_user):
    alice = await _in_thread(make_user)("evalice")
    ws = await _connect(alice)

    def failing_step():
        with pytest.raises(RuntimeError), transaction.atomic():
            _touch(alice)
            for i in range(5):
                publish(alice.pk, "order_filled", {"i": i})
            raise RuntimeError("step failed")

    await _in_thread(failing_step)()
    assert await ws.receive_nothing(timeout=0.5)

    # the next transaction on the same connection starts clean: only its own events go out
    def good_step():
        with transaction.atomic():
            publish(alice.pk, "pnl", {"ok": 1})

    await _in_thread(good_step)()
    assert await _receive(ws, 1) == [{"event": "pnl", "data": {"ok": 1}}]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_savepoints_a_rolled_back_inner_block_drops_only_its_events_and_order_holds(make_user):
    alice = await _in_thread(make_user)("evalice")
    ws = await _connect(alice)

    def step():
        with transaction.atomic():
            publish(alice.pk, "price", {"n": 1})
            with transaction.atomic():  # released savepoint: kept
                publish(alice.pk, "price", {"n": 2})
            publish(alice.pk, "price", {"n": 3})
            try:
                with transaction.atomic():  # rolled-back savepoint: dropped
                    _touch(alice)
                    publish(alice.pk, "price", {"n": "lost"})
                    raise ValueError
            except ValueError:
                pass
            publish(alice.pk, "price", {"n": 4})

    await _in_thread(step)()
    got = await _receive(ws, 4)
    assert [m["data"]["n"] for m in got] == [1, 2, 3, 4]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_events_for_two_users_reach_only_their_own_groups_in_order(make_user):
    alice = await _in_thread(make_user)("evalice")
    bob = await _in_thread(make_user)("evbob")
    ws_alice, ws_bob = await _connect(alice), await _connect(bob)
    ws_alice2 = await _connect(alice)  # a second tab of alice hears the same

    def step():
        with transaction.atomic():
            _touch(alice)
            for i in range(6):
                user = alice if i % 3 else bob
                publish(user.pk, "trade_opened", {"owner": user.username, "i": i})

    await _in_thread(step)()
    want_alice = [{"event": "trade_opened", "data": {"owner": "evalice", "i": i}} for i in (1, 2, 4, 5)]
    want_bob = [{"event": "trade_opened", "data": {"owner": "evbob", "i": i}} for i in (0, 3)]
    assert await _receive(ws_alice, 4) == want_alice
    assert await _receive(ws_alice2, 4) == want_alice
    assert await _receive(ws_bob, 2) == want_bob
    for ws in (ws_alice, ws_alice2, ws_bob):
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()


async def test_one_commit_is_one_layer_message_per_user_and_big_bursts_are_split():
    layer = get_channel_layer()
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(user_group(901), one)
    await layer.group_add(user_group(902), two)
    burst = events.BATCH_MAX + 5

    def step():
        with transaction.atomic():
            for i in range(burst):
                publish(901, "price", {"i": i})
            publish(902, "pnl", {"only": True})

    try:
        await _in_thread(step)()
        first = await asyncio.wait_for(layer.receive(one), 5)
        second = await asyncio.wait_for(layer.receive(one), 5)
        assert first["type"] == second["type"] == "live.batch"
        assert first["events"] + second["events"] == [{"event": "price", "data": {"i": i}} for i in range(burst)]
        assert len(first["events"]) == events.BATCH_MAX
        lone = await asyncio.wait_for(layer.receive(two), 5)
        assert lone == {"type": "live.event", "event": "pnl", "data": {"only": True}}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(one), 0.3)
    finally:
        await layer.group_discard(user_group(901), one)
        await layer.group_discard(user_group(902), two)


async def test_any_channel_layer_gets_one_message_per_user_in_order():
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(user_group(1), one)
    await layer.group_add(user_group(2), two)
    messages = events.group_messages([(1, "price", {"n": 1}), (2, "pnl", {"n": 2}), (1, "pnl", {"n": 3})])
    await events._send_groups(layer, messages)
    assert await layer.receive(one) == {
        "type": "live.batch",
        "events": [{"event": "price", "data": {"n": 1}}, {"event": "pnl", "data": {"n": 3}}],
    }
    assert await layer.receive(two) == {"type": "live.event", "event": "pnl", "data": {"n": 2}}


async def test_outside_a_transaction_publish_sends_at_once(make_user):
    alice = await _in_thread(make_user)("evalice")
    ws = await _connect(alice)
    await _in_thread(publish)(alice.pk, "bot_status", {"status": "paused"})
    assert await _receive(ws, 1) == [{"event": "bot_status", "data": {"status": "paused"}}]
    await ws.disconnect()


async def test_a_failing_push_is_logged_not_raised_and_the_others_still_go(make_user, caplog):
    alice = await _in_thread(make_user)("evalice")
    bob = await _in_thread(make_user)("evbob")
    ws_alice, ws_bob = await _connect(alice), await _connect(bob)

    def step():
        with transaction.atomic():
            _touch(bob)
            publish(bob.pk, "pnl", {"bad": object()})  # not serializable: its group_send fails
            publish(alice.pk, "pnl", {"good": 1})

    with caplog.at_level(logging.ERROR, logger="market7.events"):
        await _in_thread(step)()  # the commit stands and nothing is raised
    assert await _receive(ws_alice, 1) == [{"event": "pnl", "data": {"good": 1}}]
    assert any(f"live push to {user_group(bob.pk)} failed" in r.getMessage() for r in caplog.records)
    assert await ws_bob.receive_nothing(timeout=0.3)
    assert await _in_thread(lambda: type(bob).objects.get(pk=bob.pk).last_name)() == f"n{bob.pk}"
    await ws_alice.disconnect()
    await ws_bob.disconnect()


def _layer(kind: str, redis_url: str | None = None):
    """A fresh channel layer of ``kind`` built from :func:`channel_layer_config` (the settings'
    prefix, pool bound, capacity and expiry) on ``redis_url`` (default: the settings' Redis)."""
    config = channel_layer_config(
        kind,
        redis_url or settings.REDIS_URL,
        prefix="m7test",
        max_connections=settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["max_connections"],
        capacity=10_000,
        expiry=60,
    )
    return import_string(config["BACKEND"])(**config["CONFIG"])


@pytest.mark.parametrize("kind", CHANNEL_LAYER_KINDS)
async def test_redis_unreachable_is_logged_not_raised(caplog, kind):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layer = _layer(kind, f"redis://127.0.0.1:{port}/0")
    with caplog.at_level(logging.ERROR, logger="market7.events"):
        await events._send_groups(layer, events.group_messages([(1, "pnl", {"n": 1}), (2, "pnl", {"n": 2})]))
    assert "live push to user.1 failed (pnl)" in caplog.text
    assert "live push to user.2 failed (pnl)" in caplog.text


async def test_a_commit_reaching_hundreds_of_users_of_one_process_delivers_them_all():
    """300 users' events from one commit all arrive, through publish() and the settings' layer
    (the queue layer's default capacity of 100 dropped the rest of such a burst)."""
    layer = get_channel_layer()
    users = range(8000, 8300)
    channels = [await layer.new_channel() for _ in users]
    await asyncio.gather(*(layer.group_add(user_group(u), ch) for u, ch in zip(users, channels, strict=True)))

    def step():
        with transaction.atomic():
            for u in users:
                publish(u, "pnl", {"user": u})

    try:
        await _in_thread(step)()
        got = await asyncio.wait_for(asyncio.gather(*(layer.receive(ch) for ch in channels)), 10)
        assert [m["data"]["user"] for m in got] == list(users)
    finally:
        await asyncio.gather(*(layer.group_discard(user_group(u), ch) for u, ch in zip(users, channels, strict=True)))


@pytest.mark.parametrize("kind", CHANNEL_LAYER_KINDS)
async def test_each_layer_kind_delivers_a_300_group_burst_in_order(kind):
    """Both MARKET7_CHANNEL_LAYER kinds carry the flush of a 300-user commit (one message per
    group, a user with several events gets one live.batch) to every channel, in order."""
    layer = _layer(kind)
    users = range(9000, 9300)
    channels = [await layer.new_channel() for _ in users]
    await asyncio.gather(*(layer.group_add(user_group(u), ch) for u, ch in zip(users, channels, strict=True)))
    pushes = [(u, "pnl", {"user": u}) for u in users] + [(9000, "price", {"p": 1}), (9000, "price", {"p": 2})]
    try:
        await events._send_groups(layer, events.group_messages(pushes))
        got = await asyncio.wait_for(asyncio.gather(*(layer.receive(ch) for ch in channels)), 10)
        assert got[0] == {
            "type": "live.batch",
            "events": [
                {"event": "pnl", "data": {"user": 9000}},
                {"event": "price", "data": {"p": 1}},
                {"event": "price", "data": {"p": 2}},
            ],
        }
        assert got[1:] == [{"type": "live.event", "event": "pnl", "data": {"user": u}} for u in users[1:]]
    finally:
        await asyncio.gather(*(layer.group_discard(user_group(u), ch) for u, ch in zip(users, channels, strict=True)))
        await layer.flush()


@pytest.mark.parametrize("kind", CHANNEL_LAYER_KINDS)
async def test_channel_layer_pool_takes_hundreds_of_simultaneous_group_adds(kind):
    """redis-py's default pool (100) raised MaxConnectionsError here on the queue layer; the
    settings raise it (for both kinds)."""
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert config["hosts"][0]["address"] == settings.REDIS_URL
    assert config["hosts"][0]["max_connections"] >= 300
    layer = _layer(kind)

    names = [user_group(7000 + i) for i in range(300)]
    channel = await layer.new_channel()
    try:
        await asyncio.gather(*(layer.group_add(name, channel) for name in names))
    finally:
        await asyncio.gather(*(layer.group_discard(name, channel) for name in names))
        await layer.flush()
