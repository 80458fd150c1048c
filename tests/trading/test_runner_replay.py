"""One engine, three modes: a paper bot replayed over a period in many steps makes EXACTLY the
trades, orders and final state that a backtest (one Engine.run over the same candles) makes."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from market7.timeframes import dt_to_ms
from strategies.engine.engine import Engine, EngineState
from strategies.registry import create_strategy
from strategies.risk import risk_manager_from_config
from tests.trading.conftest import REPLAY_START, make_replay_bot, step_at
from trading.brokers import PaperBroker, market_spec
from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Order, Trade
from trading.services.feeds import feed_build

pytestmark = pytest.mark.django_db

PARAMS = {
    "max_active_deals": 2, "take_profit": 1.0, "stop_loss": 4.0, "max_safety_orders": 4, "safety_order_size": 30,
    "step_scale": 1.2, "volume_scale": 1.3, "spend_guard_enabled": True, "zombie_tag_enabled": True, "zombie_hours": 24,
    "step_repeat_guard_enabled": True,
}  # fmt: skip


# Portfolio risk that acts on this period: equity-percent sizing, at most one position, a daily
# loss limit and a drawdown throttle + pause with auto-resume, correlation shrink, regime on.
RISK = {
    "sizing_mode": "equity_pct", "equity_pct": 4.0, "max_positions": 1, "daily_loss_limit_pct": 0.5,
    "drawdown_reduce_pct": 1.0, "drawdown_pause_pct": 2.0, "drawdown_auto_resume_pct": 1.0,
}  # fmt: skip


def _backtest(bot: Bot, until_ms: int):
    markets = sorted(bot.markets.all(), key=lambda m: m.symbol)
    feed = feed_build(bot, markets, until_ms=until_ms)
    specs = [market_spec(m) for m in markets]
    engine = Engine(
        create_strategy(bot.strategy, bot.params), specs, broker=PaperBroker(),
        risk=risk_manager_from_config(bot.risk, markets=specs), capital=float(bot.capital), order_prefix=bot.order_prefix,
    )  # fmt: skip
    return engine.run(feed, start_ms=dt_to_ms(bot.replay_start))


@pytest.mark.parametrize("seed,risk", [(1, None), (2, None), (3, RISK)])
def test_replayed_bot_makes_exactly_the_backtests_trades(user, candles, no_kick, seed, risk):
    bot = make_replay_bot(user, params=PARAMS, risk=risk)
    rng = random.Random(seed)
    hours, steps = 0.0, 0
    while hours < 24 * 29:  # April 2025, stepped at irregular intervals (1 h .. 2 days)
        hours += rng.choice([1, 1, 2, 3, 5, 11, 24, 48]) + rng.random() * 0.9
        report = step_at(bot, hours)
        assert report.outcome == "stepped", report
        steps += 1
    bot.refresh_from_db()
    assert steps > 30 and bot.steps == steps

    result = _backtest(bot, bot.last_candle_ms)
    closed = list(
        Trade.objects.filter(bot=bot, status="closed").select_related("market").order_by("closed_at", "deal_id")
    )
    assert len(result.trades) > 20
    assert len(closed) == len(result.trades)
    by_deal = {t.deal_id: t for t in closed}
    for ct in result.trades:
        t = by_deal[ct.deal_id]
        spec = market_spec(t.market)
        assert (t.market.symbol, t.side) == (ct.symbol, ct.side)
        assert (dt_to_ms(t.opened_at), dt_to_ms(t.closed_at)) == (ct.opened_at, ct.closed_at)
        assert float(t.avg_entry) == pytest.approx(ct.entry_price, rel=0, abs=1e-9)
        assert float(t.exit_price) == pytest.approx(ct.exit_price, rel=0, abs=1e-9)
        assert str(t.amount.normalize()) == str(spec.amount_str(ct.amount))
        assert float(t.realized_pnl) == pytest.approx(ct.pnl, rel=0, abs=5e-9)
        assert t.exit_reason == ct.exit_reason and t.safety_orders_filled == ct.safety_orders_filled
        assert t.tags == ct.tags
    # every order the backtest placed exists with the same id, status, amount and average price
    rows = {o.client_order_id: o for o in Order.objects.filter(bot=bot)}
    assert set(rows) == {o.client_order_id for o in result.orders}
    status = {"filled": "closed", "open": "open", "canceled": "canceled", "rejected": "rejected"}
    for od in result.orders:
        row = rows[od.client_order_id]
        assert (row.side, row.type, row.tag, row.status) == (od.side, od.type, od.tag, status[od.status])
        assert float(row.amount) == od.amount and float(row.filled) == od.filled
    assert Fill.objects.filter(order__bot=bot).count() == len(result.fills)
    # the same final state (bit-identical floats), equity curve and equity
    assert json.dumps(bot.state, sort_keys=True, separators=(",", ":")) == result.state.to_json()
    assert EngineState.from_dict(bot.state).to_json() == result.state.to_json()
    eq = list(EquitySnapshot.objects.filter(bot=bot).order_by("time").values_list("time", "equity"))
    assert len(eq) == len(result.equity)
    assert [dt_to_ms(t) for t, _ in eq] == result.equity_time.tolist()
    assert all(abs(float(e) - x) < 5e-9 for (_, e), x in zip(eq, result.equity.tolist(), strict=True))
    assert float(bot.equity) == pytest.approx(float(result.equity[-1]), abs=5e-9)
    # the same decisions, risk rules included, logged with their reasons
    logged = sorted(
        BotEvent.objects.filter(bot=bot, kind="decision").values_list("rule", "outcome", "reason", "symbol")
    )
    assert logged == sorted((d.rule, d.outcome, d.reason, d.symbol) for d in result.decisions)
    risk_rules = {d.rule for d in result.decisions} & {"position_sizing", "max_positions", "drawdown_size"}
    assert risk_rules == (set() if risk is None else {"position_sizing", "max_positions", "drawdown_size"})


def test_pausing_in_the_middle_changes_no_decision(user, candles, no_kick):
    from trading.services import bots as svc

    bot = make_replay_bot(user, params=PARAMS)
    step_at(bot, 100.5)
    svc.bot_pause(user=user, bot=bot)
    svc.bot_resume(user=user, bot=bot)
    bot.refresh_from_db()
    from trading.services.runner import bot_step

    bot_step(bot_id=bot.pk, now=bot.replay_clock_wall + timedelta(seconds=200))
    bot.refresh_from_db()
    result = _backtest(bot, bot.last_candle_ms)
    assert json.dumps(bot.state, sort_keys=True, separators=(",", ":")) == result.state.to_json()
    assert Trade.objects.filter(bot=bot, status="closed").count() == len(result.trades)
    assert bot.last_candle_at >= REPLAY_START + timedelta(hours=199)
