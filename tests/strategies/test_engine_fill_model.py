"""Fill model, fees, precision, rejections and state of the engine (hand-made candles)."""

from __future__ import annotations

import json

import pytest

from strategies.engine import Engine, EngineState, MarketSpec, OrderIntent, SimulatedBroker
from strategies.engine.feed import Candles, Feed
from strategies.engine.testing import T0, ScriptedStrategy, make_candles, make_feed

H = 3_600_000
SYM = "BTC/USDT"
SPEC = MarketSpec(
    SYM, amount_tick=0.001, price_tick=0.01, min_amount=0.001, min_cost=5.0, maker_fee_bps=10, taker_fee_bps=10
)


def run(rows, script, slippage=0.0, spec=SPEC, capital=10_000.0, feed=None, **kw):
    feed = feed or make_feed({SYM: rows})
    strat = ScriptedStrategy(script)
    eng = Engine(strat, [spec], SimulatedBroker(slippage_bps=slippage), capital=capital, **kw)
    return eng.run(feed), strat


def buy(type_="market", **kw):
    return OrderIntent(SYM, "buy", type_, **kw)


def sell(type_="market", **kw):
    return OrderIntent(SYM, "sell", type_, **kw)


FLAT = (100, 101, 99, 100)


def test_market_order_fills_at_next_open_plus_slippage_with_taker_fee():
    res, _ = run([FLAT, (102, 103, 101, 102.5)], {(SYM, 0): [buy(amount=1)]}, slippage=10)
    (f,) = res.fills
    assert f.price == 102.1  # 102 x 1.001 = 102.102 -> rounded to the 0.01 tick
    assert f.amount == 1.0 and f.liquidity == "taker" and f.time == T0 + H
    assert f.fee == pytest.approx(0.1021, abs=1e-12)
    assert res.state.portfolio["cash"] == 10_000 - 102.1 - f.fee
    (o,) = res.orders
    assert o.status == "filled" and o.created_at == T0 + H and o.average == 102.1


def test_limit_fills_at_its_price_when_the_range_reaches_it():
    res, _ = run([FLAT, (100.5, 101, 99, 100)], {(SYM, 0): [buy("limit", amount=1, price=99.5)]}, slippage=50)
    (f,) = res.fills
    assert (f.price, f.liquidity, f.fee) == (99.5, "maker", pytest.approx(0.0995))


def test_limit_gapped_through_fills_at_the_open():
    res, _ = run([FLAT, (98, 99, 97, 98.5)], {(SYM, 0): [buy("limit", amount=1, price=99.5)]})
    assert res.fills[0].price == 98.0


def test_limit_not_reached_stays_open_and_decision_candle_range_is_ignored():
    # candle 0's own low (90) is below the limit, but the order is placed on its close
    res, _ = run([(100, 101, 90, 100), (100.5, 101, 99.6, 100)], {(SYM, 0): [buy("limit", amount=1, price=99.5)]})
    assert res.fills == [] and res.orders[0].status == "open"
    assert res.state.open_orders[0]["client_order_id"] == "m7-1"


def test_stop_triggers_at_stop_and_gap_fills_at_open_with_slippage():
    script = {
        (SYM, 0): [buy(amount=1)],
        (SYM, 1): [sell("stop_market", amount=1, stop_price=95, reduce_only=True, tag="stop_loss")],
    }
    res, _ = run([FLAT, FLAT, (99, 99.5, 94, 96)], script)
    assert res.fills[1].price == 95.0 and res.fills[1].liquidity == "taker"
    res, _ = run([FLAT, FLAT, (93, 94, 92, 93.5)], script)
    assert res.fills[1].price == 93.0
    res, _ = run([FLAT, FLAT, (93, 94, 92, 93.5)], script, slippage=20)
    assert res.fills[1].price == 92.81  # 93 x 0.998 = 92.814
    assert res.trades[0].exit_reason == "stop_loss"


TP_SL = {
    (SYM, 0): [buy(amount=1, deal_id="d")],
    (SYM, 1): [
        sell("limit", amount=1, price=105, reduce_only=True, tag="take_profit", deal_id="d"),
        sell("stop_market", amount=1, stop_price=95, reduce_only=True, tag="stop_loss", deal_id="d"),
    ],
}


def test_take_profit_and_stop_in_one_candle_the_stop_wins():
    res, _ = run([FLAT, FLAT, (100, 106, 94, 100)], TP_SL)
    (t,) = res.trades
    assert t.exit_reason == "stop_loss" and t.exit_price == 95.0
    tp = [o for o in res.orders if o.tag == "take_profit"][0]
    assert tp.status == "canceled" and tp.cancel_reason == "deal_closed"


def test_lower_timeframe_resolves_the_order_of_events():
    hourly = make_candles([FLAT, FLAT, (100, 106, 94, 100)])
    # inside candle 2: up to 106 first (TP fills), then down to 94
    five = [(100, 101, 99.5, 100.5), (100.5, 106, 100.4, 105.5)] + [(105, 105, 94, 95)] + [(95, 96, 94.5, 95)] * 9
    lower = make_candles(five, 300_000, T0 + 2 * H)
    feed = Feed("1h", {SYM: hourly}, {SYM: lower}, "5m")
    res, _ = run(None, TP_SL, feed=feed)
    (t,) = res.trades
    assert t.exit_reason == "take_profit" and t.exit_price == 105.0
    assert res.fills[-1].time == T0 + 2 * H + 300_000  # the 5m candle that reached it
    sl = [o for o in res.orders if o.tag == "stop_loss"][0]
    assert sl.status == "canceled"


def test_short_deal_pnl_and_fees():
    script = {
        (SYM, 0): [sell(amount=1, deal_id="s1")],
        (SYM, 1): [buy("limit", amount=1, price=95, reduce_only=True, tag="take_profit", deal_id="s1")],
    }
    res, _ = run([FLAT, FLAT, (99, 99.5, 94, 96)], script)
    (t,) = res.trades
    assert (t.side, t.entry_price, t.exit_price, t.amount) == ("short", 100.0, 95.0, 1.0)
    assert t.fees == pytest.approx(0.1 + 0.095)
    assert t.pnl == pytest.approx(5 - 0.195) and t.pnl_pct == pytest.approx(4.805)
    assert res.state.portfolio["cash"] == pytest.approx(10_000 + 4.805)


def test_precision_truncates_amounts_and_rounds_prices_with_separate_maker_taker_fees():
    spec = MarketSpec(SYM, amount_tick=0.001, price_tick=0.01, min_cost=1, maker_fee_bps=2, taker_fee_bps=7)
    script = {
        (SYM, 0): [buy("limit", quote_amount=100, price=3.7049)],
        (SYM, 1): [sell("limit", amount=1, price=1_000)],
    }
    res, _ = run([(3.8, 3.9, 3.75, 3.8), (3.75, 3.8, 3.6, 3.7)], script, spec=spec)
    o = res.orders[0]
    assert o.price == 3.7 and o.amount == 27.027  # 100 / 3.7 = 27.027027 -> truncated
    assert res.fills[0].fee == pytest.approx(3.7 * 27.027 * 2 / 1e4)
    assert res.orders[1].status == "rejected" and res.orders[1].reject_reason.startswith("position_conflict")
    assert spec.amount_str(27.0279) == "27.027" and spec.price_str(3.705) == "3.71"


def test_min_amount_min_cost_and_funds_rejections_carry_the_reason():
    spec = MarketSpec(SYM, amount_tick=0.001, price_tick=0.01, min_amount=0.01, min_cost=5.0)
    script = {(SYM, 0): [buy(amount=0.005), buy(amount=0.04), buy(amount=1)]}
    res, _ = run([FLAT, FLAT], script, spec=spec, capital=50)
    r = [o.reject_reason for o in res.orders]
    assert r == [
        "min_amount: amount 0.005 < minimum 0.01",
        "min_cost: cost 4 < minimum 5",
        "insufficient_funds: needs 100.10, free 50.00",
    ]
    assert all(o.status == "rejected" for o in res.orders) and res.fills == []
    assert res.state.portfolio["cash"] == 50


def test_reduce_only_without_position_is_rejected():
    res, _ = run([FLAT, FLAT], {(SYM, 0): [sell(amount=1, reduce_only=True)]})
    assert res.orders[0].reject_reason == "reduce_only: no position to reduce"


def test_ids_are_deterministic_with_prefix_and_state_round_trips_json():
    script = {(SYM, 0): [buy(amount=1)], (SYM, 1): [sell("limit", amount=1, price=150, reduce_only=True)]}
    feed = make_feed({SYM: [FLAT, FLAT, FLAT]})
    eng = Engine(ScriptedStrategy(script), [SPEC], capital=1000, order_prefix="bot7")
    res = eng.run(feed)
    assert [o.client_order_id for o in res.orders] == ["bot7-1", "bot7-2"]
    assert res.fills[0].deal_id == "bot7-d1"
    s = res.state.to_json()
    assert EngineState.from_json(s).to_json() == s
    assert res.state.last_time == T0 + 2 * H
    # running again from the saved state with no new candle changes nothing and places nothing
    again = eng.run(feed, state=EngineState.from_json(s))
    assert again.orders == [] and again.fills == [] and again.state.to_json() == s
    deals = eng.open_deals(res.state)
    assert deals[0]["deal_id"] == "bot7-d1" and deals[0]["amount"] == 1.0 and deals[0]["orders"][0]["price"] == 150


def test_equity_curve_one_point_per_candle_close_marked_to_market():
    res, _ = run([FLAT, (100, 101, 99, 104), (104, 110, 103, 108)], {(SYM, 0): [buy(amount=1)]})
    assert list(res.equity_time) == [T0 + H, T0 + 2 * H, T0 + 3 * H]
    cash = 10_000 - 100 - 0.1
    assert list(res.equity) == [10_000, cash + 104, cash + 108]
    assert json.loads(json.dumps(res.to_dict()))["equity"][2] == {"time": T0 + 3 * H, "equity": cash + 108}


def test_multi_symbol_shares_one_portfolio_and_aligns_on_time():
    eth = "ETH/USDT"
    feed = Feed(
        "1h",
        {SYM: make_candles([FLAT, FLAT, FLAT]), eth: make_candles([(10, 11, 9, 10), (10, 11, 9, 12)], t0=T0 + H)},
    )
    spec_e = MarketSpec(eth, amount_tick=0.001, price_tick=0.01, min_cost=1)
    strat = ScriptedStrategy({(SYM, 0): [buy(amount=1)], (eth, 0): [OrderIntent(eth, "buy", "market", amount=2)]})
    res = Engine(strat, [SPEC, spec_e], capital=1000).run(feed)
    assert [(f.symbol, f.time) for f in res.fills] == [(SYM, T0 + H), (eth, T0 + 2 * H)]
    cash = 1000 - 100.1 - 20.02
    assert res.equity[-1] == pytest.approx(cash + 100 + 2 * 12)


def test_market_spec_from_ccxt_market_dict():
    m = {
        "symbol": "BTC/USDT",
        "precision": {"amount": 1e-05, "price": 0.01},
        "limits": {"amount": {"min": 1e-05, "max": 9000}, "cost": {"min": 5.0}},
        "maker": 0.001,
        "taker": 0.001,
    }
    spec = MarketSpec.from_ccxt(m)
    assert spec == MarketSpec("BTC/USDT", 1e-05, 0.01, 1e-05, 5.0, 10.0, 10.0)
    assert (
        MarketSpec.from_ccxt({"symbol": "X/USDT", "precision": {"amount": 3, "price": 2}}, precision_mode=2).amount_tick
        == 0.001
    )
    assert MarketSpec.binance_like("BTC/USDT", 42_283.58).amount_tick == 1e-05
    assert MarketSpec.from_dict(spec.to_dict()) == spec


def test_fast_rounding_equals_ccxt_helpers():
    import random

    rnd = random.Random(7)
    for tick_a, tick_p in ((1e-5, 0.01), (1.0, 1e-7), (0.001, 0.0001), (0.1, 0.5)):
        spec = MarketSpec("X/USDT", amount_tick=tick_a, price_tick=tick_p)
        for _ in range(5000):
            v = rnd.choice(
                [
                    rnd.uniform(0, 1e5),
                    round(rnd.uniform(0, 100), 3),
                    rnd.randint(0, 10**6) * tick_a,
                    rnd.randint(0, 10**5) * 0.005,
                ]
            )
            assert spec.round_price(v) == spec.price_to_precision(v)
            assert spec.trunc_amount(v) == spec.amount_to_precision(v)


def test_feed_load_csv_and_causal_view(tmp_path):
    p = tmp_path / "X.csv"
    p.write_text("open_time,open,high,low,close,volume\n0,1.5,2,1,1.75,10\n3600000,1.75,1.8,1.7,0.00000965,3\n")
    from strategies.engine.feed import load_csv

    c = load_csv(p)
    assert c.close[1] == 0.00000965 and c.time.dtype.name == "int64"
    feed = Feed("1h", {"X/USDT": c})
    v = feed.view(now_ms=0)
    assert list(v.closes("X/USDT", 10**12, 5)) == [1.75]  # clamped at now: no look-ahead
    assert v.timeframe_ms() == H
    with pytest.raises(KeyError, match="not in feed"):
        feed.candles("Y/USDT")
    assert isinstance(c[0:1], Candles)


def test_close_deals_places_reduce_only_market_orders_that_close_at_the_next_open():
    rows = [FLAT, FLAT, (100, 102, 99.5, 101), (103, 104, 102, 103.5), (104, 105, 103, 104)]
    feed = make_feed({SYM: rows})
    script = {
        (SYM, 0): [buy(amount=2, deal_id="m7-d1")],
        (SYM, 1): [sell("limit", amount=2, price=110, reduce_only=True, deal_id="m7-d1")],  # a take profit
    }
    eng = Engine(ScriptedStrategy(script), [SPEC], SimulatedBroker(), capital=10_000.0)
    first = eng.run(feed.truncate(T0 + 2 * H))  # candles 0..2: bought at 100 (open of candle 1)
    assert first.state.portfolio["positions"][SYM]["amount"] == 2.0
    (deal_id,) = first.state.portfolio["deals"]
    assert deal_id == "m7-d1"

    state, placed = eng.close_deals(first.state, H)
    (od,) = placed
    assert (od.side, od.type, od.amount, od.reduce_only) == ("sell", "market", 2.0, True)
    assert (od.tag, od.deal_id, od.status) == ("manual_close", "m7-d1", "open")
    assert od.client_order_id == f"m7-{first.state.order_seq + 1}" and od.created_at == T0 + 3 * H
    assert first.state.open_orders[-1]["tag"] != "manual_close"  # the given state is not modified
    again, more = eng.close_deals(state, H)  # asking twice places nothing more
    assert more == [] and again.to_json() == state.to_json()
    assert eng.close_deals(state, H, ["no-such-deal"])[1] == []

    second = eng.run(feed, state=state)
    (trade,) = second.trades
    assert (trade.exit_reason, trade.exit_price, trade.closed_at) == ("manual_close", 103.0, T0 + 3 * H)
    assert trade.pnl == pytest.approx(2 * (103 - 100) - 0.2 - 0.206)
    by_tag = {o.tag: o for o in second.orders}
    assert by_tag["manual_close"].status == "filled"
    tp = [o for o in second.orders if o.price == 110.0]
    assert tp and tp[0].status == "canceled" and tp[0].cancel_reason == "deal_closed"
    assert second.state.portfolio["deals"] == {} and second.state.open_orders == []


def test_a_broker_that_overrides_iter_fills_is_used_for_fills():
    class NoFills(SimulatedBroker):
        def iter_fills(self, symbol, i, orders, position_sign):
            return iter(())

    feed = make_feed({SYM: [FLAT, FLAT, FLAT]})
    eng = Engine(ScriptedStrategy({(SYM, 0): [buy(amount=1)]}), [SPEC], NoFills(), capital=1_000.0)
    res = eng.run(feed)
    assert res.fills == [] and [o.status for o in res.orders] == ["open"]
    assert NoFills().fills_at(SYM, 0, [], 0.0) is None
