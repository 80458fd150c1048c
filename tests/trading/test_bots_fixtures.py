"""Shared fixtures and helpers of the bot tests (imported by test_bots_*.py / test_runner*.py).

Real data: slices of the bundled Binance 1h candles (``trading/data/bundled``) are loaded
into Candle rows with the import service's own reader and upsert.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.conf import settings

from market7.timeframes import dt_to_ms
from trading.models import Bot, Candle, Market

REPLAY_START = datetime(2025, 4, 1, tzinfo=UTC)
DATA_END = datetime(2025, 5, 1, tzinfo=UTC)  # slices stop before this open time (exclusive)
HOUR = timedelta(hours=1)
DCA_PARAMS = {"max_active_deals": 2, "take_profit": 1.0, "stop_loss": 5.0}


def load_bundled(filename: str, *, until: datetime | None = DATA_END) -> Market:
    """Load ``trading/data/bundled/<filename>`` (e.g. ``BTCUSDT-1h.csv.gz``) up to ``until``
    (exclusive) into Candle rows of binance; returns the Market."""
    from trading.services.candles import candles_upsert, parse_candle_filename, read_candle_file
    from trading.services.markets import market_ensure

    symbol, timeframe = parse_candle_filename(filename)
    candles, rejections, _ = read_candle_file(settings.MARKET7_BUNDLED_DATA / filename, timeframe=timeframe)
    assert rejections == []
    if until is not None:
        candles = candles.take(candles.time < dt_to_ms(until))
    market = market_ensure(exchange="binance", exchange_symbol=symbol)
    candles_upsert(market=market, timeframe=timeframe, candles=candles)
    return market


@pytest.fixture
def candles(db):
    """BTC/USDT and ETH/USDT 1h, 2025-03-05 .. 2025-04-30 23:00 (real Binance data)."""
    return {m.symbol: m for m in (load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz"))}


@pytest.fixture
def no_kick():
    """Keep bot_start & co. from enqueueing bots_due on the real broker (they do it on commit)."""
    with mock.patch("trading.services.runner.bots_kick") as kick:
        yield kick


def make_replay_bot(
    user, *, name="replay", markets=("BTC/USDT", "ETH/USDT"), params=None, start=True, speed=3600.0, capital="1000"
):
    from trading.services import bots as svc

    bot = svc.bot_create(
        user=user, name=name, strategy="smart_dca", markets=list(markets), capital=capital,
        params=DCA_PARAMS if params is None else params, feed="replay", replay_start=REPLAY_START, replay_speed=speed,
    )  # fmt: skip
    if start:
        with mock.patch("trading.services.runner.bots_kick"):
            bot = svc.bot_start(user=user, bot=bot)
    return Bot.objects.get(pk=bot.pk)


def step_at(bot: Bot, seconds: float):
    """One bot step with the wall clock ``seconds`` after the bot's replay clock started (at
    3600x, ``seconds`` = market hours since the replay start)."""
    from trading.services.runner import bot_step

    bot.refresh_from_db()
    return bot_step(bot_id=bot.pk, now=bot.replay_clock_wall + timedelta(seconds=seconds))


def counts(bot: Bot) -> dict[str, int]:
    from trading.models import BotEvent, EquitySnapshot, Fill, Order, PaperBalance, Trade

    return {
        "orders": Order.objects.filter(bot=bot).count(),
        "fills": Fill.objects.filter(order__bot=bot).count(),
        "trades": Trade.objects.filter(bot=bot).count(),
        "events": BotEvent.objects.filter(bot=bot).exclude(kind="status").count(),
        "balances": PaperBalance.objects.filter(bot=bot).count(),
        "snapshots": EquitySnapshot.objects.filter(bot=bot).count(),
    }


def test_bundled_slices_load_real_candles(candles):
    btc = candles["BTC/USDT"]
    qs = Candle.objects.filter(market=btc, timeframe="1h").order_by("open_time")
    assert qs.count() == 1368  # 2025-03-05 00:00 .. 2025-04-30 23:00
    first = qs.first()
    assert (first.open_time, first.open, first.close) == (datetime(2025, 3, 5, tzinfo=UTC), 87281.98, 86800.36)
    assert qs.last().open_time == datetime(2025, 4, 30, 23, tzinfo=UTC)
