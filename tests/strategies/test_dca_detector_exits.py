"""``dca_detector`` traded (issue 11 §2: "TP 10 % and SL −8 % on the average"): the take profit and
stop loss sit on the ACTUAL average entry of the grid levels that filled, re-placed when another
level fills — hand-made candles where only 2 of the 5 levels fill, exact prices."""

from __future__ import annotations

import pytest

from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.testing import T0, make_feed
from strategies.registry import create_strategy

H = 3_600_000
SYM = "BTC/USDT"
SPEC = MarketSpec(
    SYM, amount_tick=1e-8, price_tick=0.01, min_amount=0.0, min_cost=1.0, maker_fee_bps=0, taker_fee_bps=0
)


def dip_rows() -> list[tuple[float, float, float, float]]:
    """30 candles sliding from 100 by 0.5 (RSI 0), then candle 30 closes at 76 (12.24 % below the
    4-candle high 86.6): the signal, grid 76 / 75.24 / 74.48 / 73.72 / 72.96."""
    rows, p = [], 100.0
    for _ in range(30):
        rows.append((p, p + 0.1, p - 0.6, p - 0.5))
        p -= 0.5
    rows.append((p, p + 0.1, 75.0, 76.0))
    return rows


ROWS = dip_rows() + [
    (76.5, 77.0, 75.9, 76.2),  # 31: level 0 (76) fills
    (76.0, 76.3, 75.0, 75.5),  # 32: level 1 (75.24) fills; 74.48 is not reached
    (75.5, 76.0, 75.1, 75.8),  # 33: nothing
    (75.8, 76.1, 75.2, 75.9),  # 34: nothing
]


def test_tp_and_sl_follow_the_average_of_the_levels_that_filled():
    feed = make_feed({SYM: ROWS})
    eng = Engine(create_strategy("dca_detector", {}), [SPEC], SimulatedBroker(), capital=10_000.0, order_prefix="b")
    res = eng.run(feed)
    (entry,) = [d for d in res.decisions if " entry (" in d.reason]
    assert entry.time == T0 + 30 * H
    grid = [o for o in res.orders if o.tag in ("entry", "grid")]
    assert [o.price for o in grid] == [76.0, 75.24, 74.48, 73.72, 72.96]
    fills = [(f.price, f.amount, f.time) for f in res.fills]
    a0, a1 = 0.26315789, 0.26581605  # 20 quote each (100 × 0.2), amount tick 1e-8
    assert fills == [(76.0, a0, T0 + 31 * H), (75.24, a1, T0 + 32 * H)]
    avg2 = (76.0 * a0 + 75.24 * a1) / (a0 + a1)
    assert avg2 == pytest.approx(75.61809045, abs=1e-8)

    tps = [(o.price, o.amount, o.status) for o in res.orders if o.tag == "take_profit"]
    sls = [(o.stop_price, o.amount, o.status) for o in res.orders if o.tag == "stop_loss"]
    # after level 0: 76 × 1.10 = 83.6, 76 × 0.92 = 69.92; after level 1 on the new average
    assert tps == [(83.6, a0, "canceled"), (83.18, a0 + a1, "open")]
    assert sls == [(69.92, a0, "canceled"), (69.57, a0 + a1, "open")]
    assert (round(avg2 * 1.10, 2), round(avg2 * 0.92, 2)) == (83.18, 69.57)
    # not the whole grid's theoretical average (harmonic mean of the 5 prices)
    sig = entry.payload["signal"]
    assert (round(sig["take_profit"], 2), round(sig["stop_loss"], 2)) == (81.91, 68.51)
    # the decisions say where the exits came from
    exits = [d.reason for d in res.decisions if d.reason.startswith("exits on the average")]
    assert exits == [
        "exits on the average entry 76 of 0.26315789 filled: TP 83.6 (10%), SL 69.92 (8%)",
        "exits on the average entry 75.6181 of 0.52897394 filled: TP 83.18 (10%), SL 69.57 (8%)",
    ]
    # three grid levels still rest below; the deal is open
    resting = sorted(o["price"] for o in res.state.open_orders if o["tag"] == "grid")
    assert resting == [72.96, 73.72, 74.48]
    assert [d["deal_id"] for d in res.open_deals] == ["b-d1"]
