"""One engine, three modes, for a signal strategy: a paper bot with strategy ``swing`` replayed
over April 2025 in many irregular steps makes exactly the trades, orders, decisions and final
state of one backtest over the same candles (the pattern of ``tests/trading/test_runner_replay``)."""

from __future__ import annotations

import json
import random

import pytest

from market7.timeframes import dt_to_ms
from strategies.engine.engine import Engine
from strategies.registry import create_strategy
from tests.trading.conftest import REPLAY_START, candles, no_kick, step_at  # noqa: F401
from trading.brokers import PaperBroker, market_spec
from trading.models import Bot, BotEvent, Order, Trade
from trading.services.feeds import feed_build

pytestmark = pytest.mark.django_db

PARAMS = {"max_active_deals": 2, "base_order_size": 200.0, "lookback": 10, "min_confidence": 0.4}
EXPECTED_TRADES = 9
EXPECTED_REASONS = ["stop_loss", "take_profit", "trailing_stop"]


def test_swing_paper_bot_replay_makes_exactly_the_backtests_trades(user, candles, no_kick):  # noqa: F811
    from trading.services import bots as svc

    bot = svc.bot_create(
        user=user, name="swing", strategy="swing", markets=["BTC/USDT", "ETH/USDT"], capital="1000",
        params=PARAMS, feed="replay", replay_start=REPLAY_START, replay_speed=3600.0,
    )  # fmt: skip
    bot = svc.bot_start(user=user, bot=bot)
    rng = random.Random(7)
    hours = 0.0
    while hours < 24 * 29:
        hours += rng.choice([1, 2, 3, 7, 13, 24, 40]) + rng.random() * 0.9
        assert step_at(bot, hours).outcome == "stepped"
    bot = Bot.objects.get(pk=bot.pk)

    markets = sorted(bot.markets.all(), key=lambda m: m.symbol)
    feed = feed_build(bot, markets, until_ms=bot.last_candle_ms)
    engine = Engine(
        create_strategy("swing", PARAMS), [market_spec(m) for m in markets], broker=PaperBroker(),
        capital=1000.0, order_prefix=bot.order_prefix,
    )  # fmt: skip
    result = engine.run(feed, start_ms=dt_to_ms(bot.replay_start))

    closed = list(Trade.objects.filter(bot=bot, status="closed").select_related("market").order_by("closed_at"))
    assert len(result.trades) == len(closed) == EXPECTED_TRADES
    assert sorted({t.exit_reason for t in closed}) == EXPECTED_REASONS
    by_deal = {t.deal_id: t for t in closed}
    for ct in result.trades:
        t = by_deal[ct.deal_id]
        assert (t.market.symbol, dt_to_ms(t.opened_at), dt_to_ms(t.closed_at)) == (
            ct.symbol,
            ct.opened_at,
            ct.closed_at,
        )
        assert float(t.avg_entry) == pytest.approx(ct.entry_price, rel=0, abs=1e-9)
        assert float(t.exit_price) == pytest.approx(ct.exit_price, rel=0, abs=1e-9)
        assert t.exit_reason == ct.exit_reason
    rows = {o.client_order_id: (o.tag, o.status) for o in Order.objects.filter(bot=bot)}
    status = {"filled": "closed", "open": "open", "canceled": "canceled", "rejected": "rejected"}
    assert rows == {o.client_order_id: (o.tag, status[o.status]) for o in result.orders}
    assert json.dumps(bot.state, sort_keys=True, separators=(",", ":")) == result.state.to_json()
    logged = sorted(BotEvent.objects.filter(bot=bot, kind="decision").values_list("rule", "outcome", "reason"))
    assert logged == sorted((d.rule, d.outcome, d.reason) for d in result.decisions)


def test_backtest_command_runs_a_signal_strategy(user, candles, tmp_path):  # noqa: F811
    from io import StringIO

    from django.core.management import call_command

    from strategies.models import BacktestRun, BacktestTrade

    params = tmp_path / "p.json"
    params.write_text(json.dumps(PARAMS))
    argv = ["--strategy", "swing", "--symbols", "BTC/USDT,ETH/USDT", "--start", "2025-04-01", "--end", "2025-04-29"]
    call_command("backtest", *argv, "--params", str(params), stdout=StringIO())
    run = BacktestRun.objects.get()
    trades = BacktestTrade.objects.filter(run=run)
    assert run.strategy == "swing" and trades.count() == EXPECTED_TRADES
    assert sorted(set(trades.values_list("exit_reason", flat=True))) == EXPECTED_REASONS
