"""Watchlist risk multipliers size a user's entries: the runner adds the owner's watchlist
multipliers to the bot's risk block (under the block's own ``symbol_multipliers``), backtests a
user creates store them in the run's risk section. Real bundled BTC/USDT 1h candles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.risk import risk_config_with_symbol_multipliers
from strategies.services.backtests import backtest_create, parse_day_range
from tests.trading.conftest import load_bundled, make_replay_bot, step_at
from trading.models import BotEvent, Order
from trading.services.watchlist import watchlist_enable, watchlist_set_multiplier

RISK = {"regime_enabled": False, "correlation_action": "off"}  # only the symbol multiplier resizes here
PARAMS = {"max_active_deals": 1, "take_profit": 1.0, "stop_loss": 5.0}


def test_pure_precedence():
    block = {"sizing_mode": "strategy", "symbol_multipliers": {"BTC/USDT": 1.0}}
    assert risk_config_with_symbol_multipliers(block, {"BTC/USDT": 0.5, "ETH/USDT": 2.0}) == {
        "sizing_mode": "strategy",
        "symbol_multipliers": {"BTC/USDT": 1.0, "ETH/USDT": 2.0},
    }
    assert block == {"sizing_mode": "strategy", "symbol_multipliers": {"BTC/USDT": 1.0}}  # not changed
    assert risk_config_with_symbol_multipliers(None, {"BTC/USDT": 0.5}) is None
    assert risk_config_with_symbol_multipliers({}, {}) == {}


def _watch(user, market, multiplier):
    entry = watchlist_enable(user=user, market=market)
    watchlist_set_multiplier(user=user, entry_id=entry.pk, multiplier=Decimal(multiplier))


def _base_order(bot):
    return Order.objects.filter(bot=bot, tag="base_order").order_by("placed_at", "pk").first()


@pytest.fixture
def btc(db):
    return load_bundled("BTCUSDT-1h.csv.gz")


def test_paper_bot_entry_sized_at_half(btc, user, other_user):
    _watch(user, btc, "0.5")
    half = make_replay_bot(
        user, name="half", markets=("BTC/USDT",), params=PARAMS | {"base_order_size": 20.0}, risk=RISK
    )
    # the same entry without a multiplier at 10 USDT: bob has no watchlist entry
    ten = make_replay_bot(
        other_user, name="ten", markets=("BTC/USDT",), params=PARAMS | {"base_order_size": 10.0}, risk=RISK
    )
    # alice's bot whose block sets BTC/USDT x1 itself: the block wins over the watchlist
    own = make_replay_bot(
        user, name="own", markets=("BTC/USDT",), params=PARAMS | {"base_order_size": 20.0},
        risk=RISK | {"symbol_multipliers": {"BTC/USDT": 1.0}},
    )  # fmt: skip
    # alice's bot without a risk block: no portfolio risk, nothing resizes
    off = make_replay_bot(user, name="off", markets=("BTC/USDT",), params=PARAMS | {"base_order_size": 20.0})
    twenty = make_replay_bot(
        other_user, name="20", markets=("BTC/USDT",), params=PARAMS | {"base_order_size": 20.0}, risk=RISK
    )
    for bot in (half, ten, own, off, twenty):
        assert step_at(bot, 6).outcome == "stepped"

    o_half, o_ten, o_own, o_off, o_twenty = (_base_order(b) for b in (half, ten, own, off, twenty))
    assert o_half.placed_at == o_ten.placed_at == o_twenty.placed_at
    assert o_half.amount == o_ten.amount and o_half.amount > 0  # exactly the 10 USDT entry
    assert o_own.amount == o_off.amount == o_twenty.amount > o_half.amount
    ev = BotEvent.objects.get(bot=half, rule="symbol_multiplier")
    assert (ev.outcome, ev.symbol, ev.reason) == (
        "resize",
        "BTC/USDT",
        "BTC/USDT multiplier: size x0.5, 20.00 -> 10.00 USDT",
    )
    assert not BotEvent.objects.filter(bot__in=[own, off, ten, twenty], rule="symbol_multiplier").exists()


def test_backtest_of_the_user_stores_the_watchlist_multiplier(btc, user, other_user):
    eth = load_bundled("ETHUSDT-1h.csv.gz")
    _watch(user, btc, "0.5")
    _watch(user, eth, "1.5")
    start, end = parse_day_range("2025-04-01", "2025-04-10")
    kw = {"strategy": "smart_dca", "symbols": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "start": start, "end": end}
    kw["capital"] = "1000"
    run = backtest_create(user=user, enqueue=False, params={"risk": {"symbol_multipliers": {"ETH/USDT": 2.0}}}, **kw)
    assert run.params["risk"]["symbol_multipliers"] == {"BTC/USDT": 0.5, "ETH/USDT": 2.0}
    assert (
        backtest_create(user=other_user, enqueue=False, params={"risk": {}}, **kw).params["risk"]["symbol_multipliers"]
        == {}
    )
    assert "risk" not in backtest_create(user=user, enqueue=False, params={}, **kw).params  # no block: no sizing
