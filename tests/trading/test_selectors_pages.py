"""Page selectors (trading.selectors.bots page reads, .trades, .dashboard): exact values for
alice's bot (``bot_with_trades``), and bob's rows — a bot on the same market with deals, orders,
fills, decisions and snapshots — never appear in alice's results (nor alice's in bob's)."""

from __future__ import annotations

import math
import statistics
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Order, Trade
from trading.selectors.bots import (
    bot_chart,
    bot_closed_trades,
    bot_event_facets,
    bot_events_page,
    bots_active,
    bots_by_name,
    bots_with_markets,
    open_deal_counts,
    user_has_bots,
)
from trading.selectors.dashboard import bot_equity_pnl_series, recent_decisions, user_equity_series, user_performance
from trading.selectors.trades import orders_by_trade, trade_symbols, trades_for_user, trades_history


@pytest.fixture
def bob_bot(other_user, market):
    """bob's paused bot on alice's market: one open short deal (order + fill at T0+1h), one closed
    losing deal, a blocking decision and two equity snapshots."""
    bot = make_bot(
        other_user, market, name="Bob Grid", status=Bot.Status.PAUSED, capital=Decimal("300"), last_candle_at=T0 + 5 * H
    )
    open_ = Trade.objects.create(
        bot=bot,
        market=market,
        deal_id="b1",
        side="short",
        status="open",
        opened_at=T0 + 1 * H,
        avg_entry=Decimal("41800"),
        amount=Decimal("0.002"),
        cost=Decimal("83.6"),
        fees=Decimal("0.08"),
    )
    Trade.objects.create(
        bot=bot,
        market=market,
        deal_id="b0",
        side="long",
        status="closed",
        opened_at=T0,
        closed_at=T0 + H,
        avg_entry=Decimal("42000"),
        amount=Decimal("0.002"),
        cost=Decimal("84"),
        fees=Decimal("0.08"),
        realized_pnl=Decimal("-3"),
        exit_price=Decimal("40500"),
        exit_reason="stop_loss",
    )
    order = Order.objects.create(
        bot=bot,
        market=market,
        trade=open_,
        client_order_id="m7b-bob-1",
        side="sell",
        amount=Decimal("0.002"),
        filled=Decimal("0.002"),
        average=Decimal("41800"),
        status="closed",
        tag="base_order",
        deal_id="b1",
        placed_at=T0 + H,
    )
    Fill.objects.create(order=order, price=Decimal("41800"), amount=Decimal("0.002"), time=T0 + 4 * H)
    BotEvent.objects.create(
        bot=bot, time=T0 + 4 * H, kind="decision", rule="bob_rule", outcome="skip", reason="bob: no entry"
    )
    EquitySnapshot.objects.create(bot=bot, time=T0 + 1 * H, equity=Decimal("297"))
    EquitySnapshot.objects.create(bot=bot, time=T0 + 7 * H, equity=Decimal("310"))
    bot.open_trade = open_
    return bot


# -- bots -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_bot_lists_are_scoped(user, other_user, market, bot_with_trades, bob_bot):
    idle = make_bot(user, market, name="Aardvark")  # created, not active
    assert list(bots_with_markets(user)) == [idle, bot_with_trades]  # newest first
    assert [m.symbol for m in bots_with_markets(user)[1].markets.all()] == ["BTC/USDT"]
    assert list(bots_with_markets(other_user)) == [bob_bot]
    assert [b.name for b in bots_by_name(user)] == ["Aardvark", "Alpha DCA"]
    assert bots_active(user) == [bot_with_trades]
    assert bots_active(other_user) == [bob_bot]
    assert user_has_bots(user) is True and user_has_bots(AnonymousUser()) is False
    assert list(bots_with_markets(AnonymousUser())) == []


@pytest.mark.django_db
def test_open_deal_counts(user, other_user, market, bot_with_trades, bob_bot):
    idle = make_bot(user, market, name="idle")
    assert open_deal_counts(user=user, bots=[bot_with_trades, idle]) == {bot_with_trades.pk: 1}
    # bob's bot passed with alice as the user: the gate drops it
    assert open_deal_counts(user=user, bots=[bot_with_trades, bob_bot]) == {bot_with_trades.pk: 1}
    assert open_deal_counts(user=other_user, bots=[bot_with_trades]) == {}
    assert open_deal_counts(user=user, bots=[]) == {}


@pytest.mark.django_db
def test_bot_events_page_and_facets(user, other_user, bot_with_trades, bob_bot):
    events, total = bot_events_page(user=user, bot=bot_with_trades)
    assert total == 3
    # newest market time first, then newest id: trade_closed and the allow decision share T0+2h
    assert [(e.kind, e.rule, e.outcome) for e in events] == [
        ("trade_closed", "take_profit", "exit"),
        ("decision", "confidence", "allow"),
        ("decision", "spend_guard", "block"),
    ]
    events, total = bot_events_page(user=user, bot=bot_with_trades, kind="decision", outcome="block")
    assert total == 1 and [e.reason for e in events] == ["spend_guard: deal spend 41.2% > cap 40%"]
    events, total = bot_events_page(user=user, bot=bot_with_trades, limit=1)
    assert total == 3 and [e.rule for e in events] == ["take_profit"]
    assert bot_event_facets(user=user, bot=bot_with_trades) == (
        ["confidence", "spend_guard", "take_profit"],
        ["allow", "block", "exit"],
    )
    # bob asking for alice's bot gets nothing; his own log holds only his event
    assert bot_events_page(user=other_user, bot=bot_with_trades) == ([], 0)
    assert bot_event_facets(user=other_user, bot=bot_with_trades) == ([], [])
    events, total = bot_events_page(user=other_user, bot=bob_bot)
    assert total == 1 and [e.reason for e in events] == ["bob: no entry"]


@pytest.mark.django_db
def test_bot_closed_trades(user, other_user, bot_with_trades, bob_bot):
    rows = bot_closed_trades(user=user, bot=bot_with_trades)
    assert [(t.deal_id, t.realized_pnl, t.market.symbol) for t in rows] == [("d1", Decimal("10"), "BTC/USDT")]
    assert bot_closed_trades(user=other_user, bot=bot_with_trades) == []
    assert bot_closed_trades(user=user, bot=bot_with_trades, limit=0) == []


@pytest.mark.django_db
def test_bot_chart(user, other_user, market, bot_with_trades, bob_bot):
    candles, fills = bot_chart(user=user, bot=bot_with_trades, market=market)
    # up to the bot's last candle T0+5h: six candles, oldest first
    assert [c["close"] for c in candles] == [42000, 41800, 41500, 41000, 40500, 40800]
    assert candles[0] == {
        "time": int(T0.timestamp()),
        "open": 42010,
        "high": 42100,
        "low": 41900,
        "close": 42000,
        "volume": 12.5,
    }
    # alice's two fills, oldest first; bob's fill at T0+4h on the same market is not there
    assert [(f.price, f.time, f.order.tag) for f in fills] == [
        (Decimal("41500"), T0 + 3 * H, "base_order"),
        (Decimal("40500"), T0 + 4 * H, "safety_order_1"),
    ]
    candles, fills = bot_chart(user=user, bot=bot_with_trades, market=market, limit=2)
    assert [c["time"] for c in candles] == [int((T0 + 4 * H).timestamp()), int((T0 + 5 * H).timestamp())]
    assert [f.price for f in fills] == [Decimal("40500")]  # fills before the first shown candle dropped
    # bob with alice's bot: market data is shared, fills are not
    candles, fills = bot_chart(user=other_user, bot=bot_with_trades, market=market)
    assert len(candles) == 6 and fills == []


# -- trades -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_trades_for_user(user, other_user, bot_with_trades, bob_bot):
    b = bot_with_trades
    assert list(trades_for_user(user)) == [b.open_trade, b.closed_trade]  # newest opened first
    assert list(trades_for_user(user, status="open")) == [b.open_trade]
    assert list(trades_for_user(user, bot=b, status="closed")) == [b.closed_trade]
    assert list(trades_for_user(user, bot=bob_bot)) == []
    assert list(trades_for_user(other_user, bot=b)) == []
    assert [t.deal_id for t in trades_for_user(other_user)] == ["b1", "b0"]


@pytest.mark.django_db
def test_trades_history_filters(user, other_user, bot_with_trades, bob_bot):
    b = bot_with_trades
    assert [t.deal_id for t in trades_history(user=user)] == ["d2", "d1"]
    assert [t.deal_id for t in trades_history(user=user, side="long", status="closed")] == ["d1"]
    assert [t.deal_id for t in trades_history(user=user, bot=b.pk, market="BTC/USDT")] == ["d2", "d1"]
    assert [t.deal_id for t in trades_history(user=user, date_from=date(2024, 1, 1), date_to=date(2024, 1, 1))] == [
        "d2",
        "d1",
    ]
    assert list(trades_history(user=user, date_from=date(2024, 1, 2))) == []
    assert list(trades_history(user=user, bot=bob_bot.pk)) == []  # another user's bot id: nothing
    assert list(trades_history(user=user, side="short")) == []  # bob's short never shows
    row = trades_history(user=other_user, side="short")[0]
    assert (row.deal_id, row.bot.name, row.market.exchange.code) == ("b1", "Bob Grid", "binance")


@pytest.mark.django_db
def test_trade_symbols_and_orders(user, other_user, market, bot_with_trades, bob_bot):
    assert trade_symbols(user) == ["BTC/USDT"]
    assert trade_symbols(AnonymousUser()) == []
    open_ = bot_with_trades.open_trade
    orders = orders_by_trade([open_, bot_with_trades.closed_trade])
    assert list(orders) == [open_.pk]  # the closed deal has no orders
    assert [(o.client_order_id, o.tag) for o in orders[open_.pk]] == [
        ("m7b-1", "base_order"),
        ("m7b-2", "safety_order_1"),
        ("m7b-3", "safety_order_2"),
    ]
    assert orders_by_trade([]) == {}


# -- dashboard --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_user_equity_series_scoped(user, other_user, bot_with_trades, bob_bot):
    series = user_equity_series(user)
    assert [p["equity"] for p in series] == [1000, 1004, 1010, 1008, 1011, 1012.5]
    assert [p["pnl"] for p in series] == [0, 4, 10, 8, 11, 12.5]
    assert series[0]["time"] == int(T0.timestamp())
    # thinned to 3 points: indexes 0, 2, 4 and the last one kept
    assert [p["equity"] for p in user_equity_series(user, max_points=3)] == [1000, 1010, 1011, 1012.5]
    assert user_equity_series(other_user) == [
        {"time": int((T0 + H).timestamp()), "equity": 297.0, "pnl": -3.0},
        {"time": int((T0 + 7 * H).timestamp()), "equity": 310.0, "pnl": 10.0},
    ]
    assert user_equity_series(AnonymousUser()) == []


@pytest.mark.django_db
def test_user_performance_scoped(user, other_user, bot_with_trades, bob_bot):
    perf = user_performance(user)
    equity = [1000, 1000, 1004, 1010, 1008, 1011, 1012.5]
    rets = [(b - a) / a for a, b in zip(equity, equity[1:], strict=False)]
    expected_sharpe = statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365 * 24)  # hourly points
    assert perf == {
        "closed": 1,
        "wins": 1,
        "losses": 0,
        "win_rate_pct": 100.0,
        "avg_pnl": Decimal("10"),
        "total_realized": Decimal("10"),
        "sharpe": pytest.approx(expected_sharpe, rel=1e-12),
        "max_drawdown_pct": pytest.approx((1010 - 1008) / 1010 * 100, rel=1e-12),
    }
    bob = user_performance(other_user)
    assert (bob["closed"], bob["wins"], bob["losses"], bob["total_realized"]) == (1, 0, 1, Decimal("-3"))
    assert bob["win_rate_pct"] == 0.0 and bob["sharpe"] is None  # two points only


@pytest.mark.django_db
def test_bot_equity_pnl_series(user, other_user, bot_with_trades, bob_bot):
    series = bot_equity_pnl_series(user=user, bot=bot_with_trades)
    assert [p["pnl"] for p in series] == [0, 4, 10, 8, 11, 12.5]
    assert bot_equity_pnl_series(user=user, bot=bot_with_trades, max_points=2) == [
        {"time": int((T0 + 4 * H).timestamp()), "equity": 1011.0, "pnl": 11.0},
        {"time": int((T0 + 5 * H).timestamp()), "equity": 1012.5, "pnl": 12.5},
    ]
    assert bot_equity_pnl_series(user=other_user, bot=bot_with_trades) == []


@pytest.mark.django_db
def test_recent_decisions_scoped(user, other_user, bot_with_trades, bob_bot):
    rows = recent_decisions(user)
    # routine allow hidden; newest created first (same second: newest id first)
    assert [(e.kind, e.rule, e.bot.name) for e in rows] == [
        ("trade_closed", "take_profit", "Alpha DCA"),
        ("decision", "spend_guard", "Alpha DCA"),
    ]
    assert [e.rule for e in recent_decisions(user, limit=1)] == ["take_profit"]
    assert [(e.reason, e.bot.name) for e in recent_decisions(other_user)] == [("bob: no entry", "Bob Grid")]
