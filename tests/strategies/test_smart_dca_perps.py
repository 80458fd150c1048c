"""Smart DCA long and short on a USDT-M perpetual through the one Engine (no Django).

Real data: the bundled BTCUSDT futures subset (last price, mark price, funding). A 10x isolated
ladder with a 8 % liquidation buffer: safety orders move the liquidation price (the deal's
liquidation price follows Binance's formula on the averaged entry), and the rung whose fill
would bring liquidation within the buffer is refused with a named reason. Expected prices are
recomputed here from the orders and the formula (strategies/engine/perps.py).
"""

from pathlib import Path

import pandas as pd
import pytest

from strategies.engine import Engine, MarketSpec
from strategies.engine.feed import Feed, load_csv
from strategies.registry import create_strategy

ROOT = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled" / "futures"
S = "BTC/USDT:USDT"
MMR = 0.004  # BTC tier 1 (notional < 50,000 USDT), cum 0


def feed():
    c = load_csv(ROOT / "BTCUSDT-1h.csv.gz")
    mk = load_csv(ROOT / "BTCUSDT-1h-mark.csv.gz")
    fr = pd.read_csv(ROOT / "BTCUSDT-funding.csv.gz")
    return Feed("1h", {S: c}, mark={S: mk}, funding={S: (fr.time.to_numpy(), fr.funding_rate.to_numpy())})


def run(direction, start, buffer=8.0):
    spec = MarketSpec(
        S,
        amount_tick=0.001,
        price_tick=0.1,
        min_amount=0.001,
        min_cost=100,
        maker_fee_bps=2,
        taker_fee_bps=5,
        market_type="swap",
        leverage=10,
        liquidation_buffer_pct=buffer,
    )
    params = dict(
        direction=direction,
        base_order_size=1000,
        safety_order_size=1000,
        max_safety_orders=5,
        active_safety_orders=5,
        price_deviation=1.5,
        volume_scale=1.5,
        take_profit=2,
        btc_market_filter_enabled=False,
    )
    t0 = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    return Engine(create_strategy("smart_dca", params), [spec], capital=3000).run(feed(), start_ms=t0)


def isolated_lp(side, amount, entry, funding=0.0, lev=10):
    """Binance isolated one-way LP (tier 1): (WB - side x a x e) / (a x MMR - side x a)."""
    wb = amount * entry / lev - funding
    return (wb - side * amount * entry) / (amount * MMR - side * amount)


def test_long_ladder_is_refused_at_the_rung_that_passes_the_buffer():
    r = run("long", "2024-07-29")
    d1 = [o for o in r.orders if o.deal_id == r.trades[0].deal_id]
    base = d1[0]
    assert (base.tag, base.status, base.amount, base.average) == ("base_order", "filled", 0.014, 68687.4)
    sos = [o for o in d1 if o.tag == "safety_order"]
    assert [(o.price, o.amount, o.status) for o in sos] == [
        (67657.1, 0.014, "canceled"),
        (66626.8, 0.022, "canceled"),
        (65596.5, 0.034, "canceled"),
        (64566.2, 0.052, "rejected"),
    ]
    # SO 4 would fill after SO 1..3 (resting above it): the position then is base + SO 1..4
    legs = [(base.amount, base.average)] + [(o.amount, o.price) for o in sos]
    a = sum(x for x, _ in legs)
    e = sum(x * p for x, p in legs) / a
    lp = isolated_lp(1, a, e)
    dist = (64566.2 - lp) / 64566.2 * 100
    assert sos[3].reject_reason == (
        f"liquidation_buffer: liquidation price {lp:.8g} would be {dist:.2f}% from 64566.2, < buffer 8%"
    )
    assert sos[3].reject_reason == (
        "liquidation_buffer: liquidation price 59547.768 would be 7.77% from 64566.2, < buffer 8%"
    )
    assert [(d.rule, d.outcome) for d in r.decisions[:2]] == [("liquidation_buffer", "block"), ("smart_dca", "block")]
    assert r.decisions[1].reason == "safety order 4 rejected: " + sos[3].reject_reason
    # without the buffer the whole ladder rests
    free = run("long", "2024-07-29", buffer=0.0)
    assert [o.status for o in free.orders if o.tag == "safety_order"][:5] == ["canceled"] * 5


def test_long_safety_orders_move_the_liquidation_price():
    r = run("long", "2024-07-29")
    t = r.trades[1]
    assert (t.side, t.safety_orders_filled, t.exit_reason) == ("long", 3, "liquidation")
    # the liquidation price of the averaged entry (3 safety orders filled), funding paid
    # taken from the isolated margin; the base order alone would be liquidated higher
    lp = isolated_lp(1, t.amount, t.entry_price, t.funding)
    assert t.liquidation_price == pytest.approx(lp, abs=1e-6)
    base = next(o for o in r.orders if o.deal_id == t.deal_id and o.tag == "base_order")
    base_lp = isolated_lp(1, base.amount, base.average)
    assert round(t.liquidation_price, 2) == 60849.81 < round(base_lp, 2) == 62575.21
    assert t.exit_price == pytest.approx(round(lp, 1), abs=1e-9) and t.closed_at == int(
        pd.Timestamp("2024-08-03T01:00Z").value // 1_000_000
    )


def test_short_ladder_on_margin_collateral_after_the_crash():
    r = run("short", "2024-08-05T12:00")
    t = r.trades[0]
    assert (t.side, t.safety_orders_filled, t.exit_reason, t.leverage) == ("short", 5, "liquidation", 10.0)
    # margin collateral: 0.268 BTC short (~14,300 USDT notional) on 3,000 USDT of capital
    assert t.amount == pytest.approx(0.268) and t.margin == pytest.approx(t.cost / 10)
    lp = isolated_lp(-1, t.amount, t.entry_price, t.funding)
    assert t.liquidation_price == pytest.approx(lp, abs=1e-6) and round(lp, 2) == 58608.17
    refused = [o for o in r.orders if o.deal_id == t.deal_id and o.status == "rejected"]
    assert [(o.price, o.reject_reason.split(" would be ")[1]) for o in refused] == [
        (52028.9, "7.76% from 52028.9, < buffer 8%"),
        (52775.7, "7.98% from 52775.7, < buffer 8%"),
    ]
