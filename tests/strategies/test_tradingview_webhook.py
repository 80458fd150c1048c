"""``POST /webhooks/tradingview/<token>/``: token, rate limit, validation, idempotency, ownership,
and the bot command it queues (strategies.services.webhooks; more in test_tradingview_bot_actions)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from strategies.models import WebhookSignal, WebhookToken
from strategies.services import webhooks
from strategies.services.webhooks import RATE_LIMIT, token_hash, webhook_token_rotate
from tests.trading.conftest import load_bundled, make_replay_bot, no_enqueue
from trading.models import Bot


@pytest.fixture
def markets(db):
    return {m.symbol: m for m in (load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz"))}


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def token(alice):
    return webhook_token_rotate(user=alice)


def post(client, token, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(f"/webhooks/tradingview/{token}/", data=data, content_type="application/json")


def alert(**kw):
    return {"symbol": "BTCUSDT", "action": "buy", "price": 65000.5, "id": "m-1", **kw}


def test_token_stored_as_hash_and_rotation_revokes(alice):
    first = webhook_token_rotate(user=alice)
    tok = WebhookToken.objects.get(user=alice)
    assert tok.token_hash == token_hash(first) and len(tok.token_hash) == 64
    assert tok.prefix == first[:8] and first not in str(tok.__dict__)
    second = webhook_token_rotate(user=alice)
    assert second != first
    assert WebhookToken.objects.filter(user=alice, revoked_at__isnull=True).get().token_hash == token_hash(second)
    assert WebhookToken.objects.filter(user=alice).count() == 2


def test_good_post_recorded(client, markets, alice, token):
    r = post(client, token, alert())
    assert r.status_code == 200
    sig = WebhookSignal.objects.get()
    assert r.json() == {"result": "recorded", "signal": sig.pk, "status": "recorded"}
    assert (sig.source, sig.owner, sig.action, sig.symbol, sig.market, sig.message_id, sig.bot) == (
        "tradingview", alice, "buy", "BTCUSDT", markets["BTC/USDT"], "m-1", None,
    )  # fmt: skip
    assert sig.price == Decimal("65000.5")
    assert WebhookToken.objects.get(user=alice).last_used is not None


def test_exchange_prefixed_symbol(client, markets, token):
    r = post(client, token, alert(symbol="BINANCE:ETHUSDT", action="sell", price=None))
    assert r.status_code == 200
    sig = WebhookSignal.objects.get()
    assert (sig.market, sig.action, sig.price) == (markets["ETH/USDT"], "sell", None)


def test_replay_is_duplicate(client, markets, token):
    first = post(client, token, alert())
    again = post(client, token, alert(action="sell", price=1))
    assert again.status_code == 200
    assert again.json() == {"result": "recorded", "signal": first.json()["signal"], "status": "duplicate"}
    assert WebhookSignal.objects.count() == 1 and WebhookSignal.objects.get().action == "buy"


@pytest.mark.parametrize("bad", ["nope", "not-the-token-at-all-xxxxxxxxxxxx"])
def test_wrong_token_403(client, markets, token, bad):
    r = post(client, bad, alert())
    assert (r.status_code, r.json()) == (403, {"error": "unknown or revoked token"})
    assert WebhookSignal.objects.count() == 0


def test_revoked_token_403(client, markets, alice, token):
    webhook_token_rotate(user=alice)
    r = post(client, token, alert())
    assert (r.status_code, r.json()) == (403, {"error": "unknown or revoked token"})
    assert WebhookSignal.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "body is not JSON"),
        ("[1, 2]", "body must be a JSON object"),
        (alert(id=""), 'missing "id" (the message id, a string)'),
        ({"symbol": "BTCUSDT", "action": "buy"}, 'missing "id" (the message id, a string)'),
        (alert(symbol=""), 'missing "symbol" (e.g. "BTCUSDT")'),
        (alert(action="hold"), "\"action\" must be one of buy, sell, close (got 'hold')"),
        (alert(bot="x"), '"bot" must be a bot id (an integer)'),
        (alert(action="close"), '"close" needs "bot" (the id of the bot to close)'),
        (alert(price="abc"), "\"price\" is not a number ('abc')"),
        (alert(price=-1), '"price" must be a positive number (-1)'),
        (alert(symbol="FOOBAR"), "unknown symbol 'FOOBAR': no stored market"),
    ],
)
def test_malformed_400(client, markets, token, body, reason):
    r = post(client, token, body)
    assert (r.status_code, r.json()) == (400, {"error": reason})
    assert WebhookSignal.objects.count() == 0


def test_get_is_405(client, token):
    assert client.get(f"/webhooks/tradingview/{token}/").status_code == 405


def test_rate_limit_429(client, markets, token, monkeypatch):
    monkeypatch.setattr(webhooks, "RATE_LIMIT", 3)
    monkeypatch.setattr(webhooks, "_minute", lambda: 29_000_000)  # one window, whatever the clock
    codes = [post(client, token, alert(id=f"r-{i}")).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = post(client, token, alert(id="r-9"))
    assert r.json() == {"error": "rate limit: more than 3 posts a minute for this token"}
    assert sorted(WebhookSignal.objects.values_list("message_id", flat=True)) == ["r-0", "r-1", "r-2"]
    assert RATE_LIMIT == 30


def test_other_users_bot_404(client, markets, make_user, token):
    bob = make_user("bob")
    bot = make_replay_bot(bob)
    with no_enqueue() as kick:
        r = post(client, token, alert(action="close", bot=bot.pk))
    assert (r.status_code, r.json()) == (404, {"error": f"bot {bot.pk} not found"})
    assert WebhookSignal.objects.count() == 0
    assert Bot.objects.get(pk=bot.pk).commands == [] and not kick.called


def test_close_queues_close_symbol(client, markets, alice, token, django_capture_on_commit_callbacks):
    bot = make_replay_bot(alice)
    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        r = post(client, token, alert(action="close", bot=bot.pk, symbol="BTCUSDT", id="c-1"))
    assert r.status_code == 200
    assert r.json()["result"] == "close_symbol BTC/USDT queued"
    assert Bot.objects.get(pk=bot.pk).commands == [
        {"cmd": "close_symbol", "symbol": "BTC/USDT", "source": "tradingview"}
    ]
    sig = WebhookSignal.objects.get()
    assert (sig.action, sig.bot, sig.result) == ("close", bot, "close_symbol BTC/USDT queued")
    assert kick.called


def test_close_of_bot_not_running_409_writes_nothing(client, markets, alice, token):
    bot = make_replay_bot(alice, start=False)
    r = post(client, token, alert(action="close", bot=bot.pk))
    assert (r.status_code, r.json()) == (
        409, {"error": f"bot {bot.pk} is created: only a running bot acts on alerts; start it first"}
    )  # fmt: skip
    assert WebhookSignal.objects.count() == 0 and Bot.objects.get(pk=bot.pk).commands == []


def test_rotate_page_shows_token_once(client, alice):
    client.force_login(alice)
    r = client.post("/scans/webhook-token/")
    assert r.status_code == 302 and r.url == "/scans/#webhooks"
    tok = WebhookToken.objects.get(user=alice)
    page = client.get("/scans/").content.decode()
    assert 'id="new-webhook-token">' in page
    shown = page.split('id="new-webhook-token">')[1].split("<")[0]
    assert token_hash(shown) == tok.token_hash
    again = client.get("/scans/").content.decode()
    assert shown not in again and f"<code>{tok.prefix}…</code>" in again


def test_rotate_needs_login_and_post(client, db):
    r = client.post("/scans/webhook-token/")
    assert r.status_code == 302 and "/accounts/login/" in r.url
    assert WebhookToken.objects.count() == 0
