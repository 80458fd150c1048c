"""Perpetual runs skip candles (isolated margin) with results identical to stepping every candle:
funding queued and applied on its candle without waking the strategy, liquidation found over
the whole span on the mark price, the smallest liquidation distance kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies.engine import Engine, Feed, MarketSpec, SimulatedBroker
from strategies.engine.feed import load_csv
from strategies.engine.perps import bundled_tiers
from strategies.registry import create_strategy

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled" / "futures"
SHARED = (
    Path(os.environ.get("MARKET7_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "ohlcv"
    / "futures"
)


def feed_of(base: Path, names: list[str]) -> Feed:
    last, mark, funding = {}, {}, {}
    for n in names:
        s = f"{n}/USDT:USDT"
        last[s] = load_csv(base / f"{n}USDT-1h.csv.gz")
        mark[s] = load_csv(base / f"{n}USDT-1h-mark.csv.gz")
        fr = pd.read_csv(base / f"{n}USDT-funding.csv.gz")
        funding[s] = (fr.time.to_numpy(), fr.funding_rate.to_numpy())
    return Feed("1h", last, mark=mark, funding=funding)


def both(feed: Feed, params: dict, leverage: float, risk=None):
    out = []
    for skip in (True, False):
        specs = [
            MarketSpec.binance_like(s, float(feed.candles(s).close[0]), market_type="swap", leverage=leverage)
            for s in feed.symbols
        ]
        engine = Engine(
            create_strategy("smart_dca", params),
            specs,
            broker=SimulatedBroker(slippage_bps=5),
            capital=2000.0,
            skip=skip,
        )
        out.append(engine.run(feed))
    return out


def assert_identical(a, b) -> None:
    def trades(r):
        return [
            (t.deal_id, t.symbol, t.opened_at, t.closed_at, t.exit_reason, t.pnl, t.fees, t.funding,
             t.liquidation_price, t.min_liquidation_distance_pct)
            for t in r.trades
        ]  # fmt: skip

    assert trades(a) == trades(b)
    assert np.array_equal(np.asarray(a.equity), np.asarray(b.equity))
    assert [(d.time, d.rule, d.reason) for d in a.decisions] == [(d.time, d.rule, d.reason) for d in b.decisions]
    assert a.state.portfolio == b.state.portfolio


@pytest.mark.parametrize("direction", ["long", "short"])
@pytest.mark.parametrize("leverage", [3.0, 10.0, 25.0])
def test_bundled_btc_swap_runs_skip_with_identical_results(direction, leverage):
    feed = feed_of(BUNDLED, ["BTC"])
    params = {"direction": direction, "base_order_size": 200, "safety_order_size": 200, "max_safety_orders": 4,
              "price_deviation": 1.5, "take_profit": 1.0}  # fmt: skip
    a, b = both(feed, params, leverage)
    assert len(a.trades) >= 5
    assert_identical(a, b)
    if leverage == 25.0:
        assert any(t.exit_reason == "liquidation" for t in a.trades)
    assert any(t.funding != 0.0 for t in a.trades)


def test_shared_futures_several_symbols_skip_with_identical_results():
    names = (
        [p.name[: -len("USDT-1h-mark.csv.gz")] for p in sorted(SHARED.glob("*USDT-1h-mark.csv.gz"))]
        if SHARED.is_dir()
        else []
    )
    names = [n for n in names if bundled_tiers(f"{n}/USDT:USDT") is not None][:4]
    if len(names) < 2:
        pytest.skip("needs ../shared/data futures with two symbols with bundled tiers")
    feed = feed_of(SHARED, names)
    params = {"base_order_size": 100, "safety_order_size": 200, "max_safety_orders": 5, "price_deviation": 2.0,
              "step_scale": 1.2, "volume_scale": 1.5, "take_profit": 1.5, "max_active_deals": 10}  # fmt: skip
    for lev in (3.0, 10.0):
        a, b = both(feed, params, lev)
        assert_identical(a, b)
