"""Manual commands through the engine (close, add funds, change TP/SL) and Smart DCA's handling.

Hand-made candles, exact prices and amounts. A command acts at the close of the last processed
candle: its orders fill from the next candle on, like any order a strategy places.
"""

from __future__ import annotations

import pytest

from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.testing import T0, ScriptedStrategy, make_feed
from strategies.library.smart_dca import SmartDCA

H = 3_600_000
SYM = "BTC/USDT"
SPEC = MarketSpec(
    SYM, amount_tick=1e-8, price_tick=0.01, min_amount=0.0, min_cost=1.0, maker_fee_bps=0, taker_fee_bps=0
)
PARAMS = dict(
    base_order_size=100,
    safety_order_size=10,
    max_safety_orders=3,
    active_safety_orders=1,
    price_deviation=1.0,
    step_scale=2.0,
    volume_scale=2.0,
    take_profit=1.0,
)
ROWS = [
    (100, 100.5, 99.5, 100),  # 0: base order decided on the close
    (100, 100.2, 99.8, 100),  # 1: base fills at 100; TP 101 and SO1 99 placed on the close
    (100, 100.3, 99.6, 100),  # 2: nothing fills -> the command is applied after this candle
    (99.5, 99.8, 99.2, 99.5),  # 3: market orders of the command fill at the open (99.5)
    (99.5, 99.8, 99.2, 99.5),
    (99.5, 99.8, 99.2, 99.5),
]


def engine(capital=10_000.0, **params):
    p = dict(PARAMS)
    p.update(params)
    return Engine(SmartDCA(p), [SPEC], SimulatedBroker(), capital=capital, order_prefix="b1")


def open_deal(eng, feed):
    """Run candles 0..2: one open deal, base filled at 100, TP 101, SO1 99 resting."""
    res = eng.run(feed.truncate(T0 + 2 * H))
    (deal_id,) = res.state.portfolio["deals"]
    assert deal_id == "b1-d1" and res.state.last_time == T0 + 2 * H
    return res.state, deal_id


def test_add_funds_places_a_manual_safety_order_that_moves_average_and_take_profit():
    feed = make_feed({SYM: ROWS})
    eng = engine()
    state, deal_id = open_deal(eng, feed)

    cr = eng.apply_commands(state, [{"cmd": "add_funds", "deal_id": deal_id, "quote": 50}], feed)
    (od,) = cr.orders
    assert (od.tag, od.type, od.side, od.amount, od.status) == ("manual_safety_order", "market", "buy", 0.5, "open")
    assert (od.deal_id, od.created_at) == (deal_id, T0 + 3 * H)  # at the close of candle 2
    assert od.client_order_id == f"b1-{state.order_seq + 1}"
    (d,) = cr.decisions
    assert (d.time, d.rule, d.outcome, d.symbol) == (T0 + 2 * H, "manual_add_funds", "info", SYM)
    assert d.reason == (
        "add funds 50 USDT: market buy 0.5 BTC/USDT at the next open (last close 100); "
        "a manual safety order, TP and SL follow the new average"
    )
    assert state.open_orders[-1]["tag"] != "manual_safety_order"  # the given state is not modified

    res = eng.run(feed, state=cr.state)
    manual = [f for f in res.fills if f.tag == "manual_safety_order"]
    assert [(f.price, f.amount, f.time) for f in manual] == [(99.5, 0.5, T0 + 3 * H)]
    avg = (100.0 + 99.5 * 0.5) / 1.5  # 99.8333...
    pos = res.state.portfolio["positions"][SYM]
    assert pos["amount"] == 1.5 and pos["entry_price"] == pytest.approx(avg)
    tps = [o for o in res.orders if o.tag == "take_profit"]
    assert [(o.price, o.amount, o.status) for o in tps] == [(101.0, 1.0, "canceled"), (100.83, 1.5, "open")]
    assert round(avg * 1.01, 2) == 100.83
    # the automatic ladder is unchanged: SO1 still at 99, no SO counted
    deal = res.open_deals[0]
    assert deal["safety_orders_filled"] == 0 and deal["take_profit_price"] == 100.83
    assert deal["ladder"][-1] == {"so_index": "M1", "price": 99.5, "quote": 49.75, "status": "filled", "manual": True}
    assert [r["status"] for r in deal["ladder"][:3]] == ["planned", "planned", "planned"]
    st = res.state.strategy["symbols"][SYM]
    assert st["manual"] == [{"time": T0 + 3 * H, "price": 99.5, "amount": 0.5}]


def test_set_exits_replaces_take_profit_and_adds_a_stop_loss_from_the_average_entry():
    feed = make_feed({SYM: ROWS})
    eng = engine()
    state, deal_id = open_deal(eng, feed)
    cr = eng.apply_commands(
        state, [{"cmd": "set_exits", "deal_id": deal_id, "take_profit": 2.5, "stop_loss": 0.5}], feed
    )
    by = {(o.tag, o.status): o for o in cr.orders}
    assert by[("take_profit", "canceled")].price == 101.0
    assert by[("take_profit", "canceled")].cancel_reason == "replaced"
    new_tp, sl = by[("take_profit", "open")], by[("stop_loss", "open")]
    assert (new_tp.price, new_tp.amount, new_tp.reduce_only) == (102.5, 1.0, True)
    assert (sl.type, sl.stop_price, sl.amount) == ("stop_market", 99.5, 1.0)
    (d,) = cr.decisions
    assert (d.rule, d.outcome) == ("manual_set_exits", "info")
    assert d.reason == "take profit 101 -> 102.5 (2.5% from avg 100); stop loss none -> 99.5 (0.5% from avg 100)"
    assert d.payload["take_profit_price"] == 102.5 and d.payload["stop_loss_price"] == 99.5
    open_tags = sorted(o["tag"] for o in cr.state.open_orders)
    assert open_tags == ["safety_order", "stop_loss", "take_profit"]

    # candle 3 opens at the stop (99.5): it triggers, the deal closes with exit reason stop_loss
    res = eng.run(feed, state=cr.state)
    (t,) = res.trades
    assert (t.exit_reason, t.exit_price, t.closed_at) == ("stop_loss", 99.5, T0 + 3 * H)
    assert t.pnl == pytest.approx(-0.5)


def test_set_exits_keeps_the_override_after_a_safety_order_fill_and_zero_removes_the_stop():
    rows = ROWS[:3] + [(99.5, 99.6, 98.9, 99.2), (99.2, 99.3, 99.1, 99.2)]
    feed = make_feed({SYM: rows})
    eng = engine(stop_loss=5.0)
    state, deal_id = open_deal(eng, feed)
    assert state.strategy["symbols"][SYM]["sl_price"] == 95.0
    cr = eng.apply_commands(state, [{"cmd": "set_exits", "deal_id": deal_id, "take_profit": 3, "stop_loss": 0}], feed)
    assert not [o for o in cr.state.open_orders if o["tag"] == "stop_loss"]
    assert cr.decisions[0].reason == "take profit 101 -> 103 (3% from avg 100); stop loss 95 -> none"
    res = eng.run(feed, state=cr.state)  # candle 3: SO1 fills at 99 -> TP from the new average
    amount = 1.0 + 0.1010101
    avg = (100.0 + 99.0 * 0.1010101) / amount
    tp = [o for o in res.orders if o.tag == "take_profit" and o.status == "open"]
    assert [o.price for o in tp] == [round(avg * 1.03, 2)] == [102.91]
    assert res.open_deals[0]["stop_loss_price"] is None


def test_close_command_closes_at_the_next_open_with_a_decision():
    feed = make_feed({SYM: ROWS})
    eng = engine()
    state, deal_id = open_deal(eng, feed)
    cr = eng.apply_commands(state, [{"cmd": "close", "deal_id": deal_id, "symbol": SYM}], feed)
    (od,) = cr.orders
    assert (od.tag, od.type, od.side, od.amount, od.reduce_only) == ("manual_close", "market", "sell", 1.0, True)
    (d,) = cr.decisions
    assert (d.rule, d.outcome, d.time) == ("manual_close", "exit", T0 + 2 * H)
    assert d.reason == f"close BTC/USDT deal {deal_id} at market (manual): sell 1 at the next open"
    again = eng.apply_commands(cr.state, [{"cmd": "close", "deal_id": deal_id}], feed)
    assert again.orders == [] and again.decisions[0].outcome == "info"
    # a strategy command on a deal being closed is refused
    late = eng.apply_commands(cr.state, [{"cmd": "add_funds", "deal_id": deal_id, "quote": 10}], feed)
    assert late.orders == [] and late.state.to_json() == cr.state.to_json()
    assert late.decisions[0].reason == f"add_funds of deal {deal_id} refused: the deal is being closed at market"
    res = eng.run(feed, state=cr.state)
    (t,) = res.trades
    assert (t.exit_reason, t.exit_price) == ("manual_close", 99.5)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ({"cmd": "add_funds", "quote": 0}, "the amount to add must be > 0, got 0"),
        ({"cmd": "add_funds", "quote": "x"}, "the amount to add must be a number (quote currency)"),
        (
            {"cmd": "add_funds", "quote": 20_000},
            "the order was rejected: insufficient_funds: needs 20000.00, free 9890.00",
        ),
        ({"cmd": "set_exits"}, "give a take profit or a stop loss (percent from the average entry)"),
        (
            {"cmd": "set_exits", "take_profit": -1},
            "take profit must be > 0% and <= 1000% from the average entry, got -1%",
        ),
        (
            {"cmd": "set_exits", "stop_loss": 100},
            "stop loss must be >= 0% (0 = none) and < 100% from the average entry, got 100%",
        ),
        ({"cmd": "warp"}, "Smart DCA does not know the command 'warp'"),
    ],
)
def test_bad_commands_are_refused_with_a_reason_and_change_nothing(command, reason):
    feed = make_feed({SYM: ROWS})
    eng = engine()
    state, deal_id = open_deal(eng, feed)
    cr = eng.apply_commands(state, [dict(command, deal_id=deal_id)], feed)
    assert cr.orders == [] and cr.state.to_json() == state.to_json()
    (d,) = cr.decisions
    assert (d.outcome, d.time, d.symbol) == ("block", T0 + 2 * H, SYM)
    assert d.reason == f"{command['cmd']} of deal {deal_id} refused: {reason}"


def test_commands_on_unknown_deals_or_before_the_first_candle_are_refused():
    feed = make_feed({SYM: ROWS})
    eng = engine()
    state, _ = open_deal(eng, feed)
    cr = eng.apply_commands(state, [{"cmd": "set_exits", "deal_id": "b1-d9", "take_profit": 2}], feed)
    assert cr.orders == [] and cr.decisions[0].reason == (
        "set_exits of deal b1-d9 refused: the deal is not open (closed meanwhile or unknown)"
    )
    cr = eng.apply_commands(state, [{"cmd": "close", "deal_id": "b1-d9"}], feed)
    assert cr.decisions[0].reason == "close refused: deal b1-d9 is not open (closed meanwhile or unknown)"
    fresh = eng.apply_commands(None, [{"cmd": "add_funds", "deal_id": "b1-d1", "quote": 5}], feed)
    (d,) = fresh.decisions
    assert (d.outcome, d.time) == ("block", T0 + 5 * H)  # the newest candle of the feed
    assert d.reason == (
        "add_funds of deal b1-d1 refused: the bot has not processed a candle yet; try again after its first step"
    )


def test_a_strategy_without_on_command_refuses():
    feed = make_feed({SYM: ROWS})
    from strategies.engine import OrderIntent

    eng = Engine(ScriptedStrategy({(SYM, 0): [OrderIntent(SYM, "buy", amount=1, deal_id="m7-d1")]}), [SPEC])
    state = eng.run(feed.truncate(T0 + 2 * H)).state
    cr = eng.apply_commands(state, [{"cmd": "add_funds", "deal_id": "m7-d1", "quote": 5}], feed)
    assert cr.decisions[0].reason == "add_funds of deal m7-d1 refused: strategy 'scripted' does not support 'add_funds'"
