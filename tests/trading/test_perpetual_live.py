"""Live-feed perpetual bots against the fake Binance server: each step fetches the last-price
candles, the mark-price candles (/fapi/v1/markPriceKlines) and the funding rates
(/fapi/v1/fundingRate) closed since the bot's last candle, so the bot checks liquidation on
the mark and pays funding — exactly as a replay of the same window over the same stored data.

Data: the fake serves the bundled BTCUSDT USDT-M subset (2024-07-22 .. 08-18, the 2024-08-05
crash), the same rows ``test_bot_perpetuals`` imports from the files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest

from market7.timeframes import dt_to_ms
from tests.trading.conftest import counts, no_enqueue, step_at
from trading.models import Bot, BotEvent, Candle, Trade
from trading.models.market import FundingRate, MarkCandle
from trading.services import bots as svc
from trading.services.markets import market_ensure
from trading.services.runner import bot_step

pytest_plugins = ["tests.fakes.fixtures"]

S = "BTC/USDT:USDT"
START = datetime(2024, 8, 3, tzinfo=UTC)  # the bot starts at 00:10: its first candle is 00:00
NOW = datetime(2024, 8, 5, 12, 30, tzinfo=UTC)  # 12:00 still open: 2024-08-03 00:00 .. 08-05 11:00 closed
LONG_DCA = {"base_order_size": 200, "safety_order_size": 200, "max_safety_orders": 2, "price_deviation": 2}
PERP = {"leverage": 10, "margin_mode": "isolated", "liquidation_buffer_pct": 0}


def live_bot(user, fake, *, name="live perp", perpetual=PERP) -> Bot:
    market_ensure(exchange="binance", exchange_symbol="BTCUSDT", market_type="swap")
    bot = svc.bot_create(
        user=user, name=name, strategy="smart_dca", markets=[S], capital="1000", params=LONG_DCA, feed="live",
        perpetual=perpetual,
    )  # fmt: skip
    fake.now_ms = dt_to_ms(START + timedelta(minutes=10))
    with no_enqueue(), mock.patch("django.utils.timezone.now", return_value=START + timedelta(minutes=10)):
        svc.bot_start(user=user, bot=bot)
    return Bot.objects.get(pk=bot.pk)


def deals(bot: Bot) -> list[tuple]:
    return [
        (t.side, t.status, t.opened_at, t.closed_at, t.exit_reason, t.avg_entry, t.exit_price, t.liquidation_price,
         t.funding_paid, t.realized_pnl)
        for t in Trade.objects.filter(bot=bot).order_by("opened_at", "pk")
    ]  # fmt: skip


@pytest.mark.django_db
def test_live_perpetual_bot_fetches_mark_and_funding_and_trades_like_a_replay(user, fake_binance):
    bot = live_bot(user, fake_binance)
    assert bot.last_candle_at == START - timedelta(hours=1)
    fake_binance.now_ms = dt_to_ms(NOW)
    report = bot_step(bot_id=bot.pk, now=NOW)
    assert (report.outcome, report.candles) == ("stepped", 60)  # 2024-08-03 00:00 .. 08-05 11:00
    assert fake_binance.paths() == [
        "/fapi/v1/exchangeInfo", "/fapi/v1/time", "/fapi/v1/klines",  # last price
        "/fapi/v1/exchangeInfo", "/fapi/v1/time", "/fapi/v1/markPriceKlines",  # mark price
        "/fapi/v1/exchangeInfo", "/fapi/v1/fundingRate",  # funding
    ]  # fmt: skip
    bot.refresh_from_db()
    assert (bot.status, bot.last_candle_at) == ("running", datetime(2024, 8, 5, 11, tzinfo=UTC))
    # stored from the feed origin (start - 500 h, before the subset's 2024-07-22) to the last closed candle
    market = bot.markets.get()
    assert Candle.objects.filter(market=market).count() == MarkCandle.objects.filter(market=market).count() == 348
    assert FundingRate.objects.filter(market=market).count() == 44  # 07-22 00:00 .. 08-05 08:00, every 8 h
    assert not BotEvent.objects.filter(bot=bot, rule="mark_price").exists()  # liquidation checked on the mark

    live = deals(bot)
    assert [(d[1], d[4]) for d in live] == [("closed", "take_profit"), ("closed", "liquidation"), ("open", "")]
    liq = Trade.objects.get(bot=bot, exit_reason="liquidation")
    assert (liq.closed_at, liq.exit_price) == (datetime(2024, 8, 5, 1, tzinfo=UTC), liq.liquidation_price)
    assert liq.exit_price == Decimal("54922.6")  # the liquidation price, on the 0.1 tick
    assert liq.funding_paid == Decimal("0.16899256")  # a long pays the positive rates while held
    assert sum(t.funding_paid for t in Trade.objects.filter(bot=bot)) == Decimal("0.20808255")

    # a replay bot of the same window over the rows the live poll stored makes the same deals
    replay = svc.bot_create(
        user=user, name="replay perp", strategy="smart_dca", markets=[S], capital="1000", params=LONG_DCA,
        feed="replay", replay_start=START, replay_speed=3600.0, perpetual=PERP,
    )  # fmt: skip
    with no_enqueue():
        svc.bot_start(user=user, bot=replay)
    assert step_at(replay, 60.5).outcome == "stepped"
    replay.refresh_from_db()
    assert replay.last_candle_at == bot.last_candle_at
    assert deals(replay) == live
    assert (replay.equity, replay.realized_pnl) == (bot.equity, bot.realized_pnl)


@pytest.mark.django_db
@pytest.mark.parametrize("after,path", [(5, "/fapi/v1/markPriceKlines"), (7, "/fapi/v1/fundingRate")])
def test_mark_or_funding_fetch_failure_puts_the_live_bot_in_error(user, fake_binance, after, path):
    bot = live_bot(user, fake_binance)
    fake_binance.now_ms = dt_to_ms(NOW)
    assert bot_step(bot_id=bot.pk, now=NOW).outcome == "stepped"
    before = counts(bot)
    fake_binance.requests.clear()
    later = NOW + timedelta(hours=1)
    fake_binance.now_ms = dt_to_ms(later)
    fake_binance.fail_next(503, after=after)
    report = bot_step(bot_id=bot.pk, now=later)
    assert [r.path for r in fake_binance.requests if r.status == 503] == [path]
    bot.refresh_from_db()
    assert (report.outcome, bot.status) == ("error", "error")
    assert bot.status_message.startswith(f"cannot reach binance: binance GET {fake_binance.base_url}{path}")
    assert report.message == bot.status_message
    assert bot.last_candle_at == datetime(2024, 8, 5, 11, tzinfo=UTC)  # the step wrote nothing
    error_event = BotEvent.objects.get(bot=bot, kind="error")
    assert error_event.reason == bot.status_message
    assert counts(bot) == {**before, "events": before["events"] + 1}  # the error event, nothing else


@pytest.mark.django_db
def test_live_spot_bot_fetches_no_mark_and_no_funding(user, fake_binance):
    market_ensure(exchange="binance", exchange_symbol="BTCUSDT")
    bot = svc.bot_create(user=user, name="spot", strategy="smart_dca", markets=["BTC/USDT"], capital="1000")
    start = datetime(2025, 7, 1, tzinfo=UTC)
    with no_enqueue(), mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=10)):
        svc.bot_start(user=user, bot=bot)
    fake_binance.now_ms = dt_to_ms(start + timedelta(hours=3, minutes=5))
    assert bot_step(bot_id=bot.pk, now=start + timedelta(hours=3, minutes=5)).candles == 3
    assert fake_binance.paths() == ["/api/v3/exchangeInfo", "/api/v3/time", "/api/v3/klines"]
    assert MarkCandle.objects.count() == FundingRate.objects.count() == 0
