"""The engine's shortcuts change nothing but time (real Binance data, ../shared/data).

* Deal-slot waiters: when a freed slot is taken, the other woken waiters are put back to sleep
  (``ctx.recall``) instead of each being called only to wait again — same results as the naive
  loop, and no woken waiter ever finds the slots full.
* Guards build ALLOW decisions only when the engine keeps them: ``record_allow=True`` gives the
  same trades and the same other decisions, plus the ALLOW ones (a guard's ``blocks()`` and
  its ``check()`` never disagree, or a BLOCK would appear only with ``record_allow``).
* The equity curve built once at the end (no risk manager) equals the per-candle marking used
  with a risk manager, point for point.
* The broker's cached "first candle reaching this price" answers equal fresh searches.
* Fast price / amount rounding equals ccxt's ``decimal_to_precision`` helpers.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed
from strategies.engine.orders import Order, OrderStatus, OrderType, Side
from strategies.engine.portfolio import Portfolio
from strategies.registry import create_strategy
from strategies.risk.types import RiskDecision

DATA = Path(os.environ.get("MARKET7_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "ohlcv"
SYMBOLS = ["ADA/USDT", "BNB/USDT", "BTC/USDT", "DOGE/USDT", "ETH/USDT", "LINK/USDT", "SOL/USDT", "XRP/USDT"]
PARAMS = dict(
    base_order_size=20,
    safety_order_size=30,
    max_safety_orders=5,
    active_safety_orders=2,
    price_deviation=1.2,
    step_scale=1.2,
    volume_scale=1.5,
    take_profit=1.5,
    max_active_deals=3,
    confidence_dca_guard_enabled=True,
    step_repeat_guard_enabled=True,
    trailing_step_guard_enabled=True,
    spend_guard_enabled=True,
    spend_guard_max_pct=60,
    zombie_tag_enabled=True,
    zombie_hours=36,
    zombie_drawdown_pct=5,
    btc_market_filter_enabled=True,
    btc_filter_ema_period=100,
    safu_exit_enabled=True,
    safu_threshold=0.65,
)


@pytest.fixture(scope="module")
def feed():
    if not DATA.is_dir():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"shared data missing at {DATA}")
        pytest.skip(f"shared data not present at {DATA}")
    full = Feed.from_csv_dir(DATA, SYMBOLS, "1h")
    return full.truncate(int(full.candles("BTC/USDT").time[2999]))  # 3,000 hourly candles


def markets(feed):
    return [MarketSpec.binance_like(s, float(feed.candles(s).close[0])) for s in SYMBOLS]


def report(res) -> str:
    return json.dumps(res.to_dict(), sort_keys=True)


class CountingDca:
    """Wraps Smart DCA's ``on_candle`` to count calls on which a symbol that was waiting for
    a deal slot found every slot taken (a wasted wake-up)."""

    def __init__(self, params):
        self.inner = create_strategy("smart_dca", params)
        self.max_deals = params["max_active_deals"]
        self.calls = 0
        self.wasted = 0
        inner_on_candle = self.inner.on_candle

        def on_candle(ctx):
            self.calls += 1
            if ctx.symbol in self.inner._waiting and ctx.state.active_deals >= self.max_deals:
                self.wasted += 1
            return inner_on_candle(ctx)

        self.inner.on_candle = on_candle


@pytest.mark.shared_data
def test_slot_waiters_are_recalled_and_results_equal_the_naive_loop(feed):
    fast = CountingDca(PARAMS)
    naive = CountingDca(PARAMS)
    a = Engine(fast.inner, markets(feed), SimulatedBroker(slippage_bps=5), capital=2_000).run(feed)
    b = Engine(naive.inner, markets(feed), SimulatedBroker(slippage_bps=5), capital=2_000, skip=False).run(feed)
    assert report(a) == report(b)
    assert len(a.trades) > 50  # many deal closes, each one freeing a slot for the waiters
    assert b.candle_steps == 8 * 3000 and naive.calls == 8 * 3000
    assert naive.wasted > 10_000  # the naive loop asks the full book again and again...
    assert fast.wasted == 0  # ...the skipping engine never wakes a waiter into a full book
    assert fast.calls < naive.calls / 4
    assert (a.visits, b.visits) == (fast.calls, naive.calls)


@pytest.mark.shared_data
def test_record_allow_adds_only_allow_decisions(feed):
    plain = Engine(create_strategy("smart_dca", PARAMS), markets(feed), SimulatedBroker(5), capital=2_000).run(feed)
    allow = Engine(
        create_strategy("smart_dca", PARAMS), markets(feed), SimulatedBroker(5), capital=2_000, record_allow=True
    ).run(feed)
    naive = Engine(
        create_strategy("smart_dca", PARAMS),
        markets(feed),
        SimulatedBroker(5),
        capital=2_000,
        record_allow=True,
        skip=False,
    ).run(feed)
    assert report(allow) == report(naive)  # ALLOWs are recorded at placements, not per candle
    kept = [d.to_dict() for d in allow.decisions if d.outcome != "allow"]
    assert kept == [d.to_dict() for d in plain.decisions]
    rules = {d.rule for d in allow.decisions if d.outcome == "allow"}
    assert rules == {"step_repeat_guard", "spend_guard", "trailing_step_guard"}
    assert [t.to_dict() for t in allow.trades] == [t.to_dict() for t in plain.trades]


class ApproveAll:
    """The risk seam with no rule in it: approves every entry at its size, no decisions.
    With a risk manager present the engine marks equity candle by candle."""

    def state_dict(self):
        return {}

    def load_state(self, d):
        pass

    def on_candle(self, time_ms, view):
        return []

    def check_entry(self, req, view):
        return RiskDecision(True, req.quote_amount, [])


@pytest.mark.shared_data
def test_equity_built_at_the_end_equals_candle_by_candle_marking(feed):
    at_end = Engine(create_strategy("smart_dca", PARAMS), markets(feed), SimulatedBroker(5), capital=2_000).run(feed)
    marked = Engine(
        create_strategy("smart_dca", PARAMS), markets(feed), SimulatedBroker(5), capital=2_000, risk=ApproveAll()
    ).run(feed)
    assert len(at_end.equity) == 3000
    assert np.array_equal(at_end.equity, marked.equity)
    assert np.array_equal(at_end.equity_time, marked.equity_time)
    for key in ("peak_equity", "day_start_equity", "day_index", "last_equity"):
        assert getattr(at_end.state, key) == getattr(marked.state, key), key
    assert at_end.state.last_equity == at_end.equity[-1]
    assert at_end.state.peak_equity == max(2_000.0, float(at_end.equity.max()))


@pytest.mark.shared_data
def test_broker_cached_reach_equals_fresh_search(feed):
    spec = {s: MarketSpec.binance_like(s, float(feed.candles(s).close[0])) for s in SYMBOLS}
    cached = SimulatedBroker()
    cached.bind(feed, spec)
    c = feed.candles("ETH/USDT")
    n = len(c)
    rng = random.Random(7)
    lo_prices = [float(c.close[k]) * f for k in (10, 500, 1500) for f in (0.97, 0.99)]
    hi_prices = [float(c.close[k]) * f for k in (10, 500, 1500) for f in (1.01, 1.03)]
    found = 0
    for _ in range(3000):
        orders = []
        if rng.random() < 0.8:
            orders.append(_limit(Side.BUY, rng.choice(lo_prices)))
        if rng.random() < 0.8:
            orders.append(_limit(Side.SELL, rng.choice(hi_prices)))
        start = rng.randrange(0, n - 1)
        end = rng.randrange(start + 1, n + 1)
        fresh = SimulatedBroker()
        fresh.bind(feed, spec)
        want = fresh.next_trigger("ETH/USDT", orders, start, end)
        assert cached.next_trigger("ETH/USDT", orders, start, end) == want
        if orders:
            lo = min([o.price for o in orders if o.side == Side.BUY], default=None)
            hi = max([o.price for o in orders if o.side == Side.SELL], default=None)
            brute = next(
                (
                    j
                    for j in range(start, end)
                    if (lo is not None and c.low[j] <= lo) or (hi is not None and c.high[j] >= hi)
                ),
                end,
            )
            assert want == brute
            found += want < end
    assert found > 500


def _limit(side, price):
    o = Order("x", "ETH/USDT", side, OrderType.LIMIT, 0.01, price=price)
    o.status = OrderStatus.OPEN
    return o


def test_fast_rounding_equals_ccxt_helpers():
    rng = random.Random(11)
    checked = 0
    for tick in (1e-8, 1e-5, 0.001, 0.01, 0.1, 1.0, 10.0, 0.5, 0.05, 0.25):
        m = MarketSpec("X/USDT", amount_tick=tick, price_tick=tick)
        for _ in range(3000):
            k = rng.random()
            if k < 0.3:
                v = rng.uniform(0.0, 5000.0)
            elif k < 0.6:  # on a tick multiple, give or take one ulp
                v = rng.randint(1, 10**6) * tick * rng.choice([1.0, 1 + 2.2e-16, 1 - 1.1e-16])
            elif k < 0.85:  # on a half tick, give or take one ulp
                v = (rng.randint(1, 10**6) + 0.5) * tick * rng.choice([1.0, 1 + 2.2e-16, 1 - 1.1e-16])
            else:
                v = rng.randint(1, 10**5) * tick + rng.choice([0.1, 0.49, 0.51, 0.9]) * tick
            assert m.round_price(v) == m.price_to_precision(v), (tick, repr(v))
            assert m.trunc_amount(v) == m.amount_to_precision(v), (tick, repr(v))
            checked += 1
    assert checked == 30_000
    btc = MarketSpec.binance_like("BTC/USDT", 60_000.0)
    assert btc.round_price(60_123.455) == 60_123.46 and btc.round_price(60_123.4549) == 60_123.45
    assert btc.trunc_amount(0.30000000000000004) == 0.3 and btc.trunc_amount(0.123459) == 0.12345
    pf = Portfolio(100.0)
    assert pf.free() == 100.0
