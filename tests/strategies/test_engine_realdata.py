"""Engine invariants on real Binance data (../shared/data): skipping == naive loop, no
look-ahead, one whole backtest == the same period stepped candle by candle through JSON
state, byte-identical repeated runs. Long and short Smart DCA with every guard on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from strategies.engine import Engine, EngineState, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed
from strategies.registry import create_strategy

DATA = Path(os.environ.get("MARKET7_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "ohlcv"
pytestmark = pytest.mark.shared_data

GUARDS = dict(
    confidence_dca_guard_enabled=True,
    step_repeat_guard_enabled=True,
    trailing_step_guard_enabled=True,
    spend_guard_enabled=True,
    zombie_tag_enabled=True,
    zombie_hours=24,
    zombie_drawdown_pct=4,
    btc_market_filter_enabled=True,
    btc_filter_ema_period=50,
    safu_exit_enabled=True,
    safu_threshold=0.6,
)
LONG = dict(
    base_order_size=50,
    safety_order_size=50,
    max_safety_orders=6,
    active_safety_orders=2,
    price_deviation=1.0,
    step_scale=1.3,
    volume_scale=1.4,
    take_profit=1.2,
    max_active_deals=2,
    cooldown=2,
    **GUARDS,
)
SHORT = dict(
    LONG,
    direction="short",
    trailing_enabled=True,
    trailing_deviation=0.4,
    stop_loss=6,
    stop_loss_timeout=3,
    zombie_action="close",
)
SYMBOLS = ["ETH/USDT", "SOL/USDT"]


@pytest.fixture(scope="module")
def feed():
    if not DATA.is_dir():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"shared data missing at {DATA}")
        pytest.skip(f"shared data not present at {DATA}")
    full = Feed.from_csv_dir(DATA, ["BTC/USDT", *SYMBOLS], "1h")
    return full.truncate(int(full.candles("BTC/USDT").time[1199]))  # 1,200 hourly candles


def engine(params, skip=True, prefix="t"):
    markets = [MarketSpec.binance_like(s, {"ETH/USDT": 2300.0, "SOL/USDT": 100.0}[s]) for s in SYMBOLS]
    return Engine(
        create_strategy("smart_dca", params),
        markets,
        SimulatedBroker(slippage_bps=5),
        capital=5_000,
        order_prefix=prefix,
        skip=skip,
    )


def report(res) -> str:
    return json.dumps(res.to_dict(), sort_keys=True)


@pytest.mark.parametrize("params", [LONG, SHORT], ids=["long", "short"])
def test_skipping_equals_stepping_every_candle(feed, params):
    a = engine(params, skip=True).run(feed)
    b = engine(params, skip=False).run(feed)
    assert len(a.trades) > 5 and len(a.decisions) > 5
    assert report(a) == report(b)


@pytest.mark.parametrize("params", [LONG, SHORT], ids=["long", "short"])
def test_repeated_runs_are_byte_identical(feed, params):
    assert report(engine(params).run(feed)) == report(engine(params).run(feed))


@pytest.mark.parametrize("params", [LONG, SHORT], ids=["long", "short"])
def test_truncating_the_future_never_changes_the_past(feed, params):
    full = engine(params).run(feed)
    cut = int(feed.candles("ETH/USDT").time[700])
    part = engine(params).run(feed.truncate(cut))
    past = lambda items, key: [x.to_dict() for x in items if key(x) <= cut]  # noqa: E731
    assert past(full.fills, lambda f: f.time) == past(part.fills, lambda f: f.time)
    assert past(full.trades, lambda t: t.closed_at) == past(part.trades, lambda t: t.closed_at)
    assert past(full.decisions, lambda d: d.time) == past(part.decisions, lambda d: d.time)
    created = lambda o: o.created_at - 3_600_000  # noqa: E731 - decided on the candle before
    assert [o.client_order_id for o in full.orders if created(o) <= cut] == [o.client_order_id for o in part.orders]
    n = len(part.equity)
    assert list(full.equity[:n]) == list(part.equity)


@pytest.mark.parametrize("params", [LONG, SHORT], ids=["long", "short"])
def test_whole_backtest_equals_live_steps_through_json_state(feed, params):
    whole = engine(params).run(feed)
    times = feed.global_times(SYMBOLS)
    eng = engine(params)
    state = None
    fills, trades, decisions, equity, orders = [], [], [], [], {}
    warm = 900  # the first step covers the warm-up history, then one candle per step
    for k in range(warm, len(times)):
        step = eng.run(feed.truncate(int(times[k])), state=state)
        fills += step.fills
        trades += step.trades
        decisions += step.decisions
        equity += list(step.equity)
        for o in step.orders:
            orders[o.client_order_id] = o.to_dict()
        state = EngineState.from_json(step.state.to_json())
    assert [f.to_dict() for f in fills] == [f.to_dict() for f in whole.fills]
    assert [t.to_dict() for t in trades] == [t.to_dict() for t in whole.trades]
    assert [d.to_dict() for d in decisions] == [d.to_dict() for d in whole.decisions]
    assert equity == list(whole.equity)
    assert orders == {o.client_order_id: o.to_dict() for o in whole.orders}
    assert state.to_json() == whole.state.to_json()
    assert eng.open_deals(state) == whole.open_deals
