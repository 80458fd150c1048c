"""Smart DCA: hand-computed ladders, averages, take profit, trailing, stop loss, shorts."""

from __future__ import annotations

import pytest

from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.testing import T0, make_feed
from strategies.library.smart_dca import SmartDCA, so_deviations, so_prices, so_sizes, take_profit_price

H = 3_600_000
SYM = "BTC/USDT"
SPEC = MarketSpec(
    SYM, amount_tick=1e-8, price_tick=0.01, min_amount=0.0, min_cost=1.0, maker_fee_bps=0, taker_fee_bps=0
)
BASE = dict(
    base_order_size=100,
    safety_order_size=10,
    max_safety_orders=3,
    active_safety_orders=3,
    price_deviation=1.0,
    step_scale=2.0,
    volume_scale=2.0,
    take_profit=1.0,
)


def run(rows, spec=SPEC, capital=10_000.0, feed=None, symbols=None, **params):
    p = dict(BASE)
    p.update(params)
    feed = feed or make_feed({SYM: rows})
    specs = [spec] if symbols is None else [MarketSpec(s, 1e-8, 0.01, 0.0, 1.0, 0, 0) for s in symbols]
    eng = Engine(SmartDCA(p), specs, SimulatedBroker(), capital=capital)
    return eng.run(feed), eng


def test_ladder_formulas_cumulative_step_scale_and_volume_scale():
    assert so_deviations(1.0, 2.0, 3) == [1.0, 3.0, 7.0]
    assert so_prices(100.0, 1.0, 2.0, 3) == [99.0, 97.0, 93.0]
    assert so_prices(100.0, 1.0, 2.0, 3, "short") == [101.0, 103.0, 107.0]
    assert so_sizes(10.0, 2.0, 3) == [10.0, 20.0, 40.0]
    assert so_deviations(1.5, 1.2, 3) == pytest.approx([1.5, 3.3, 5.46])
    assert take_profit_price(100.0, 1.0) == 101.0 and take_profit_price(100.0, 1.0, "short") == 99.0


def test_long_deal_exact_ladder_average_and_take_profit():
    rows = [
        (100, 100.5, 99.5, 100),  # 0: close -> base order decided
        (100, 100.2, 99.8, 100),  # 1: base fills at the open, 100; ladder + TP placed on the close
        (99.9, 100, 96.5, 97.5),  # 2: SO1 (99) and SO2 (97) fill
        (97.5, 101, 97.4, 100.5),  # 3: TP (new average x 1.01) fills
        (100.5, 100.6, 100.4, 100.5),
    ]
    res, eng = run(rows)
    base, tp1, so1, so2, so3 = res.orders[:5]
    assert (base.tag, base.type, base.amount) == ("base_order", "market", 1.0)
    assert [(o.so_index, o.price, o.amount) for o in (so1, so2, so3)] == [
        (1, 99.0, 0.1010101),
        (2, 97.0, 0.20618556),
        (3, 93.0, 0.43010752),
    ]
    assert (tp1.tag, tp1.price, tp1.amount, tp1.reduce_only) == ("take_profit", 101.0, 1.0, True)
    # base, SO1, SO2, TP, then the next deal's base order at candle 4's open
    assert [f.price for f in res.fills] == [100.0, 99.0, 97.0, 100.44, 100.5]
    amount = 1.0 + 0.1010101 + 0.20618556
    cost = 100.0 + 99.0 * 0.1010101 + 97.0 * 0.20618556
    avg = cost / amount
    assert cost == pytest.approx(129.99999922, abs=1e-9) and avg == pytest.approx(99.44953399, abs=1e-8)
    tp2 = [o for o in res.orders if o.tag == "take_profit"][1]
    assert tp2.price == 100.44 == round(avg * 1.01, 2) and tp2.amount == pytest.approx(amount, abs=1e-12)
    (t,) = res.trades
    assert (t.exit_reason, t.safety_orders_filled, t.entry_price, t.exit_price) == (
        "take_profit",
        2,
        pytest.approx(avg),
        100.44,
    )
    assert t.pnl == pytest.approx(100.44 * amount - cost) and t.opened_at == T0 + H and t.closed_at == T0 + 3 * H
    so3_final = [o for o in res.orders if o.so_index == 3][0]
    assert so3_final.status == "canceled" and so3_final.cancel_reason == "deal_closed"
    # asap: the next deal's base order is decided on the close of the take-profit candle
    second = [o for o in res.orders if o.tag == "base_order"][1]
    assert second.created_at == T0 + 4 * H and second.deal_id == "m7-d2"


def test_active_safety_orders_ladder_is_refilled_as_orders_fill():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100), (99.5, 99.6, 98.8, 99), (99, 99.1, 98.9, 99)]
    res, eng = run(rows, active_safety_orders=1)
    sos = [o for o in res.orders if o.tag == "safety_order"]
    assert [(o.so_index, o.status) for o in sos] == [(1, "filled"), (2, "open")]
    info = eng.open_deals(res.state)[0]
    assert info["next_so_price"] == 97.0 and [lv["price"] for lv in info["ladder"]] == [99.0, 97.0, 93.0]
    assert [lv["status"] for lv in info["ladder"]] == ["filled", "planned", "planned"]
    assert info["take_profit_price"] == round(info["entry_price"] * 1.01, 2) and info["max_safety_orders"] == 3


def test_take_profit_of_base_order():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100), (99.9, 100, 98.5, 99), (99, 99.5, 98.9, 99)]
    res, _ = run(rows, tp_type="base")
    amount = 1.0 + 0.1010101
    cost = 100.0 + 99.0 * 0.1010101
    tp = [o for o in res.orders if o.tag == "take_profit"][-1]
    assert tp.price == round((cost + 100.0 * 0.01) / amount, 2) == 100.82


def test_trailing_take_profit_arms_at_tp_and_exits_on_retrace():
    rows = [
        (100, 100.5, 99.5, 100),
        (100, 100.2, 99.8, 100),  # base at 100, TP 101 (no limit order with trailing)
        (100, 102, 99.9, 101.5),  # armed (high 102 >= 101); 101.5 > 102 x 0.99
        (101.5, 103, 101, 101.9),  # peak 103, 101.9 <= 103 x 0.99 = 101.97 -> exit decided
        (101.8, 102, 101.5, 101.7),  # market close at the open 101.8
    ]
    res, _ = run(rows, trailing_enabled=True, trailing_deviation=1.0)
    assert not any(o.tag == "take_profit" for o in res.orders)
    (t,) = res.trades
    assert (t.exit_reason, t.exit_price, t.closed_at) == ("trailing_take_profit", 101.8, T0 + 4 * H)
    (d,) = [d for d in res.decisions if d.rule == "trailing_take_profit"]
    assert d.reason == "close 101.9 retraced 1% from high 103 after take profit 101" and d.time == T0 + 3 * H


def test_stop_loss_order_and_stop_loss_timeout():
    rows = [
        (100, 100.5, 99.5, 100),
        (100, 100.2, 99.8, 100),
        (99, 99.5, 94, 94.5),
        (94.5, 95, 93, 94),
        (94, 94.5, 93, 93.5),
        (93, 94, 92, 93),
    ]
    res, _ = run(rows, max_safety_orders=0, stop_loss=5)
    (t,) = res.trades
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 95.0)
    res, _ = run(rows, max_safety_orders=0, stop_loss=5, stop_loss_timeout=2)
    (t,) = res.trades
    # closes 94.5 and 94 are below 95 on candles 2 and 3 -> market close at candle 4's open
    assert (t.exit_reason, t.exit_price, t.closed_at) == ("stop_loss", 94.0, T0 + 4 * H)
    (d,) = [d for d in res.decisions if d.rule == "stop_loss"]
    assert d.reason == "2 closes below stop loss 95 (5% from avg 100)"


def test_short_deal_ladder_and_take_profit():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100), (100.1, 103.5, 100, 102.5), (102.5, 102.6, 99, 99.5)]
    res, _ = run(rows, direction="short")
    sos = [o for o in res.orders if o.tag == "safety_order"]
    assert [(o.side, o.price) for o in sos] == [("sell", 101.0), ("sell", 103.0), ("sell", 107.0)]
    amount = 1.0 + 0.0990099 + 0.19417475
    cost = 100.0 + 101.0 * 0.0990099 + 103.0 * 0.19417475
    avg = cost / amount
    (t,) = res.trades
    assert (t.side, t.exit_reason, t.safety_orders_filled) == ("short", "take_profit", 2)
    assert t.exit_price == round(avg * 0.99, 2) and t.pnl == pytest.approx(cost - t.exit_price * amount)


def test_cooldown_and_max_active_deals_across_symbols():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100), (100, 101.5, 99.9, 101), (101, 101.2, 100.8, 101)] + [
        (101, 101.2, 100.8, 101)
    ] * 4
    feed = make_feed({"BTC/USDT": rows, "ETH/USDT": rows})
    res, _ = run(None, feed=feed, symbols=["BTC/USDT", "ETH/USDT"], max_active_deals=1, cooldown=2)
    bases = [(o.symbol, o.created_at) for o in res.orders if o.tag == "base_order"]
    # BTC takes the only slot; its TP fills on candle 2, which frees the slot for ETH on the same
    # close (ETH comes after BTC); BTC itself waits for its 2-candle cooldown, then the slot.
    assert bases[0] == ("BTC/USDT", T0 + H)
    assert bases[1] == ("ETH/USDT", T0 + 3 * H)
    assert res.trades[0].symbol == "BTC/USDT"


def test_rsi_start_condition_and_strategy_signal():
    import numpy as np

    closes = list(100 + 10 * np.sin(np.arange(120) / 6))
    rows = [(c, c + 0.5, c - 0.5, c) for c in closes]
    res, _ = run(rows, start_condition="rsi", rsi_below=30)
    first = [o for o in res.orders if o.tag == "base_order"][0]
    import talib

    rsi = talib.RSI(np.array(closes), 14)
    i = int(np.argmax(rsi < 30))
    assert first.created_at == T0 + (i + 1) * H
    res2, _ = run(rows, start_condition="strategy:sma_cross")
    from strategies.library.sma_cross import SmaCross

    sig = SmaCross().entry_signals(make_feed({SYM: rows}).candles(SYM))
    assert [o for o in res2.orders if o.tag == "base_order"][0].created_at == T0 + (int(np.argmax(sig)) + 1) * H
