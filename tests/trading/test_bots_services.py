"""Bot services: validation, the status machine, permissions, the ownership gate, closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import AuditLog
from tests.trading.conftest import REPLAY_START, make_replay_bot, step_at
from trading.models import Bot, BotEvent, Order, Trade
from trading.selectors import bots as sel
from trading.services import bot_closing
from trading.services import bots as svc
from trading.services.live_bots import NO_ACCOUNT

pytestmark = pytest.mark.django_db


def _create(user, **kw):
    args = {"name": "b", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000"}
    args.update(kw)
    return svc.bot_create(user=user, **args)


# --- create / update ------------------------------------------------------------------------


def test_create_validates_params_with_the_strategy_schema_and_fills_defaults(user, candles):
    bot = _create(user, params={"take_profit": "2.5", "max_safety_orders": 3})
    assert bot.status == Bot.Status.CREATED
    assert bot.owner == user
    assert bot.params["take_profit"] == 2.5
    assert bot.params["max_safety_orders"] == 3
    assert bot.params["base_order_size"] == 20.0  # default from the schema
    assert list(bot.markets.values_list("symbol", flat=True)) == ["BTC/USDT"]
    assert bot.capital == Decimal("1000") and bot.quote == "USDT" and bot.mode == "paper" and bot.feed == "live"
    entry = AuditLog.objects.get(action="bot_create")
    assert (entry.user, entry.object_id, entry.message) == (user, str(bot.pk), "created b")


def test_create_reports_every_bad_field_and_saves_nothing(user, candles):
    with pytest.raises(svc.BotValidationError) as info:
        _create(
            user, name=" ", capital="-5", markets=["NOPE/USDT"], params={"take_profit": 0, "bogus": 1}, timeframe="7m"
        )
    assert info.value.errors == {
        "name": "give the bot a name",
        "timeframe": "unsupported timeframe '7m'; use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d",
        "capital": "must be greater than 0",
        "markets": "unknown market(s) on binance: NOPE/USDT",
        "params.bogus": "unknown parameter",
        "params.take_profit": "must be >= 0.01%",
    }
    assert Bot.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_create_refuses_unknown_strategy_and_dotted_paths(user, candles):
    for name in ("nope", "os:system", "strategies.library.smart_dca.SmartDCA"):
        with pytest.raises(svc.BotValidationError) as info:
            _create(user, strategy=name)
        assert info.value.errors["strategy"].startswith(f"unknown strategy {name!r}; known strategies: ")
    assert Bot.objects.count() == 0


def test_replay_needs_stored_candles_and_aligns_the_start(user, candles):
    with pytest.raises(svc.BotValidationError) as info:
        _create(user, feed="replay", replay_start=datetime(2026, 1, 1, tzinfo=UTC))
    assert info.value.errors == {"replay_start": "no stored BTC/USDT 1h candles at or after 2026-01-01 00:00 UTC"}
    with pytest.raises(svc.BotValidationError) as info:
        _create(user, feed="replay", replay_start=None)
    assert info.value.errors == {"replay_start": "a replay bot needs a start time"}
    bot = _create(user, feed="replay", replay_start=datetime(2025, 4, 1, 10, 30, tzinfo=UTC), replay_speed=7200)
    assert bot.replay_start == bot.replay_clock == datetime(2025, 4, 1, 10, tzinfo=UTC)
    assert bot.replay_speed == 7200.0
    assert Bot.objects.count() == 1


def test_viewer_cannot_create_a_bot(viewer, candles):
    with pytest.raises(svc.BotPermissionDenied, match=r"your role cannot create bots \(needs trading.add_bot\)"):
        _create(viewer)
    assert Bot.objects.count() == 0


def test_update_rules_depend_on_the_status(user, candles, no_kick):
    bot = _create(user)
    svc.bot_update(user=user, bot=bot, name="renamed", capital="500", params={"take_profit": 3})
    bot.refresh_from_db()
    assert (bot.name, bot.capital, bot.params["take_profit"]) == ("renamed", Decimal("500"), 3.0)
    svc.bot_start(user=user, bot=bot)
    with pytest.raises(svc.BotValidationError) as info:
        svc.bot_update(user=user, bot=bot, capital="10", params={"take_profit": 2})
    assert info.value.errors == {
        "capital": "can only be changed before the bot first starts (bot is running)",
        "params": "pause or stop the bot first",
    }
    svc.bot_pause(user=user, bot=bot)
    svc.bot_update(user=user, bot=bot, params={"take_profit": 2})
    bot.refresh_from_db()
    assert (bot.capital, bot.params["take_profit"]) == (Decimal("500"), 2.0)


# --- status machine -------------------------------------------------------------------------


def test_status_machine_transitions_events_and_audit(user, candles, no_kick):
    bot = make_replay_bot(user, start=False)
    steps = [
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
        ("restart", "running"),
        ("pause", "paused"),
        ("stop", "stopped"),
    ]
    for action, status in steps:
        bot = svc.BOT_ACTIONS[action](user=user, bot=bot)
        assert Bot.objects.get(pk=bot.pk).status == status
    assert list(BotEvent.objects.filter(bot=bot, kind="status").order_by("id").values_list("rule", "outcome")) == [
        (f"bot_{a}", s) for a, s in steps
    ]
    assert list(
        AuditLog.objects.filter(action__startswith="bot_")
        .exclude(action="bot_create")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [f"bot_{a}" for a, _ in steps]
    assert no_kick.call_count == 0  # kicks run on commit; this test's transaction never commits


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        ("created", "pause", "cannot pause a bot that is created (allowed from: running)"),
        ("created", "stop", "cannot stop a bot that is created (allowed from: running, paused, error)"),
        ("running", "start", "cannot start a bot that is running (allowed from: created)"),
        ("running", "resume", "cannot resume a bot that is running (allowed from: paused)"),
        ("paused", "pause", "cannot pause a bot that is paused (allowed from: running)"),
        ("stopped", "resume", "cannot resume a bot that is stopped (allowed from: paused)"),
        ("error", "pause", "cannot pause a bot that is error (allowed from: running)"),
        ("running", "restart", "cannot restart a bot that is running (allowed from: stopped, error)"),
    ],
)
def test_invalid_transitions_raise_and_change_nothing(user, candles, status, action, message):
    bot = make_replay_bot(user, start=False)
    Bot.objects.filter(pk=bot.pk).update(status=status)
    before = AuditLog.objects.count()
    with pytest.raises(svc.BotTransitionError) as info:
        svc.BOT_ACTIONS[action](user=user, bot=bot)
    assert str(info.value) == message
    assert Bot.objects.get(pk=bot.pk).status == status
    assert AuditLog.objects.count() == before
    assert not BotEvent.objects.filter(bot=bot).exists()


def test_viewer_cannot_operate_and_nothing_happens(make_user, candles, no_kick):
    owner = make_user("vic", "viewer")
    # a viewer's own bot (created by an operator), still not operable by them
    bot = svc.bot_create(
        user=svc.SYSTEM, owner=owner, name="v", strategy="smart_dca", markets=["BTC/USDT"], capital="100"
    )
    for action in ("start", "pause", "resume", "stop", "restart"):
        with pytest.raises(
            svc.BotPermissionDenied, match=rf"your role cannot {action} bots \(needs trading.operate_bot\)"
        ):
            svc.BOT_ACTIONS[action](user=owner, bot=bot)
    assert Bot.objects.get(pk=bot.pk).status == "created"
    assert not BotEvent.objects.filter(bot=bot).exists()
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["bot_create"]


def test_another_users_bot_is_not_found_through_the_gate(user, other_user, candles, no_kick):
    bot = make_replay_bot(user)
    for action in ("pause", "stop"):
        with pytest.raises(Bot.DoesNotExist):
            svc.BOT_ACTIONS[action](user=other_user, bot=bot.pk)
    with pytest.raises(Bot.DoesNotExist):
        bot_closing.bot_close_all(user=other_user, bot=bot)
    with pytest.raises(Bot.DoesNotExist):
        svc.bot_update(user=other_user, bot=bot, name="mine")
    with pytest.raises(Bot.DoesNotExist):
        sel.bot_get(user=other_user, pk=bot.pk)
    assert list(sel.bots_for_user(other_user)) == []
    bot.refresh_from_db()
    assert (bot.status, bot.name, bot.commands) == ("running", "replay", [])


def test_live_mode_refuses_to_start(user, candles):
    bot = _create(user, mode="live")
    with pytest.raises(svc.LiveTradingDisabled, match=f"^cannot start live: {NO_ACCOUNT}$"):
        svc.bot_start(user=user, bot=bot)
    bot.refresh_from_db()
    assert (bot.status, bot.started_at, bot.state) == ("created", None, {})
    assert not BotEvent.objects.filter(bot=bot).exists()


def test_pause_freezes_and_resume_restarts_the_replay_clock(user, candles, no_kick):
    bot = make_replay_bot(user)
    wall0 = bot.replay_clock_wall
    assert bot.replay_clock == REPLAY_START
    assert bot.replay_now(wall0 + timedelta(seconds=2)) == REPLAY_START + timedelta(hours=2)
    assert bot.last_candle_at == REPLAY_START - timedelta(hours=1)
    svc.bot_pause(user=user, bot=bot)
    bot.refresh_from_db()
    assert bot.replay_clock_wall is None
    frozen = bot.replay_clock
    assert frozen >= REPLAY_START
    assert bot.replay_now(wall0 + timedelta(days=5)) == frozen
    svc.bot_resume(user=user, bot=bot)
    bot.refresh_from_db()
    assert bot.replay_clock == frozen and bot.replay_clock_wall is not None


def test_allowed_actions_follow_the_status(user, candles):
    bot = _create(user)
    expected = {
        "created": ["start"],
        "running": ["pause", "stop"],
        "paused": ["resume", "stop"],
        "stopped": ["restart"],
        "error": ["stop", "restart"],
    }
    for status, actions in expected.items():
        bot.status = status
        assert svc.bot_allowed_actions(bot) == actions


# --- manual closes --------------------------------------------------------------------------


def test_close_all_closes_open_deals_at_the_next_open_and_stops(user, candles, no_kick):
    bot = make_replay_bot(user)
    step_at(bot, 30)
    open_trades = list(Trade.objects.filter(bot=bot, status="open").order_by("deal_id"))
    assert len(open_trades) == 2
    assert bot_closing.bot_close_all(user=user, bot=bot, stop=True) == 2
    bot.refresh_from_db()
    assert bot.commands == [{"cmd": "close_all", "stop": True}]
    report = step_at(bot, 31)
    assert report.outcome == "stepped" and report.candles == 1
    bot.refresh_from_db()
    assert (bot.status, bot.status_message, bot.commands) == ("stopped", "stopped after closing all positions", [])
    closes = Order.objects.filter(bot=bot, tag="manual_close").order_by("client_order_id")
    assert [(o.status, o.side, o.type, o.placed_at) for o in closes] == [
        ("closed", "sell", "market", REPLAY_START + timedelta(hours=30))
    ] * 2
    for trade in open_trades:
        trade.refresh_from_db()
        assert trade.status == "closed"
        assert trade.exit_reason == "manual_close"
        assert trade.closed_at == REPLAY_START + timedelta(hours=30)
    assert not Trade.objects.filter(bot=bot, status="open").exists()
    # the deal's other orders (TP, safety orders) were canceled with it
    assert not Order.objects.filter(bot=bot, status="open").exists()


def test_close_position_closes_one_deal(user, candles, no_kick):
    bot = make_replay_bot(user)
    step_at(bot, 30)
    first, second = Trade.objects.filter(bot=bot, status="open").order_by("deal_id")
    bot_closing.bot_close_position(user=user, bot=bot, trade=first)
    step_at(bot, 31)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.exit_reason) == ("closed", "manual_close")
    assert second.status == "open"
    assert Bot.objects.get(pk=bot.pk).status == "running"
    with pytest.raises(svc.BotTransitionError, match=f"^deal {first.deal_id} is already closed$"):
        bot_closing.bot_close_position(user=user, bot=bot, trade=first)


def test_emergency_stop_stops_only_the_users_active_bots(user, other_user, candles, no_kick):
    a = make_replay_bot(user, name="a")
    b = make_replay_bot(user, name="b")
    svc.bot_pause(user=user, bot=b)
    c = make_replay_bot(user, name="c", start=False)
    theirs = make_replay_bot(other_user, name="theirs")
    assert bot_closing.bots_emergency_stop(user=user) == [a.pk, b.pk]
    assert dict(Bot.objects.values_list("name", "status")) == {
        "a": "stopped",
        "b": "stopped",
        "c": "created",
        "theirs": "running",
    }
    assert Bot.objects.get(pk=a.pk).status_message == "emergency stop"
    assert c.pk and theirs.pk
