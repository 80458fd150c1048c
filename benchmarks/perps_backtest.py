"""Perpetual futures backtests: throughput next to spot, and leverage 3 / 10 on the real data.

Plain script (``make bench``); prints figures, asserts nothing. Data: ``../shared/data/ohlcv/
futures`` (or ``MARKET7_SHARED_DATA``): the USDT-M 1h last-price candles, mark-price candles and
funding rates of every symbol that has all three and a bundled tier table
(``strategies/engine/data/leverage_tiers.json``). Smart DCA long (base order 100, 5 safety
orders of 200, 2 % deviation, step scale 1.2, volume scale 1.5, take profit 1.5 %) on:

* the same candles as a **spot** market (no margin, no funding, no liquidation);
* **swap**, isolated, leverage 3 and 10, liquidations on the mark price, funding every event.

Printed per run: candle-steps per second, trades, liquidations, funding paid (quote, signed),
final equity; and the swap / spot throughput ratio (target: swap within 1.5x of spot).
Skipped with a message when the shared data is absent (the bundled futures subset is one
symbol over four weeks — too small for a throughput figure).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strategies.engine import Engine, Feed, MarketSpec  # noqa: E402
from strategies.engine.feed import load_csv  # noqa: E402
from strategies.engine.perps import bundled_tiers  # noqa: E402
from strategies.registry import create_strategy  # noqa: E402

PARAMS = {
    "base_order_size": 100,
    "safety_order_size": 200,
    "max_safety_orders": 5,
    "price_deviation": 2.0,
    "step_scale": 1.2,
    "volume_scale": 1.5,
    "take_profit": 1.5,
    "max_active_deals": 10,
}
CAPITAL = 20_000.0


def load() -> tuple[dict, dict, dict] | None:
    base = Path(os.environ.get("MARKET7_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ohlcv" / "futures"
    if not base.is_dir():
        return None
    last, mark, funding = {}, {}, {}
    for p in sorted(base.glob("*USDT-1h.csv.gz")):
        sym = p.name.split("-")[0].replace("USDT", "/USDT:USDT")
        mp, fp = base / p.name.replace("-1h.", "-1h-mark."), base / p.name.replace("-1h.", "-funding.")
        if not (mp.exists() and fp.exists()) or bundled_tiers(sym) is None:
            continue
        last[sym], mark[sym] = load_csv(p), load_csv(mp)
        fr = pd.read_csv(fp)
        funding[sym] = (fr.time.to_numpy(), fr.funding_rate.to_numpy())
    return last, mark, funding


def run(feed: Feed, specs: list[MarketSpec]) -> tuple[float, object]:
    engine = Engine(create_strategy("smart_dca", PARAMS), specs, capital=CAPITAL)
    t = time.perf_counter()
    result = engine.run(feed)
    return time.perf_counter() - t, result


def main() -> None:
    data = load()
    if not data:
        print("shared futures data absent: skipped")
        return
    last, mark, funding = data
    syms = list(last)
    steps = sum(len(c) for c in last.values())
    print(f"data: {len(syms)} USDT-M symbols with mark + funding + tiers ({', '.join(syms)}), {steps:,} 1h candles")
    spot_feed = Feed("1h", {s.replace(":USDT", ""): c for s, c in last.items()})
    spot_specs = [MarketSpec.binance_like(s.replace(":USDT", ""), float(c.close[0])) for s, c in last.items()]
    t_spot, r = run(spot_feed, spot_specs)
    spot_trades = len(r.trades)
    print(
        f"spot      {steps / t_spot:12,.0f} candle-steps/s  trades {len(r.trades):4d}  final equity {r.equity[-1]:,.2f}"
    )
    swap_feed = Feed("1h", last, mark=mark, funding=funding)
    for lev in (3, 10):
        specs = [
            MarketSpec.binance_like(
                s, float(c.close[0]), market_type="swap", leverage=float(lev), margin_mode="isolated"
            )
            for s, c in last.items()
        ]
        t_swap, r = run(swap_feed, specs)
        liq = sum(1 for t in r.trades if t.exit_reason == "liquidation")
        paid = sum(t.funding for t in r.trades) + sum(float(d.get("funding", 0.0)) for d in r.open_deals)
        print(
            f"swap {lev:2d}x {steps / t_swap:12,.0f} candle-steps/s  trades {len(r.trades):4d}  liquidations {liq}  "
            f"funding paid {paid:,.2f}  final equity {r.equity[-1]:,.2f}  (swap/spot time {t_swap / t_spot:.2f}x, "
            f"per deal {(t_swap / max(len(r.trades), 1)) / (t_spot / max(spot_trades, 1)):.2f}x; target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
