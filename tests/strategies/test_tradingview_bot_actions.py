"""TradingView alert -> bot command: buy / sell / close queue the exact ``start_deal`` /
``close_symbol`` JSON on the token owner's running bot trading the symbol; every other case is a
4xx with a reason and writes nothing; a replayed message id queues nothing."""

from __future__ import annotations

import json

import pytest

from strategies.models import WebhookSignal
from strategies.services.webhooks import webhook_token_rotate
from tests.trading.conftest import load_bundled, make_replay_bot, no_enqueue
from trading.models import Bot, BotEvent

LONG = {
    "cmd": "start_deal", "symbol": "BTC/USDT", "side": "long", "source": "tradingview", "score": None,
    "reason": "TradingView alert m-1", "signal_time": None,
}  # fmt: skip
CLOSE = {"cmd": "close_symbol", "symbol": "BTC/USDT", "source": "tradingview"}


@pytest.fixture
def markets(db):
    return {m.symbol: m for m in (load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz"))}


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def token(alice):
    return webhook_token_rotate(user=alice)


def post(client, token, **kw):
    body = {"symbol": "BTCUSDT", "action": "buy", "price": 65000.5, "id": "m-1"} | kw
    return client.post(f"/webhooks/tradingview/{token}/", data=json.dumps(body), content_type="application/json")


def _events(bot):
    return list(BotEvent.objects.filter(bot=bot, rule="tradingview").values_list("outcome", "symbol", "reason"))


def test_buy_queues_long_start_deal_once(client, markets, alice, token, django_capture_on_commit_callbacks):
    bot = make_replay_bot(alice, markets=("BTC/USDT",))
    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        r = post(client, token, bot=bot.pk)
    assert r.status_code == 200
    sig = WebhookSignal.objects.get()
    assert r.json() == {"result": "start_deal long BTC/USDT queued", "signal": sig.pk, "status": "recorded"}
    assert (sig.source, sig.action, sig.bot, sig.market.symbol) == ("tradingview", "buy", bot, "BTC/USDT")
    assert Bot.objects.get(pk=bot.pk).commands == [LONG]
    assert _events(bot) == [
        ("requested", "BTC/USDT", "TradingView alert m-1 (buy): start_deal long BTC/USDT requested")
    ]
    assert kick.call_count == 1

    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        again = post(client, token, bot=bot.pk)  # the same message id: a replay
    assert again.json() == {"result": "start_deal long BTC/USDT queued", "signal": sig.pk, "status": "duplicate"}
    assert Bot.objects.get(pk=bot.pk).commands == [LONG] and len(_events(bot)) == 1 and kick.call_count == 0
    assert WebhookSignal.objects.count() == 1


def test_sell_closes_the_long_or_shorts_on_a_short_bot(client, markets, alice, token):
    long_bot = make_replay_bot(alice, name="long", markets=("BTC/USDT",))
    short_bot = make_replay_bot(alice, name="short", markets=("BTC/USDT",), params={"direction": "short"})
    with no_enqueue():
        assert post(client, token, action="sell", bot=long_bot.pk, id="s-1").json()["result"] == (
            "close_symbol BTC/USDT queued"
        )
        assert post(client, token, action="sell", bot=short_bot.pk, id="s-2").json()["result"] == (
            "start_deal short BTC/USDT queued"
        )
        assert post(client, token, action="close", bot=short_bot.pk, id="s-3", symbol="BTC/USDT").status_code == 200
        # a second close of the same symbol before the step: the same command is not queued twice
        assert post(client, token, action="close", bot=short_bot.pk, id="s-4").json()["result"] == (
            "close_symbol BTC/USDT already queued"
        )
    assert Bot.objects.get(pk=long_bot.pk).commands == [CLOSE]
    assert Bot.objects.get(pk=short_bot.pk).commands == [
        LONG | {"side": "short", "reason": "TradingView alert s-2"},
        CLOSE,
    ]
    assert WebhookSignal.objects.count() == 4


@pytest.mark.parametrize(
    "case, status, error",
    [
        ("other_symbol", 400, "bot {pk} does not trade ETH/USDT"),
        ("paused", 409, "bot {pk} is paused: only a running bot acts on alerts; start it first"),
        ("stopped", 409, "bot {pk} is stopped: only a running bot acts on alerts; start it first"),
        ("other_user", 404, "bot {pk} not found"),
        ("viewer", 403, "your role may not operate bots"),
    ],
)
def test_refused_alerts_write_nothing(client, markets, alice, make_user, token, case, status, error):
    owner = make_user("bob") if case == "other_user" else alice
    bot = make_replay_bot(owner, markets=("BTC/USDT",))
    if case == "viewer":  # a viewer cannot create bots: hand alice's running bot over
        owner = make_user("victor", "viewer")
        Bot.objects.filter(pk=bot.pk).update(owner=owner)
    if case in ("paused", "stopped"):
        Bot.objects.filter(pk=bot.pk).update(status=case)
    tok = webhook_token_rotate(user=owner) if case == "viewer" else token
    with no_enqueue() as kick:
        r = post(client, tok, bot=bot.pk, symbol="ETHUSDT" if case == "other_symbol" else "BTCUSDT")
    assert (r.status_code, r.json()) == (status, {"error": error.format(pk=bot.pk)})
    assert WebhookSignal.objects.count() == 0 and Bot.objects.get(pk=bot.pk).commands == []
    assert _events(bot) == [] and not kick.called


def test_alert_without_bot_only_recorded(client, markets, alice, token):
    bot = make_replay_bot(alice, markets=("BTC/USDT",))
    assert post(client, token, action="sell").json()["result"] == "recorded"
    assert Bot.objects.get(pk=bot.pk).commands == [] and _events(bot) == []
