"""Bot bugs of issue 9, each with the test that failed before its fix: closed deals' safety
order max, order sizes below the market minimum, a rejection streak, edits never "saved" when
ignored, closes a non-running bot would never execute, the first step at start, and the
new-bot form's defaults."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.trading.conftest import make_replay_bot, step_at
from trading.models import Bot, BotEvent, Order, Trade
from trading.services import bots as svc

pytestmark = pytest.mark.django_db

PARAMS = {"max_active_deals": 2, "take_profit": 1.0, "stop_loss": 4.0, "max_safety_orders": 4}


def test_deals_opened_and_closed_in_one_step_record_the_bots_safety_order_max(user, candles, no_kick):
    bot = make_replay_bot(user, params=PARAMS)
    step_at(bot, 200.5)  # one step: deals open and close inside it
    closed = Trade.objects.filter(bot=bot, status="closed")
    assert closed.count() > 5
    assert set(closed.values_list("safety_orders_max", flat=True)) == {4}
    assert set(Trade.objects.filter(bot=bot, status="open").values_list("safety_orders_max", flat=True)) <= {4}


def test_order_sizes_below_the_market_minimum_are_refused_by_form_and_api(client, user, candles):
    base = {"name": "tiny", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000"}
    with pytest.raises(svc.BotValidationError) as exc:
        svc.bot_create(user=user, **base, params={"base_order_size": 0})
    assert exc.value.errors == {"params.base_order_size": "must be greater than 0"}
    r = APIClient()
    r.force_authenticate(user)
    resp = r.post("/api/v1/bots/", {**base, "params": {"base_order_size": 2, "safety_order_size": 3}}, format="json")
    msg = "{} USDT is below the minimum order of BTC/USDT (5 USDT, min cost); the exchange would reject every order"
    assert (resp.status_code, resp.json()) == (
        400,
        {"params.base_order_size": [msg.format(2)], "params.safety_order_size": [msg.format(3)]},
    )
    client.force_login(user)
    resp = client.post(
        reverse("trading:bot-create"),
        {
            "name": "tiny", "strategy": "smart_dca", "markets": [candles["BTC/USDT"].pk], "timeframe": "1h",
            "mode": "paper", "capital": "1000", "feed": "live", "p_base_order_size": "4",
        },
    )  # fmt: skip
    assert resp.status_code == 200 and msg.format(4) in resp.content.decode()
    assert not Bot.objects.filter(name="tiny").exists()
    # editing the params of an existing bot checks them too
    bot = svc.bot_create(user=user, **{**base, "name": "ok"}, params={"base_order_size": 20})
    with pytest.raises(svc.BotValidationError):
        svc.bot_update(user=user, bot=bot, params={"base_order_size": 1})
    bot.refresh_from_db()
    assert bot.params["base_order_size"] == 20.0


def test_a_bot_whose_orders_keep_being_rejected_goes_to_error_with_the_reason(client, user, candles, no_kick):
    bot = make_replay_bot(user, params={**PARAMS, "base_order_size": 20.0})
    Bot.objects.filter(pk=bot.pk).update(params={**bot.params, "base_order_size": 1.0})  # as saved before the fix
    report = step_at(bot, 5.5)
    bot.refresh_from_db()
    assert Order.objects.filter(bot=bot, status="rejected").count() >= 3
    assert (report.outcome, bot.status) == ("stepped", "error")
    assert bot.status_message.startswith("stopped trading: the last 3 orders were rejected (")
    assert bot.status_message.endswith("); fix the bot's settings and restart it")
    ev = BotEvent.objects.get(bot=bot, kind="error", rule="orders_rejected")
    assert ev.reason == bot.status_message
    client.force_login(user)
    page = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    assert 'data-status="error"' in page and bot.status_message.split(" (")[0] in page


def _edit_post(bot, **over):
    data = {
        "name": bot.name, "strategy": bot.strategy, "markets": [m.pk for m in bot.markets.all()],
        "timeframe": bot.timeframe, "mode": "paper", "capital": str(bot.capital), "feed": bot.feed,
        "replay_start": bot.replay_start.strftime("%Y-%m-%dT%H:%M"), "replay_speed": str(bot.replay_speed),
    }  # fmt: skip
    data.update({f"p_{k}": ("on" if v is True else v) for k, v in bot.params.items() if v is not False})
    data.update(over)
    return data


def test_edit_of_a_stopped_bot_shows_fixed_fields_read_only_and_changes_what_it_says(client, user, candles, no_kick):
    bot = make_replay_bot(user, params=PARAMS)
    svc.bot_stop(user=user, bot=bot)
    client.force_login(user)
    url = reverse("trading:bot-edit", args=[bot.pk])
    page = client.get(url).content.decode()
    capital_input = page.split('name="capital"')[1].split(">")[0]
    assert 'value="1000"' in capital_input and "disabled" in capital_input
    assert (
        "Fixed after the first start: the bot&#x27;s engine state (cash, positions, orders) was built with it." in page
    )
    # a changed capital is not taken (read-only) and the message says what did change
    r = client.post(url, _edit_post(bot, capital="5000", name="renamed", p_take_profit="2.5"), follow=True)
    bot.refresh_from_db()
    assert (bot.name, bot.capital, bot.params["take_profit"]) == ("renamed", Decimal("1000"), 2.5)
    body = r.content.decode()
    assert "saved: name, params changed." in body
    # nothing changed: never "saved"
    r = client.post(url, _edit_post(bot, capital="5000"), follow=True)
    assert (
        "nothing changed." in r.content.decode()
        and "saved" not in r.content.decode().split("nothing changed")[0][-200:]
    )
    # a created bot can change its capital and markets, and does
    fresh = make_replay_bot(user, name="fresh", params=PARAMS, start=False)
    r = client.post(
        reverse("trading:bot-edit", args=[fresh.pk]),
        _edit_post(fresh, capital="2500", markets=[candles["ETH/USDT"].pk]),
        follow=True,
    )
    fresh.refresh_from_db()
    assert fresh.capital == Decimal("2500") and [m.symbol for m in fresh.markets.all()] == ["ETH/USDT"]
    assert "saved: capital, markets changed." in r.content.decode()


@pytest.mark.parametrize("status,word", [("stopped", "restart"), ("paused", "resume")])
def test_close_on_a_bot_that_takes_no_steps_is_refused_with_a_message(client, user, candles, no_kick, status, word):
    bot = make_replay_bot(user, params=PARAMS)
    step_at(bot, 30.5)
    deal = Trade.objects.filter(bot=bot, status="open").first()
    assert deal is not None
    getattr(svc, "bot_stop" if status == "stopped" else "bot_pause")(user=user, bot=bot)
    expected = f"cannot close: the bot is {status} and takes no steps, so the deal would stay open; {word} it first"
    if status == "paused":
        expected = "cannot close: the bot is paused and takes no steps, so the deal would stay open; resume it first"
    client.force_login(user)
    r = client.post(reverse("trading:bot-close-trade", args=[bot.pk, deal.pk]), follow=True)
    assert expected in r.content.decode()
    api = APIClient()
    api.force_authenticate(user)
    r = api.post(f"/api/v1/bots/{bot.pk}/close_position/", {"trade": deal.pk}, format="json")
    assert (r.status_code, r.json()) == (409, {"detail": expected})
    r = api.post(f"/api/v1/bots/{bot.pk}/close_all/", format="json")
    assert (r.status_code, r.json()) == (409, {"detail": expected})
    bot.refresh_from_db()
    assert bot.commands == []


def test_start_enqueues_the_first_step_at_once(user, candles, django_capture_on_commit_callbacks):
    live = svc.bot_create(user=user, name="live", strategy="smart_dca", markets=["BTC/USDT"], capital="1000")
    replay = make_replay_bot(user, name="replay", params=PARAMS, start=False)
    with mock.patch("market7.celery.app.send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            svc.bot_start(user=user, bot=live)
            svc.bot_start(user=user, bot=replay)
    calls = [(c.args[0], c.kwargs["args"], c.kwargs["countdown"], c.kwargs["queue"]) for c in send.call_args_list]
    assert calls == [
        ("trading.tasks.bot_step", [live.pk], 0.0, "trading"),
        ("trading.tasks.bot_step", [replay.pk], 1.0, "trading"),  # 1 h candle at 3600x closes in 1 s
    ]
    # the enqueued task steps the replay bot once its first candle has closed
    from trading.tasks import bot_step

    replay.refresh_from_db()
    one_candle_later = replay.replay_clock_wall + timedelta(seconds=1.5)
    with mock.patch("trading.services.runner.timezone.now", return_value=one_candle_later):
        out = bot_step.run(replay.pk)
    assert out["outcome"] == "stepped" and out["candles"] == 1


def test_new_bot_form_defaults_to_smart_dca_with_the_default_guards_on(client, user, candles):
    client.force_login(user)
    page = client.get(reverse("trading:bot-create")).content.decode()
    assert '<option value="smart_dca" selected>' in page
    for guard in ("step_repeat_guard_enabled", "spend_guard_enabled", "zombie_tag_enabled"):
        assert f'id="id_p_{guard}" checked' in page
    assert 'id="id_p_btc_market_filter_enabled" checked' not in page
