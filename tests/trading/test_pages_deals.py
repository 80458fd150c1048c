"""The deal page and its actions: access (owner, other user, anonymous, viewer), exact values
on the page (ladder, TP/SL with percent, orders, decisions, chart data), the HTMX actions
(commands queued, messages) and refusals (stopped bot, closed deal), links from the bot and
trades pages. Shared data: ``bot_with_trades`` in tests/trading/conftest.py."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, BotEvent

pytestmark = pytest.mark.django_db


def deal_url(bot, trade, name="trading:deal"):
    return reverse(name, args=[bot.pk, trade.pk])


ACTIONS = (
    ("trading:deal-close", {}),
    ("trading:deal-add-funds", {"quote": "50"}),
    ("trading:deal-set-exits", {"take_profit": "2"}),
)


def stepped(bot):
    """The bot as if it had stepped: an engine state with a last candle time."""
    Bot.objects.filter(pk=bot.pk).update(state={"last_time": int((T0 + 5 * H).timestamp() * 1000)})
    bot.refresh_from_db()
    return bot


class TestAccess:
    def test_owner_sees_open_and_closed_deals(self, client, user, bot_with_trades):
        client.force_login(user)
        for trade in (bot_with_trades.open_trade, bot_with_trades.closed_trade):
            assert client.get(deal_url(bot_with_trades, trade)).status_code == 200

    def test_other_user_gets_404_and_nothing_happens(self, client, other_user, bot_with_trades):
        client.force_login(other_user)
        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        assert client.get(deal_url(bot, trade)).status_code == 404
        for name, data in ACTIONS:
            assert client.post(deal_url(bot, trade, name), data).status_code == 404, name
        bot.refresh_from_db()
        assert bot.commands == []

    def test_a_deal_of_another_bot_is_404(self, client, user, bot_with_trades):
        client.force_login(user)
        other = make_bot(user, bot_with_trades.markets.first(), name="B2")
        assert client.get(deal_url(other, bot_with_trades.open_trade)).status_code == 404

    def test_anonymous_is_sent_to_login_and_viewer_may_not_act(self, client, viewer, bot_with_trades):
        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        response = client.get(deal_url(bot, trade))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
        for name, data in ACTIONS:
            assert client.post(deal_url(bot, trade, name), data).status_code == 302
        Bot.objects.filter(pk=bot.pk).update(owner=viewer)
        client.force_login(viewer)
        body = client.get(deal_url(bot, trade)).content.decode()
        assert "Your role cannot act on deals." in body and 'data-action="deal-close"' not in body
        for name, data in ACTIONS:
            assert client.post(deal_url(bot, trade, name), data).status_code == 403, name
        bot.refresh_from_db()
        assert bot.commands == []


class TestPage:
    def test_open_deal_figures_ladder_orders_and_chart(self, client, user, bot_with_trades):
        client.force_login(user)
        bot, trade = bot_with_trades, bot_with_trades.open_trade
        response = client.get(deal_url(bot, trade))
        body = response.content.decode()
        ctx = response.context
        # TP 43,050 is 5 % above the average entry 41,000; no stop loss
        assert ctx["tp_pct"] == Decimal("5") and ctx["sl_pct"] is None
        assert 'data-deal-tp>43,050.00 <span class="unit">USDT</span>' in body
        assert "5.00 % from average" in body
        assert 'data-deal-avg>41,000.00 <span class="unit">USDT</span>' in body
        # unrealized at the last close (40,800): (40800 - 41000) x 0.01 - 0.41 fees = -2.41
        assert ctx["unrealized"] == Decimal("-2.41") and ctx["unrealized_pct"] == Decimal("-2.41") / 410 * 100
        assert "-2.41 USDT" in body and "last close 40,800.00 · -0.59 %" in body
        ladder = [(r.kind, r.label, r.status, r.price, r.amount) for r in ctx["ladder"]]
        assert ladder == [
            ("base", "Base order", "filled", Decimal("41500"), Decimal("0.005")),
            ("safety", "Safety order 1", "filled", Decimal("40500"), Decimal("0.005")),
            ("safety", "Safety order 2", "resting", Decimal("39800"), Decimal("0.01")),
        ]
        assert [o.client_order_id for o in ctx["orders"]] == ["m7b-1", "m7b-2", "m7b-3"]
        chart = json.loads(body.split('id="deal-chart-data" type="application/json">')[1].split("</script>")[0])
        assert chart["symbol"] == "BTC/USDT" and len(chart["candles"]) == 6  # T0 .. the bot's market time T0+5h
        assert chart["candles"][-1] == {
            "time": int((T0 + 5 * H).timestamp()), "open": 40810.0, "high": 40900.0, "low": 40700.0, "close": 40800.0,
            "volume": 12.5,
        }  # fmt: skip
        assert [(m["text"], m["price"]) for m in chart["markers"]] == [("BO", 41500.0), ("SO1", 40500.0)]
        assert [(ln["kind"], ln["price"]) for ln in chart["lines"]] == [("entry", 41000.0), ("take_profit", 43050.0)]
        # decisions: the rules that decided on the market from the candle before the deal opened
        assert [e.rule for e in ctx["events"]] == ["confidence", "take_profit"]

    def test_closed_deal_shows_realized_pnl_and_no_actions(self, client, user, bot_with_trades):
        client.force_login(user)
        body = client.get(deal_url(bot_with_trades, bot_with_trades.closed_trade)).content.decode()
        assert "+10.00 USDT" in body and "This deal is closed." in body
        assert 'data-action="deal-add-funds"' not in body

    def test_bot_and_trades_pages_link_each_deal(self, client, user, bot_with_trades):
        client.force_login(user)
        bot = bot_with_trades
        body = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
        for trade in (bot.open_trade, bot.closed_trade):
            assert f'href="{deal_url(bot, trade)}" data-deal-link' in body
        body = client.get(reverse("trading:trades")).content.decode()
        for trade in (bot.open_trade, bot.closed_trade):
            assert f'href="{deal_url(bot, trade)}" data-deal-link' in body


class TestActions:
    def test_htmx_add_funds_and_set_exits_queue_commands_with_a_message(self, client, user, bot_with_trades, no_kick):
        client.force_login(user)
        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        r = client.post(deal_url(bot, trade, "trading:deal-add-funds"), {"quote": "25.5"}, HTTP_HX_REQUEST="true")
        body = r.content.decode()
        assert r.status_code == 200 and body.lstrip().startswith('<section id="deal-actions"')
        assert "Add funds requested: a market order at the next candle&#x27;s open." in body
        assert "Waiting for the next step: <code>add_funds</code> 25.50 USDT" in body
        r = client.post(
            deal_url(bot, trade, "trading:deal-set-exits"),
            {"take_profit": "3", "stop_loss": ""},
            HTTP_HX_REQUEST="true",
        )
        assert "New take profit / stop loss requested" in r.content.decode()
        bot.refresh_from_db()
        assert bot.commands == [
            {"cmd": "add_funds", "deal_id": "d2", "symbol": "BTC/USDT", "quote": 25.5},
            {"cmd": "set_exits", "deal_id": "d2", "symbol": "BTC/USDT", "take_profit": 3.0},
        ]
        r = client.post(deal_url(bot, trade, "trading:deal-close"))  # a plain post redirects back
        assert r.status_code == 302 and r["Location"] == deal_url(bot, trade)
        bot.refresh_from_db()
        assert bot.commands[-1] == {"cmd": "close", "deal_id": "d2", "symbol": "BTC/USDT"}

    def test_bad_input_is_refused_with_the_field_and_saves_nothing(self, client, user, bot_with_trades, no_kick):
        client.force_login(user)
        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        r = client.post(deal_url(bot, trade, "trading:deal-add-funds"), {"quote": "-5"}, HTTP_HX_REQUEST="true")
        assert "quote: must be more than 0 USDT" in r.content.decode()
        r = client.post(deal_url(bot, trade, "trading:deal-set-exits"), {}, HTTP_HX_REQUEST="true")
        assert "give a take profit or a stop loss (percent from the average entry)" in r.content.decode()
        bot.refresh_from_db()
        assert bot.commands == []

    @pytest.mark.parametrize("name,data", ACTIONS)
    def test_actions_on_a_stopped_bot_are_refused_with_a_message(self, client, user, bot_with_trades, name, data):
        client.force_login(user)
        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.STOPPED)
        events = BotEvent.objects.filter(bot=bot).count()
        r = client.post(deal_url(bot, trade, name), data, HTTP_HX_REQUEST="true")
        assert r.status_code == 200
        assert "the bot is stopped: a deal action needs a running bot; restart it first" in r.content.decode()
        r = client.post(deal_url(bot, trade, name), data, follow=True)
        assert [str(m) for m in r.context["messages"]] == [
            "the bot is stopped: a deal action needs a running bot; restart it first"
        ]
        bot.refresh_from_db()
        assert bot.commands == [] and BotEvent.objects.filter(bot=bot).count() == events

    def test_an_action_before_the_first_step_is_refused(self, client, user, bot_with_trades):
        client.force_login(user)
        bot, trade = bot_with_trades, bot_with_trades.open_trade
        r = client.post(deal_url(bot, trade, "trading:deal-set-exits"), {"take_profit": "2"}, HTTP_HX_REQUEST="true")
        assert "the bot has not processed a candle yet; try again after its first step" in r.content.decode()
        bot.refresh_from_db()
        assert bot.commands == []


class TestApi:
    def test_add_funds_and_set_exits_actions(self, user, other_user, bot_with_trades, no_kick):
        from rest_framework.test import APIClient

        bot, trade = stepped(bot_with_trades), bot_with_trades.open_trade
        owner, other, anon = APIClient(), APIClient(), APIClient()
        owner.force_authenticate(user)
        other.force_authenticate(other_user)
        url = f"/api/v1/bots/{bot.pk}/"
        assert other.post(url + "add_funds/", {"trade": trade.pk, "quote": "10"}).status_code == 404
        assert anon.post(url + "set_exits/", {"trade": trade.pk, "take_profit": "2"}).status_code in (401, 403)
        r = owner.post(url + "add_funds/", {"trade": trade.pk, "quote": "0"}, format="json")
        assert r.status_code == 400 and r.json() == {"quote": ["must be more than 0 USDT"]}
        r = owner.post(url + "add_funds/", {"trade": trade.pk, "quote": "10"}, format="json")
        assert r.status_code == 202 and r.json()["deal_id"] == "d2"
        r = owner.post(url + "set_exits/", {"trade": trade.pk, "stop_loss": 4}, format="json")
        assert r.status_code == 202
        bot.refresh_from_db()
        assert bot.commands == [
            {"cmd": "add_funds", "deal_id": "d2", "symbol": "BTC/USDT", "quote": 10.0},
            {"cmd": "set_exits", "deal_id": "d2", "symbol": "BTC/USDT", "stop_loss": 4.0},
        ]
        r = owner.post(url + "set_exits/", {"trade": bot.closed_trade.pk, "take_profit": 2}, format="json")
        assert r.status_code == 409 and r.json() == {"detail": "deal d1 is closed; nothing to change"}
        r = owner.post(url + "set_exits/", {"trade": 999999, "take_profit": 2}, format="json")
        assert r.status_code == 400 and r.json() == {"trade": ["no such trade of this bot"]}
