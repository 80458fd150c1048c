"""Outside signals through the engine (issue 11 §4: the scanner, TradingView webhooks):
``start_deal`` opens a deal through the strategy's own entry path (Smart DCA's base order, a
signal strategy's entry with an exit plan) and ``close_symbol`` closes a symbol's deal through the
engine's close path; every refusal is a decision with a reason and places nothing.

Hand-made candles, exact prices and amounts; a command acts at the close of the last processed
candle and its orders fill from the next candle on."""

from __future__ import annotations

import pytest

from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.testing import T0, make_feed
from strategies.library.smart_dca import SmartDCA
from strategies.registry import create_strategy
from strategies.risk import risk_manager_from_config

H = 3_600_000
BTC, ETH = "BTC/USDT", "ETH/USDT"


def spec(sym):
    return MarketSpec(
        sym, amount_tick=1e-8, price_tick=0.01, min_amount=0.0, min_cost=1.0, maker_fee_bps=0, taker_fee_bps=0
    )


DCA = dict(
    base_order_size=100,
    safety_order_size=10,
    max_safety_orders=1,
    price_deviation=1.0,
    take_profit=1.0,
    start_condition="rsi",  # never true on 6 candles (no RSI yet): only commands start deals
)
FLAT = [(100, 100.5, 99.5, 100)] * 3 + [(99.5, 99.8, 99.2, 99.5)] * 3
START = {"cmd": "start_deal", "symbol": BTC, "side": "long", "source": "tradingview", "score": 0.72}
START.update(reason="RSI bounce", signal_time=T0 + 2 * H)


def engine(strategy, syms=(BTC,), risk=None):
    return Engine(strategy, [spec(s) for s in syms], SimulatedBroker(), risk=risk, capital=10_000.0, order_prefix="b1")


def after(eng, feed, n=3):
    """Run candles 0..n-1: the state the commands apply to (last_time = candle n-1)."""
    return eng.run(feed.truncate(T0 + (n - 1) * H)).state


def test_smart_dca_start_deal_places_its_base_order_and_the_deal_runs():
    feed = make_feed({BTC: FLAT})
    eng = engine(SmartDCA(DCA))
    state = after(eng, feed)
    assert state.portfolio["deals"] == {} and state.open_orders == []
    cr = eng.apply_commands(state, [START], feed)
    (od,) = cr.orders
    assert (od.tag, od.type, od.side, od.amount, od.deal_id, od.created_at) == (
        "base_order",
        "market",
        "buy",
        1.0,
        "b1-d1",
        T0 + 3 * H,
    )
    (d,) = cr.decisions
    assert (d.time, d.rule, d.outcome, d.symbol) == (T0 + 2 * H, "start_deal", "info", BTC)
    assert d.reason == (
        "start long deal b1-d1 on a tradingview signal (score 0.72): base order market buy 1 BTC/USDT "
        "at the next open (last close 100); RSI bounce"
    )
    assert d.payload == {"deal_id": "b1-d1", "client_order_id": od.client_order_id, "signal_time": T0 + 2 * H}
    res = eng.run(feed, state=cr.state)
    base = [f for f in res.fills if f.tag == "base_order"]
    assert [(f.price, f.amount, f.time) for f in base] == [(99.5, 1.0, T0 + 3 * H)]
    tp = [o for o in res.orders if o.tag == "take_profit"]
    assert [(o.price, o.amount, o.status) for o in tp] == [(100.5, 1.0, "open")]  # 99.5 × 1.01
    assert [x["deal_id"] for x in res.open_deals] == ["b1-d1"]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (
            {"symbol": "XRP/USDT"},
            "start_deal long XRP/USDT (tradingview) refused: XRP/USDT is not one of the bot's markets",
        ),
        ({"side": "up"}, "start_deal up BTC/USDT (tradingview) refused: side must be long or short, got 'up'"),
        (
            {"score": 1.5},
            "start_deal long BTC/USDT (tradingview) refused: score must be null or a number in [0, 1], got 1.5",
        ),
        (
            {"side": "short"},
            "start_deal short BTC/USDT (tradingview) refused: this Smart DCA bot trades long deals only (direction long)",
        ),
    ],
)
def test_start_deal_refusals_place_nothing(command, reason):
    feed = make_feed({BTC: FLAT})
    eng = engine(SmartDCA(DCA))
    state = after(eng, feed)
    cr = eng.apply_commands(state, [{**START, **command}], feed)
    assert cr.orders == [] and cr.state.to_json() == state.to_json()
    (d,) = cr.decisions
    assert (d.rule, d.outcome, d.time, d.reason) == ("start_deal", "block", T0 + 2 * H, reason)


def test_start_deal_refused_when_a_deal_is_open_or_max_deals_are_active():
    feed = make_feed({BTC: FLAT, ETH: FLAT})
    eng = engine(SmartDCA({**DCA, "max_active_deals": 1}), syms=(BTC, ETH))
    state = after(eng, feed)
    cr = eng.apply_commands(state, [START, START, {**START, "symbol": ETH}], feed)
    assert [o.symbol for o in cr.orders] == [BTC]  # the base order is placed, not filled yet
    assert [d.reason for d in cr.decisions[1:]] == [
        "start_deal long BTC/USDT (tradingview) refused: a deal is already open on BTC/USDT (b1-d1, opening)",
        "start_deal long ETH/USDT (tradingview) refused: 1 deals active (max active deals 1)",
    ]
    res = eng.run(feed.truncate(T0 + 3 * H), state=cr.state)  # the base order fills: a portfolio deal
    again = eng.apply_commands(res.state, [START], feed)
    assert again.orders == [] and again.decisions[0].reason == (
        "start_deal long BTC/USDT (tradingview) refused: a deal is already open on BTC/USDT (b1-d1)"
    )


def test_start_deal_refused_by_the_risk_rules_keeps_their_reason():
    feed = make_feed({BTC: FLAT})
    risk = risk_manager_from_config({"max_positions": 0}, markets=[spec(BTC)])
    eng = engine(SmartDCA(DCA), risk=risk)
    state = after(eng, feed)
    cr = eng.apply_commands(state, [START], feed)
    assert cr.orders == [] and cr.state.to_json() == state.to_json()
    blocked, refusal = cr.decisions
    assert (blocked.rule, blocked.outcome) == ("max_positions", "block")
    assert refusal.reason == (
        "start_deal long BTC/USDT (tradingview) refused: the portfolio risk rules refused the new deal"
    )


def test_start_deal_before_the_first_candle_is_refused():
    feed = make_feed({BTC: FLAT})
    cr = engine(SmartDCA(DCA)).apply_commands(None, [START], feed)
    (d,) = cr.decisions
    assert cr.orders == [] and (d.outcome, d.time) == ("block", T0 + 5 * H)
    assert d.reason.startswith("start_deal long BTC/USDT (tradingview) refused: the bot has not processed a candle yet")


def test_signal_strategy_start_deal_with_its_rule_exits():
    # swing has no signal on flat candles: TP +15 %, SL −5 % from the close, trailing stop 7 %
    feed = make_feed({BTC: FLAT})
    eng = engine(create_strategy("swing", {}))
    state = after(eng, feed)
    cr = eng.apply_commands(state, [{**START, "score": None, "source": "scan"}], feed)
    (od,) = cr.orders
    assert (od.tag, od.type, od.side, od.amount) == ("entry", "market", "buy", 1.0)
    entry, started = cr.decisions
    assert entry.reason == "long entry (market buy, 100 quote, score 0.00): scan signal (RSI bounce); TP 115, SL 95"
    assert started.reason == "start long deal b1-d1 on a scan signal: exits from the strategy rules"
    res = eng.run(feed, state=cr.state)
    exits = sorted((o.tag, o.price or o.stop_price, o.amount) for o in res.orders if o.reduce_only)
    assert exits == [("stop_loss", 95.0, 1.0), ("take_profit", 115.0, 1.0)]
    assert res.state.strategy["symbols"][BTC]["trailing_pct"] == 7.0


@pytest.mark.parametrize(
    ("name", "side", "reason"),
    [
        ("swing", "short", "swing trades long only, not short"),
        ("channel", "long", "no exit plan: channel has no long signal on this candle and no rule-based stop for it"),
        (
            "fork_score",
            "long",
            "no exit plan: fork_score has no long signal on this candle and no rule-based stop for it",
        ),
    ],
)
def test_signal_strategy_start_deal_refusals(name, side, reason):
    feed = make_feed({BTC: FLAT})  # 3 candles: no ATR yet for fork_score
    eng = engine(create_strategy(name, {}))
    state = after(eng, feed)
    cr = eng.apply_commands(state, [{**START, "side": side}], feed)
    assert cr.orders == [] and cr.state.to_json() == state.to_json()
    assert [d.reason for d in cr.decisions] == [f"start_deal {side} BTC/USDT (tradingview) refused: {reason}"]


def test_close_symbol_closes_through_the_engine_close_path():
    feed = make_feed({BTC: FLAT})
    eng = engine(SmartDCA(DCA))
    state = eng.apply_commands(after(eng, feed), [START], feed).state
    state = eng.run(feed.truncate(T0 + 3 * H), state=state).state  # base filled at 99.5
    close = {"cmd": "close_symbol", "symbol": BTC, "source": "tradingview"}
    cr = eng.apply_commands(state, [close], feed)
    (od,) = cr.orders
    assert (od.tag, od.type, od.side, od.amount, od.reduce_only, od.deal_id) == (
        "manual_close",
        "market",
        "sell",
        1.0,
        True,
        "b1-d1",
    )
    (d,) = cr.decisions
    assert (d.rule, d.outcome, d.time) == ("close_symbol", "exit", T0 + 3 * H)
    assert d.reason == "close BTC/USDT deal b1-d1 at market (tradingview): sell 1 at the next open"
    (t,) = eng.run(feed, state=cr.state).trades
    assert (t.exit_reason, t.exit_price, t.closed_at) == ("manual_close", 99.5, T0 + 4 * H)
    # nothing open: refused with a reason, nothing placed
    none = eng.apply_commands(after(eng, feed), [close], feed)
    assert none.orders == [] and [d.reason for d in none.decisions] == [
        "close_symbol BTC/USDT (tradingview) refused: no deal is open on BTC/USDT"
    ]
