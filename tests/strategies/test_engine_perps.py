"""Perpetuals on the one Engine: margin, funding, liquidation on the mark price, buffer guard.

Real data: the bundled BTCUSDT USDT-M subset (trading/data/bundled/futures, 2024-07-22..08-18,
with the 2024-08-05 crash). Expected values come from the Binance formulas worked in the test
(strategies/engine/perps.py cites them) and from the funding file itself.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies.engine import Engine, MarketSpec
from strategies.engine.feed import Feed, load_csv
from strategies.engine.orders import OrderIntent
from strategies.engine.testing import ScriptedStrategy, make_candles

ROOT = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled" / "futures"
S = "BTC/USDT:USDT"
AUG_4 = 1722729600000  # 2024-08-04 00:00 UTC


def real_feed():
    c = load_csv(ROOT / "BTCUSDT-1h.csv.gz")
    mk = load_csv(ROOT / "BTCUSDT-1h-mark.csv.gz")
    fr = pd.read_csv(ROOT / "BTCUSDT-funding.csv.gz")
    return Feed("1h", {S: c}, mark={S: mk}, funding={S: (fr.time.to_numpy(), fr.funding_rate.to_numpy())}), c, mk, fr


def spec(**kw):
    base = dict(amount_tick=0.001, price_tick=0.1, min_amount=0.001, min_cost=100, maker_fee_bps=2, taker_fee_bps=5)
    base.update(kw)
    return MarketSpec(S, market_type="swap", **base)


def run(feed, market, script, capital=1000.0):
    return Engine(ScriptedStrategy(script), [market], capital=capital).run(feed)


def test_isolated_10x_long_is_liquidated_in_the_2024_08_05_crash_on_mark_price():
    feed, c, mk, fr = real_feed()
    i0 = int(np.searchsorted(c.time, AUG_4))
    r = run(feed, spec(leverage=10), {(S, i0): [OrderIntent(S, "buy", "market", amount=0.1, tag="base_order")]})
    (t,) = r.trades
    entry = float(c.open[i0 + 1])  # market order: next open (no slippage)
    assert entry == 60726.4
    # funding: the events at 08:00, 16:00 on Aug 4 and 00:00 on Aug 5 (held at those opens),
    # each 0.1 x mark open x rate, straight from the files
    events = fr[(fr.time > c.time[i0 + 1]) & (fr.time <= 1722816000000)]
    marks = pd.Series(mk.open, index=mk.time)
    funding = sum(0.1 * marks[tm] * rate for tm, rate in zip(events.time, events.funding_rate, strict=True))
    assert len(events) == 3 and t.funding == pytest.approx(funding, abs=1e-12)
    assert round(t.funding, 6) == 1.494459
    # isolated wallet = margin - funding paid; notional < 50,000 -> tier 1 (0.4 %, cum 0):
    # LP = (WB + 0 - 0.1 x 60,726.4) / (0.1 x 0.004 - 0.1)
    wb = 0.1 * entry / 10 - funding
    lp = (wb - 0.1 * entry) / (0.1 * 0.004 - 0.1)
    assert round(lp, 2) == 54888.26
    assert (t.exit_reason, t.side, t.leverage, t.margin) == ("liquidation", "long", 10.0, pytest.approx(607.264))
    assert t.exit_price == 54888.3  # rounded to the 0.1 tick
    assert t.closed_at == 1722819600000  # 2024-08-05 01:00 UTC, the crash candle
    assert t.liquidation_price == pytest.approx(lp, abs=1e-9)
    assert t.min_liquidation_distance_pct == 0.0
    # the whole isolated margin is lost, plus the opening taker fee (5 bps of 6,072.64)
    assert t.pnl == pytest.approx(-(607.264 + 6072.64 * 5e-4), abs=1e-9)
    assert r.equity[-1] == pytest.approx(1000 + t.pnl, abs=1e-9)
    (d,) = [d for d in r.decisions if d.rule == "liquidation"]
    assert (d.outcome, d.reason) == ("exit", "mark low 52386.111 crossed the liquidation price 54888.3")


def test_liquidation_triggers_on_mark_not_last_price():
    last = make_candles([(100, 100, 100, 100), (100, 101, 95, 96), (96, 97, 95.5, 96), (96, 97, 95.5, 96)])
    # 0.1 x 100 at 20x isolated: WB 0.5; LP = (0.5 - 10) / (0.1 x 0.004 - 0.1) = 95.3815...
    mark_below = make_candles([(100, 100, 100, 100), (100, 101, 95, 96), (96, 97, 95.3, 96), (96, 97, 96, 96)])
    mark_above = make_candles([(100, 100, 100, 100), (100, 101, 95.5, 96), (96, 97, 95.5, 96), (96, 97, 96, 96)])
    script = {(S, 0): [OrderIntent(S, "buy", "market", amount=10.0)]}
    m = spec(leverage=20, price_tick=0.0001, min_cost=5)
    last_low = make_candles([(100, 100, 100, 100), (100, 101, 95, 96), (96, 97, 95.0, 96), (96, 97, 96, 96)])
    liq = run(Feed("1h", {S: last}, mark={S: mark_below}), m, script)
    assert [(t.exit_reason, t.exit_price, t.closed_at - last.time[0]) for t in liq.trades] == [
        ("liquidation", 95.3815, 2 * 3_600_000)
    ]
    held = run(Feed("1h", {S: last_low}, mark={S: mark_above}), m, script)
    assert held.trades == [] and held.state.portfolio["positions"][S]["amount"] == 10.0
    # no mark candles: last price, with the reason recorded once
    fallback = run(Feed("1h", {S: last_low}), m, script)
    assert [t.exit_reason for t in fallback.trades] == ["liquidation"]
    assert [(d.rule, d.reason) for d in fallback.decisions if d.rule == "mark_price"] == [
        ("mark_price", "no mark-price candle: liquidation checked on last price")
    ]


def test_short_receives_positive_funding_into_equity():
    feed, c, mk, fr = real_feed()
    m = spec(leverage=3)
    r = run(feed, m, {(S, 0): [OrderIntent(S, "sell", "market", amount=0.05)]}, capital=2000)
    pf = r.state.portfolio
    deal = next(iter(pf["deals"].values()))
    marks = pd.Series(mk.open, index=mk.time)
    events = fr[fr.time > c.time[1]]  # held from the 01:00 open of day 1 to the end
    expected = sum(-0.05 * marks[tm] * rate for tm, rate in zip(events.time, events.funding_rate, strict=True))
    assert len(events) == 83 and deal["funding"] == pytest.approx(expected, abs=1e-9)
    assert round(deal["funding"], 4) == round(expected, 4) < 0  # received: rates summed positive
    entry = float(c.open[1])
    # equity = cash + amount x close: the short's P&L, minus the fee, plus the funding received
    fee = 0.05 * entry * 5e-4
    assert r.equity[-1] == pytest.approx(2000 - fee - deal["funding"] + 0.05 * (entry - c.close[-1]), abs=1e-9)


def test_margin_collateral_and_leverage_tier_cap():
    feed, c, _, _ = real_feed()
    r = run(feed, spec(leverage=10), {(S, 0): [OrderIntent(S, "buy", "market", amount=0.1)]}, capital=700)
    assert [t.exit_reason for t in r.trades] == ["liquidation"]  # 10x long from 68k: gone by Aug 5
    # 125x is allowed only below 50,000 notional (bundled BTC tiers)
    big = run(feed, spec(leverage=125), {(S, 0): [OrderIntent(S, "buy", "market", amount=1.0)]}, capital=10_000)
    (o,) = big.orders
    assert (o.status, o.reject_reason) == ("rejected", "leverage_tier: leverage 125 > 100 allowed at notional 68163.70")
    with pytest.raises(ValueError, match="out of range 1..125"):
        spec(leverage=150)


def test_liquidation_buffer_guard_refuses_the_order_with_a_reason():
    feed, c, _, _ = real_feed()
    r = run(feed, spec(leverage=10, liquidation_buffer_pct=12), {(S, 5): [OrderIntent(S, "buy", "market", amount=0.1)]})
    (o,) = r.orders
    assert o.status == "rejected" and o.reject_reason.startswith("liquidation_buffer: liquidation price ")
    (d,) = r.decisions
    assert (d.rule, d.outcome) == ("liquidation_buffer", "block") and d.reason.endswith("< buffer 12%")
    assert r.trades == [] and r.fills == []
    ok = run(
        feed,
        spec(leverage=5, liquidation_buffer_pct=12),
        {(S, 5): [OrderIntent(S, "buy", "market", amount=0.1)]},
        capital=2000,
    )
    assert [(o.status, o.tag) for o in ok.orders] == [("filled", ""), ("filled", "liquidation")]  # the crash
