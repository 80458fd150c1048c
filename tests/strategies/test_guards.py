"""Each Smart DCA guard blocking and allowing, with its reason text asserted."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine import Engine, MarketSpec, Outcome
from strategies.engine.feed import Candles, Feed
from strategies.engine.testing import T0, make_candles, make_feed
from strategies.library.confidence import DealSnapshot, RuleConfidence, RuleExitScorer
from strategies.library.guards import (
    BtcMarketFilter,
    ConfidenceDcaGuard,
    SafuExit,
    SpendGuard,
    StepRepeatGuard,
    TrailingStepGuard,
    ZombieTag,
)
from strategies.library.smart_dca import SmartDCA

H = 3_600_000
SYM = "ETH/USDT"
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


def spec(s=SYM):
    return MarketSpec(s, 1e-8, 0.01, 0.0, 1.0, 0, 0)


def run(feed, symbols=(SYM,), provider=None, scorer=None, record_allow=False, **params):
    p = dict(BASE)
    p.update(params)
    eng = Engine(
        SmartDCA(p, confidence_provider=provider, exit_scorer=scorer),
        [spec(s) for s in symbols],
        capital=10_000,
        record_allow=record_allow,
    )
    return eng.run(feed)


def test_spend_guard_reason_and_allow():
    g = SpendGuard(max_spend_pct=60, k=2)
    d = g.check(T0, SYM, 3, spend_after=41.2, basis_amount=100, drawdown_pct=10)
    assert (d.rule, d.outcome) == ("spend_guard", Outcome.BLOCK)
    assert str(d).startswith("spend_guard: deal spend 41.2% > cap 40%")
    a = g.check(T0, SYM, 3, spend_after=39.0, basis_amount=100, drawdown_pct=10)
    assert a.outcome == Outcome.ALLOW and a.reason == "deal spend 39.0% <= cap 40%"


def test_confidence_guard():
    g = ConfidenceDcaGuard(0.4)
    d = g.check(T0, SYM, 0.31, 2)
    assert d.outcome == Outcome.BLOCK and d.reason == "confidence 0.31 < threshold 0.4; safety order 2 held"
    assert g.check(T0, SYM, 0.5, 2).reason == "confidence 0.50 >= threshold 0.4"


def test_step_repeat_guard():
    g = StepRepeatGuard(3)
    assert g.check(T0, SYM, 3, 1).reason == "last safety order filled 1 candles ago < 3; safety order 3 held"
    assert g.check(T0, SYM, 2, 5, filled_indices=2).reason == "safety order 2 already filled (same step)"
    assert (
        g.check(T0, SYM, 3, 5, 2, price=97.0, filled_prices=(97.0,), price_tick=0.01).reason
        == "safety order 3 at 97 repeats the filled step at 97"
    )
    ok = g.check(T0, SYM, 3, 3, 2, price=93.0, filled_prices=(99.0, 97.0), price_tick=0.01)
    assert ok.outcome == Outcome.ALLOW and ok.reason == "safety order 3 spacing ok"


def test_trailing_step_guard_atr_and_move():
    g = TrailingStepGuard("atr", atr_mult=1.5)
    step, d = g.widen(T0, SYM, 2, 2.0, atr_pct=2.274)
    assert step == pytest.approx(3.411) and d.outcome == Outcome.RESIZE
    assert d.reason == "safety order 2 step widened 2.00% -> 3.41% (ATR 2.27% x 1.5)"
    step, d = g.widen(T0, SYM, 2, 2.0, atr_pct=1.0)
    assert step == 2.0 and d.outcome == Outcome.ALLOW
    g = TrailingStepGuard("move", move_factor=0.5)
    step, d = g.widen(T0, SYM, 2, 2.0, move_pct=3.0)
    assert step == 3.5 and d.reason == "safety order 2 step widened 2.00% -> 3.50% (move 3.00% since last fill x 0.5)"


def test_zombie_tag_reason_and_threshold():
    z = ZombieTag(48, 10, "stop_averaging")
    assert z.threshold(100.0, "long") == 90.0 and z.threshold(100.0, "short") == pytest.approx(110.0)
    d = z.tag(T0, SYM, 49, 12.5)
    assert (
        d.outcome == Outcome.TAG and d.reason == "deal 12.50% in loss, below -10% for 49h >= 48h; action stop_averaging"
    )
    assert ZombieTag(48, 10, "close").tag(T0, SYM, 49, 12.5).outcome == Outcome.EXIT


def test_safu_exit_and_rule_scorer():
    g = SafuExit(0.8)
    assert g.check(T0, SYM, 0.83, 18.2).reason == "exit score 0.83 >= 0.8 (drawdown 18.20%); deal closed"
    assert g.check(T0, SYM, 0.5, 5).outcome == Outcome.ALLOW
    c = make_candles([(100 - k * 0.5,) * 4 for k in range(300)])
    sc = RuleExitScorer(20.0)
    s = sc.series(SYM, c, "long", 200.0, 250, 251)[0]
    assert 0.5 <= s <= 1.0  # 37 % drawdown (full), down-trend, weak RSI
    f = sc.exit_factors(c, "long", 0.8)
    # the factor form gives the same answer as the score itself
    scores = sc.series(SYM, c, "long", 150.0, 0, 300)
    assert (
        np.array_equal(c.close <= 150.0 * f, scores >= 0.8 - 1e-12)
        or np.sum((c.close <= 150.0 * f) != (scores >= 0.8)) <= 1
    )
    conf = RuleConfidence("long").series(SYM, c)
    assert conf.shape == (300,) and 0 <= conf.min() and conf.max() <= 1


def _btc_feed(btc_closes, eth_rows):
    btc = make_candles([(c, c, c, c) for c in btc_closes])
    return Feed("1h", {"BTC/USDT": btc, SYM: make_candles(eth_rows)})


def test_btc_market_filter_blocks_new_deals_while_bearish_and_records_once():
    btc = [90.0, 90.0] + [80.0] * 8  # EMA(3) known from candle 2 on; close below it from then
    rows = [(50, 50.2, 49.8, 50)] * 2 + [(50, 51, 49.9, 50.5)] + [(50.5, 50.6, 50.4, 50.5)] * 7
    res = run(_btc_feed(btc, rows), btc_market_filter_enabled=True, btc_filter_ema_period=3, max_safety_orders=0)
    # deal 1 starts on candle 0 (EMA unknown = not bearish), takes profit on candle 2; the next
    # deal is blocked from then on, and the block is reported once
    assert [o.tag for o in res.orders] == ["base_order", "take_profit"] and len(res.trades) == 1
    (d,) = [d for d in res.decisions if d.rule == "btc_market_filter"]
    assert d.outcome == Outcome.BLOCK and d.time == T0 + 2 * H
    assert str(d) == "btc_market_filter: BTC bearish: BTC close 80.00 < EMA3 86.67; new deal blocked"
    res = run(
        _btc_feed([90.0] * 10, rows), btc_market_filter_enabled=True, btc_filter_ema_period=3, max_safety_orders=0
    )
    assert [o.tag for o in res.orders].count("base_order") == 2 and res.decisions == []


def test_btc_market_filter_is_direction_aware_and_allows_when_calm():
    f = BtcMarketFilter("change", change_pct=5.0)
    btc = Candles.from_arrays(T0 + np.arange(30) * H, *([np.r_[np.full(25, 100.0), np.full(5, 107.0)]] * 4))
    long_block = f.series(btc, "long", H)["block"]
    short_s = f.series(btc, "short", H)
    assert not long_block.any() and short_s["block"][25:].all() and not short_s["block"][:25].any()
    d = f.check(T0, SYM, "short", True, 107.0, np.nan, 7.0, "new deal")
    assert d.reason == "BTC bullish: BTC 24h change +7.00% > +5%; new deal blocked"
    a = f.check(T0, SYM, "long", False, 107.0, np.nan, 7.0, "new deal")
    assert a.outcome == Outcome.ALLOW and a.reason == "BTC not bearish: BTC 24h change +7.00% >= -5%"


class FixedConfidence:
    def __init__(self, values):
        self.values = values

    def confidence(self, symbol, ctx):
        return self.values[ctx.i]


def test_confidence_guard_holds_and_resumes_the_ladder_in_the_engine():
    rows = [
        (100, 100.5, 99.5, 100),
        (100, 100.2, 99.8, 100),
        (100, 100.1, 99.9, 100),
        (100, 100.1, 99.9, 100),
        (100, 100.1, 98.5, 99),
    ]
    conf = [0.9, 0.2, 0.2, 0.9, 0.9]
    res = run(
        make_feed({SYM: rows}),
        provider=FixedConfidence(conf),
        confidence_dca_guard_enabled=True,
        confidence_threshold=0.4,
    )
    ds = [(d.rule, d.outcome, d.reason, d.time) for d in res.decisions]
    assert ds == [
        ("confidence_dca_guard", "block", "confidence 0.20 < threshold 0.4; safety order 1 held", T0 + H),
        ("confidence_dca_guard", "info", "safety orders resumed", T0 + 3 * H),
    ]
    so = [o for o in res.orders if o.tag == "safety_order"]
    assert so[0].created_at == T0 + 4 * H and so[0].status == "filled"  # placed on resume, filled next candle


def test_spend_guard_stops_the_ladder_in_the_engine():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100)]
    res = run(make_feed({SYM: rows}), spend_guard_enabled=True, spend_guard_max_pct=80, spend_guard_k=2)
    # budget 100 + 10 + 20 + 40 = 170; SO2 (97): spend 130 / 170 = 76.5% > cap 80 - 2 x 2.91%
    (d,) = [d for d in res.decisions if d.rule == "spend_guard"]
    # projected average before SO2 = 110 / 1.1010101 = 99.908; drawdown at 97 = 2.91%
    assert (
        d.outcome == "block" and d.reason == "deal spend 76.5% > cap 74.18% (drawdown 2.91%); safety order 2 not placed"
    )
    assert [o.so_index for o in res.orders if o.tag == "safety_order"] == [1]


def test_zombie_tag_and_close_in_the_engine():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100)] + [(85, 85.5, 84.5, 85)] * 6
    res = run(
        make_feed({SYM: rows}),
        max_safety_orders=0,
        zombie_tag_enabled=True,
        zombie_hours=3,
        zombie_drawdown_pct=10,
        zombie_action="close",
    )
    (t,) = res.trades
    assert t.exit_reason == "zombie" and t.tags == ["zombie"] and t.closed_at == T0 + 5 * H
    (d,) = [d for d in res.decisions if d.rule == "zombie_tag"]
    assert d.reason == "deal 15.00% in loss, below -10% for 3h >= 3h; action close"
    res = run(
        make_feed({SYM: rows}), max_safety_orders=0, zombie_tag_enabled=True, zombie_hours=3, zombie_drawdown_pct=20
    )
    assert res.trades == [] and not [d for d in res.decisions if d.rule == "zombie_tag"]


class FixedScorer:
    def score(self, symbol, ctx, deal: DealSnapshot):
        return 0.9 if ctx.i >= 3 else 0.1


def test_safu_exit_with_a_pluggable_scorer():
    rows = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100)] + [(97, 97.5, 96.5, 97)] * 4
    res = run(
        make_feed({SYM: rows}), max_safety_orders=0, scorer=FixedScorer(), safu_exit_enabled=True, safu_threshold=0.8
    )
    (t,) = res.trades
    assert t.exit_reason == "safu_exit" and t.closed_at == T0 + 4 * H
    (d,) = [d for d in res.decisions if d.rule == "safu_exit"]
    assert d.reason == "exit score 0.90 >= 0.8 (drawdown 3.00%); deal closed" and d.outcome == "exit"


def test_step_repeat_guard_in_the_engine_spaces_fills():
    rows = [
        (100, 100.5, 99.5, 100),
        (100, 100.2, 99.8, 100),
        (99.5, 99.6, 98.5, 99),
        (99, 99.1, 90, 92),
        (92, 92.1, 91.9, 92),
        (92, 92.1, 91.9, 92),
    ]
    res = run(make_feed({SYM: rows}), step_repeat_guard_enabled=True, step_repeat_min_candles=2)
    so = [o for o in res.orders if o.tag == "safety_order"]
    # SO1 fills on candle 2; SO2 is only placed 2 candles later (candle 4's close)
    assert [(o.so_index, o.created_at) for o in so] == [(1, T0 + 2 * H), (2, T0 + 5 * H)]
    held = [d for d in res.decisions if d.rule == "step_repeat_guard" and d.outcome == "block"]
    assert held[0].reason == "last safety order filled 0 candles ago < 2; safety order 2 held"
