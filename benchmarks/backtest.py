"""Engine throughput and memory: Smart DCA with every guard on, 21 spot 1h symbols.

Plain script (``make bench``); prints figures, asserts nothing. Data: ``../shared/data/ohlcv``
(or ``MARKET7_SHARED_DATA``). Figures:

* load time of the CSVs (not part of the throughput);
* candle-steps per second = sum over symbols of the 1h candles stepped / engine wall time,
  for the skipping engine (default) and, for reference, the naive per-candle loop (``skip=False``)
  on a shorter slice; the two must produce identical results (checked and printed);
* the engine alone: the same run replayed by a strategy that decides nothing (it re-issues, on
  the same candles, the exact places, cancels and deal ids Smart DCA issued, recorded through a
  forwarding context), so the time left is the engine's own (fills, orders, portfolio, wake
  loop); the replay must give the same orders (checked and printed);
* a machine reference (a fixed pure-Python loop), to compare figures taken on other machines;
* peak RSS of the process (``resource.getrusage``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strategies.base import BaseStrategy  # noqa: E402
from strategies.engine import Engine, Feed, MarketSpec, SimulatedBroker  # noqa: E402
from strategies.registry import create_strategy  # noqa: E402

SYMBOLS = [
    f"{b}/USDT"
    for b in "BTC ETH SOL BNB XRP ADA AVAX DOGE DOT LINK LTC NEAR BCH TRX XLM AAVE ARB OP UNI SUI INJ".split()
]
PARAMS = {
    "base_order_size": 20,
    "safety_order_size": 40,
    "max_safety_orders": 6,
    "active_safety_orders": 2,
    "price_deviation": 1.5,
    "step_scale": 1.2,
    "volume_scale": 1.5,
    "take_profit": 2.0,
    "max_active_deals": 10,
    "stop_loss": 0,
    "confidence_dca_guard_enabled": True,
    "step_repeat_guard_enabled": True,
    "trailing_step_guard_enabled": True,
    "spend_guard_enabled": True,
    "zombie_tag_enabled": True,
    "zombie_hours": 72,
    "zombie_drawdown_pct": 10,
    "btc_market_filter_enabled": True,
    "safu_exit_enabled": True,
}


class _Recorder:
    """Forwards a StepContext to the strategy and logs the actions taken through it."""

    def __init__(self, ctx, log: list) -> None:
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def __setattr__(self, name, value) -> None:
        setattr(self._ctx, name, value)

    def place(self, intent):
        self._log.append(("place", intent))
        return self._ctx.place(intent)

    def cancel(self, order, reason: str = "") -> None:
        self._log.append(("cancel", order if isinstance(order, str) else order.client_order_id, reason))
        self._ctx.cancel(order, reason)

    def new_deal_id(self) -> str:
        self._log.append(("deal_id",))
        return self._ctx.new_deal_id()


def record(strategy) -> tuple[dict, dict]:
    """Wrap ``strategy.on_candle`` so that a run logs, per (symbol, candle index), the actions the
    strategy took, and per symbol the candle indices it was visited on."""
    actions: dict[tuple[str, int], list] = {}
    visits: dict[str, list[int]] = {}
    inner = strategy.on_candle

    def on_candle(ctx):
        visits.setdefault(ctx.symbol, []).append(ctx.i)
        return inner(_Recorder(ctx, actions.setdefault((ctx.symbol, ctx.i), [])))

    strategy.on_candle = on_candle
    return actions, visits


class Replay(BaseStrategy):
    """Decides nothing: re-issues recorded actions on the recorded candles (engine-only cost)."""

    name = "bench_replay"

    def __init__(self, actions: dict, visits: dict) -> None:
        super().__init__({})
        self.actions, self.visits = actions, visits
        self.pos = dict.fromkeys(visits, 0)

    def on_candle(self, ctx) -> None:
        for a in self.actions.get((ctx.symbol, ctx.i), ()):
            if a[0] == "place":
                ctx.place(a[1])
            elif a[0] == "cancel":
                ctx.cancel(a[1], a[2])
            else:
                ctx.new_deal_id()

    def next_wake(self, ctx) -> int | None:
        v = self.visits[ctx.symbol]
        k = self.pos[ctx.symbol]
        while k < len(v) and v[k] <= ctx.i:
            k += 1
        self.pos[ctx.symbol] = k
        return v[k] if k < len(v) else None


def machine_reference_ms() -> float:
    """Best of 5 timings of a fixed pure-Python loop (ms): scales the figures between machines."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    data = Path(os.environ.get("MARKET7_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ohlcv"
    if not data.is_dir():
        print(f"shared data not found at {data}; nothing to benchmark")
        return
    t0 = time.perf_counter()
    feed = Feed.from_csv_dir(data, SYMBOLS, "1h")
    load_s = time.perf_counter() - t0
    markets = [MarketSpec.binance_like(s, float(feed.candles(s).close[0])) for s in SYMBOLS]
    print(
        f"data: {len(SYMBOLS)} symbols, {sum(len(feed.candles(s)) for s in SYMBOLS):,} 1h candles, loaded in {load_s:.2f} s"
    )

    def run(skip: bool, end_ms=None, params=PARAMS):
        eng = Engine(
            create_strategy("smart_dca", params), markets, SimulatedBroker(slippage_bps=5), capital=100_000, skip=skip
        )
        t = time.perf_counter()
        res = eng.run(feed, end_ms=end_ms)
        return res, time.perf_counter() - t

    run(True)  # warm-up: TA-Lib arrays, caches, imports
    best = None
    for _ in range(3):
        res, dt = run(True)
        best = dt if best is None else min(best, dt)
    steps = res.candle_steps
    print(
        f"smart_dca + all guards, skip=True : {steps:,} candle-steps in {best:.3f} s = {steps / best:,.0f} candle-steps/s "
        f"({len(res.orders):,} orders, {len(res.fills):,} fills, {len(res.trades):,} deals, {len(res.decisions):,} decisions; "
        f"the strategy was visited on {res.visits:,} candles)"
    )
    plain = {k: v for k, v in PARAMS.items() if not k.endswith("_enabled")}
    res2, dt2 = run(True, params=plain)
    print(
        f"smart_dca, guards off, skip=True : {res2.candle_steps / dt2:,.0f} candle-steps/s ({len(res2.trades):,} deals)"
    )
    end_ms = int(feed.candles("BTC/USDT").time[3000])
    a, dta = run(True, end_ms)
    b, dtb = run(False, end_ms)
    same = json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    print(
        f"first 3,001 hours: skip=True {a.candle_steps / dta:,.0f} steps/s, skip=False {b.candle_steps / dtb:,.0f} steps/s; "
        f"results identical: {same}"
    )
    strategy = create_strategy("smart_dca", PARAMS)
    actions, visits = record(strategy)
    recorded = Engine(strategy, markets, SimulatedBroker(slippage_bps=5), capital=100_000).run(feed)
    floor = None
    for _ in range(3):
        eng = Engine(Replay(actions, visits), markets, SimulatedBroker(slippage_bps=5), capital=100_000)
        t = time.perf_counter()
        rep = eng.run(feed)
        dt = time.perf_counter() - t
        floor = dt if floor is None else min(floor, dt)
    same = (
        [o.to_dict() for o in rep.orders] == [o.to_dict() for o in recorded.orders] == [o.to_dict() for o in res.orders]
    )
    n_actions = sum(len(v) for v in actions.values())
    print(
        f"engine alone (the same {rep.visits:,} visits and {n_actions:,} actions replayed, no strategy logic): "
        f"{floor:.3f} s = {rep.candle_steps / floor:,.0f} candle-steps/s, {floor / rep.visits * 1e6:.1f} us per visit; "
        f"same orders: {same}"
    )
    print(f"machine reference: sum(i*i for i in range(10**6)) in {machine_reference_ms():.1f} ms")
    print(f"peak RSS: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
