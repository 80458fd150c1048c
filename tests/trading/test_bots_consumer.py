"""The live websocket: anonymous refused, a snapshot on connect, only one's own bots' events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from tests.conftest import ws_connect
from tests.trading.conftest import load_bundled, make_replay_bot, no_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def _setup(make_user):
    load_bundled("BTCUSDT-1h.csv.gz")
    load_bundled("ETHUSDT-1h.csv.gz")
    alice = make_user("wsalice", "trader")
    bob = make_user("wsbob", "trader")
    with no_enqueue():
        mine = make_replay_bot(alice, name="mine")
        theirs = make_replay_bot(bob, name="theirs")
    return alice, bob, mine, theirs


def _step(bot, seconds):
    from trading.services.runner import bot_step

    bot.refresh_from_db()
    return bot_step(bot_id=bot.pk, now=bot.replay_clock_wall + timedelta(seconds=seconds))


async def _connect(user):
    return await ws_connect(user)


async def test_snapshot_on_connect_and_only_own_bot_events(make_user):
    alice, bob, mine, theirs = await sync_to_async(_setup)(make_user)
    await sync_to_async(_step)(mine, 10.5)
    ws = await _connect(alice)
    snap = await ws.receive_json_from(timeout=5)
    assert snap["event"] == "snapshot"
    data = snap["data"]
    assert [b["bot_id"] for b in data["bots"]] == [mine.pk]
    card = data["bots"][0]
    await sync_to_async(mine.refresh_from_db)()
    assert (card["name"], card["status"], card["markets"], card["capital"]) == (
        "mine",
        "running",
        ["BTC/USDT", "ETH/USDT"],
        "1000",
    )
    assert card["equity"] == format(mine.equity.normalize(), "f")
    assert card["last_candle_at"] == "2025-04-01T09:00:00+00:00"
    assert data["summary"]["bots_total"] == 1 and data["summary"]["active_trades"] == card["open_trades"]
    assert sorted(p["symbol"] for p in data["prices"]) == ["BTC/USDT", "ETH/USDT"]

    # bob's bot trades: alice hears nothing
    await sync_to_async(_step)(theirs, 20.5)
    assert await ws.receive_nothing(timeout=0.5)
    # alice's bot trades: she gets its events, all about her bot
    report = await sync_to_async(_step)(mine, 30.5)
    received = []
    while True:
        try:
            received.append(await ws.receive_json_from(timeout=2))
        except Exception:
            break
        if received[-1]["event"] == "pnl":
            break
    names = [m["event"] for m in received]
    assert names.count("order_filled") == report.fills
    assert names.count("price") == 2 and names[-1] == "pnl"
    assert {m["data"]["bot_id"] for m in received} == {mine.pk}
    await sync_to_async(mine.refresh_from_db)()
    assert received[-1]["data"]["equity"] == format(mine.equity.normalize(), "f")
    # asking again gives a fresh snapshot
    await ws.send_json_to({"type": "snapshot"})
    again = await ws.receive_json_from(timeout=5)
    assert again["event"] == "snapshot" and again["data"]["bots"][0]["last_candle_at"] == "2025-04-02T05:00:00+00:00"
    await ws.disconnect()


async def test_a_user_without_bots_gets_no_snapshot_and_anonymous_is_refused(make_user):
    from market7.asgi import application

    carol = await sync_to_async(make_user)("wscarol", "viewer")
    ws = await _connect(carol)
    assert await ws.receive_nothing(timeout=0.3)
    await ws.send_json_to({"type": "snapshot"})
    snap = await ws.receive_json_from(timeout=5)
    assert snap["event"] == "snapshot" and snap["data"]["bots"] == [] and snap["data"]["prices"] == []
    await ws.disconnect()
    anon = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://127.0.0.1")])
    # accepted, then closed with 4401, so that the browser sees the code (tests/market7/test_ws_refusal.py)
    assert await anon.connect() == (True, None)
    assert await anon.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
