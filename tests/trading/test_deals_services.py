"""Deal actions (close, add funds, change TP/SL): queued as commands, applied by the next step
through the engine, each with a decision and its reason in the bot's log; refusals say why and
save nothing. Real candles (bundled Binance 1h), a replay bot at 3600x."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from accounts.models import AuditLog
from tests.trading.conftest import REPLAY_START, make_replay_bot, step_at
from trading.brokers import PAPER_SLIPPAGE_BPS
from trading.models import Bot, BotEvent, Candle, Fill, Order, Trade
from trading.selectors import deals as sel
from trading.services import bots as bot_svc
from trading.services import deals as svc

pytestmark = pytest.mark.django_db

TICK = Decimal("1e-8")  # the bundled markets' price tick (no precision discovered)
STEP_H = 30  # market hours into the replay when the deal is acted on


def _bot_with_deal(user, **params):
    p = {"max_active_deals": 1, "take_profit": 1.0, "stop_loss": 5.0} | params
    bot = make_replay_bot(user, markets=("BTC/USDT",), params=p)
    step_at(bot, STEP_H)
    bot.refresh_from_db()
    (trade,) = Trade.objects.filter(bot=bot, status="open")
    return bot, trade


def _candle(bot, trade, hours):
    return Candle.objects.get(market=trade.market, timeframe="1h", open_time=REPLAY_START + timedelta(hours=hours))


def test_add_funds_places_a_manual_safety_order_filled_at_the_next_open(user, candles, no_kick):
    bot, trade = _bot_with_deal(user)
    last = bot.last_candle_at
    assert last == REPLAY_START + timedelta(hours=STEP_H - 1)
    before = (trade.amount, trade.cost, trade.take_profit_price, trade.safety_orders_filled)

    svc.deal_add_funds(user=user, bot=bot, trade=trade, quote="50")
    bot.refresh_from_db()
    assert bot.commands == [{"cmd": "add_funds", "deal_id": trade.deal_id, "symbol": "BTC/USDT", "quote": 50.0}]
    req = BotEvent.objects.get(bot=bot, kind="status", rule="manual_add_funds")
    assert (req.outcome, req.reason) == (
        "requested",
        f"add 50 USDT to BTC/USDT deal {trade.deal_id} (manual safety order)",
    )
    assert AuditLog.objects.filter(action="deal_add_funds", object_id=str(bot.pk)).count() == 1

    step_at(bot, STEP_H + 1)
    bot.refresh_from_db()
    assert bot.commands == []
    (order,) = Order.objects.filter(bot=bot, tag="manual_safety_order")
    close = Decimal(repr(_candle(bot, trade, STEP_H - 1).close))
    nxt = _candle(bot, trade, STEP_H)
    amount = (Decimal("50") / close).quantize(Decimal("1e-8"), rounding=ROUND_DOWN)  # the market's amount tick
    assert (order.side, order.type, order.status, order.amount, order.filled) == (
        "buy",
        "market",
        "closed",
        amount,
        amount,
    )
    assert (order.deal_id, order.trade_id, order.placed_at) == (trade.deal_id, trade.pk, last + timedelta(hours=1))
    (fill,) = Fill.objects.filter(order=order)
    slipped = Decimal(repr(nxt.open)) * (1 + Decimal(repr(PAPER_SLIPPAGE_BPS)) / 10_000)  # market buy: open + slippage
    assert (fill.price, fill.amount, fill.time) == (slipped.quantize(Decimal("0.01")), amount, nxt.open_time)
    decision = BotEvent.objects.get(bot=bot, kind="decision", rule="manual_add_funds")
    assert (decision.outcome, decision.time) == ("info", last)
    assert decision.reason == (
        f"add funds 50 USDT: market buy {amount.normalize():f} BTC/USDT at the next open (last close {float(close):g}); "
        "a manual safety order, TP and SL follow the new average"
    )
    trade.refresh_from_db()
    assert trade.status == "open" and trade.amount == before[0] + amount
    assert abs(trade.cost - (before[1] + fill.price * amount)) <= Decimal("1e-8")  # float64 sum, 1e-8 money
    assert trade.take_profit_price != before[2]
    assert abs(trade.take_profit_price - trade.avg_entry * Decimal("1.01")) <= TICK  # TP follows the new average
    assert abs(trade.avg_entry - trade.cost / trade.amount) < Decimal("1e-5")  # avg entry is kept to 1e-6
    assert trade.safety_orders_filled == before[3]  # manual funds do not use an automatic safety order
    ladder = sel.deal_ladder(trade=trade, orders=sel.deal_orders(trade=trade))
    manual = [r for r in ladder if r.kind == "manual"]
    assert [(r.label, r.status, r.price, r.amount) for r in manual] == [("Added funds 1", "filled", fill.price, amount)]


def test_set_exits_replaces_take_profit_and_stop_loss_from_the_average_entry(user, candles, no_kick):
    bot, trade = _bot_with_deal(user)
    avg, old_tp, old_sl = trade.avg_entry, trade.take_profit_price, trade.stop_loss_price
    before = Order.objects.get(bot=bot, deal_id=trade.deal_id, status="open", tag="take_profit")
    svc.deal_set_exits(user=user, bot=bot, trade=trade, take_profit="2.5", stop_loss="3")
    bot.refresh_from_db()
    assert bot.commands[0] == {
        "cmd": "set_exits", "deal_id": trade.deal_id, "symbol": "BTC/USDT", "take_profit": 2.5, "stop_loss": 3.0,
    }  # fmt: skip
    step_at(bot, STEP_H + 1)
    trade.refresh_from_db()
    tp, sl = trade.take_profit_price, trade.stop_loss_price
    assert trade.status == "open" and trade.avg_entry == avg
    assert abs(tp - avg * Decimal("1.025")) <= TICK and abs(sl - avg * Decimal("0.97")) <= TICK
    open_exits = Order.objects.filter(
        bot=bot, deal_id=trade.deal_id, status="open", tag__in=["take_profit", "stop_loss"]
    )
    assert sorted((o.tag, o.price or o.stop_price) for o in open_exits) == [("stop_loss", sl), ("take_profit", tp)]
    before.refresh_from_db()
    assert (before.status, before.reject_reason) == ("canceled", "replaced")
    decision = BotEvent.objects.get(bot=bot, kind="decision", rule="manual_set_exits")
    assert decision.time == REPLAY_START + timedelta(hours=STEP_H - 1)
    assert decision.reason == (
        f"take profit {float(old_tp):g} -> {float(tp):g} (2.5% from avg {float(avg):g}); "
        f"stop loss {float(old_sl):g} -> {float(sl):g} (3% from avg {float(avg):g})"
    )
    assert decision in sel.deal_events(trade=trade)


def test_deal_close_closes_at_the_next_open(user, candles, no_kick):
    bot, trade = _bot_with_deal(user)
    svc.deal_close(user=user, bot=bot, trade=trade)
    step_at(bot, STEP_H + 1)
    trade.refresh_from_db()
    nxt = _candle(bot, trade, STEP_H)
    slipped = Decimal(repr(nxt.open)) * (1 - Decimal(repr(PAPER_SLIPPAGE_BPS)) / 10_000)  # market sell
    assert (trade.status, trade.exit_reason) == ("closed", "manual_close")
    assert trade.exit_price == slipped.quantize(Decimal("0.01"))
    decision = BotEvent.objects.get(bot=bot, kind="decision", rule="manual_close")
    assert decision.outcome == "exit" and decision.reason.startswith(
        f"close BTC/USDT deal {trade.deal_id} at market (manual): sell "
    )


@pytest.mark.parametrize("status", ["stopped", "paused"])
def test_actions_on_a_bot_that_is_not_running_are_refused_and_save_nothing(user, candles, no_kick, status):
    bot, trade = _bot_with_deal(user)
    Bot.objects.filter(pk=bot.pk).update(status=status)
    events = BotEvent.objects.filter(bot=bot).count()
    hint = "resume it first" if status == "paused" else "restart it first"
    message = f"^the bot is {status}: a deal action needs a running bot; {hint}$"
    with pytest.raises(svc.DealActionRefused, match=message):
        svc.deal_add_funds(user=user, bot=bot, trade=trade, quote="50")
    with pytest.raises(svc.DealActionRefused, match=message):
        svc.deal_set_exits(user=user, bot=bot, trade=trade, take_profit="2")
    with pytest.raises(svc.DealActionRefused, match=message):
        svc.deal_close(user=user, bot=bot, trade=trade)
    bot.refresh_from_db()
    assert bot.commands == [] and BotEvent.objects.filter(bot=bot).count() == events


def test_actions_on_a_closed_deal_or_before_the_first_candle_are_refused(user, candles, no_kick):
    bot, trade = _bot_with_deal(user)
    Trade.objects.filter(pk=trade.pk).update(status="closed")
    with pytest.raises(svc.DealActionRefused, match=f"^deal {trade.deal_id} is closed; nothing to change$"):
        svc.deal_set_exits(user=user, bot=bot, trade=trade, take_profit="2")
    Trade.objects.filter(pk=trade.pk).update(status="open")
    state = dict(bot.state, last_time=None)
    Bot.objects.filter(pk=bot.pk).update(state=state)
    with pytest.raises(
        svc.DealActionRefused, match="^the bot has not processed a candle yet; try again after its first step$"
    ):
        svc.deal_add_funds(user=user, bot=bot, trade=trade, quote="50")
    assert Bot.objects.get(pk=bot.pk).commands == []


@pytest.mark.parametrize(
    ("kwargs", "errors"),
    [
        ({"quote": ""}, {"quote": "this field is required"}),
        ({"quote": "abc"}, {"quote": "must be a number"}),
        ({"quote": "0"}, {"quote": "must be more than 0 USDT"}),
        ({"quote": "1"}, {"quote": "must be at least the market's minimum order of 5 USDT"}),
    ],
)
def test_add_funds_validates_the_amount(user, candles, no_kick, kwargs, errors):
    bot, trade = _bot_with_deal(user)
    with pytest.raises(bot_svc.BotValidationError) as exc:
        svc.deal_add_funds(user=user, bot=bot, trade=trade, **kwargs)
    assert exc.value.errors == errors
    assert Bot.objects.get(pk=bot.pk).commands == []


@pytest.mark.parametrize(
    ("kwargs", "errors"),
    [
        ({}, {"__all__": "give a take profit or a stop loss (percent from the average entry)"}),
        ({"take_profit": "0"}, {"take_profit": "must be more than 0% and at most 1000% from the average entry"}),
        ({"stop_loss": "100"}, {"stop_loss": "must be from 0% (none) to under 100% from the average entry"}),
        (
            {"take_profit": "x", "stop_loss": "nan"},
            {"take_profit": "must be a number", "stop_loss": "must be a finite number"},
        ),
    ],
)
def test_set_exits_validates_percentages(user, candles, no_kick, kwargs, errors):
    bot, trade = _bot_with_deal(user)
    with pytest.raises(bot_svc.BotValidationError) as exc:
        svc.deal_set_exits(user=user, bot=bot, trade=trade, **kwargs)
    assert exc.value.errors == errors
    assert Bot.objects.get(pk=bot.pk).commands == []


def test_another_users_deal_is_not_found_and_a_viewer_may_not_act(user, other_user, viewer, candles, no_kick):
    bot, trade = _bot_with_deal(user)
    with pytest.raises(Bot.DoesNotExist):
        svc.deal_add_funds(user=other_user, bot=bot, trade=trade, quote="50")
    with pytest.raises(bot_svc.BotPermissionDenied):
        svc.deal_set_exits(user=viewer, bot=bot, trade=trade, take_profit="2")
    with pytest.raises(Trade.DoesNotExist):
        sel.deal_for_user(user=other_user, bot=bot, trade_id=trade.pk)
    assert Bot.objects.get(pk=bot.pk).commands == []
