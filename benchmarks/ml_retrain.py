"""Full retrain of every model, batch inference, and a retrain's peak memory (issue 12 §6).

Plain script (``make bench``); prints figures, asserts nothing. Data: ``../shared/data`` spot
1h (21 symbols × 20 months; or ``MARKET7_SHARED_DATA``); without it the bundled 10 symbols ×
180 days. The same pure code the training jobs run (:mod:`mlops.core.pipeline`):

* features of every symbol once (``feature_frames``);
* the engine backtests Smart DCA and the five detector strategies once each
  (``simulate_labels``) — one run gives every label kind of that strategy;
* every model trained by purged walk-forward (4 folds) + the final fit: the four Smart DCA
  kinds and the five detector kinds for each of the five detector strategies (29 models).

Printed: wall time of each phase and of the whole retrain (target <= 60 s on 2 cores), the
per-model pooled metric and gated-vs-ungated line, peak RSS of the process (target <= 1.5 GB),
and the batch inference time for 100 rows (one new candle of 100 symbols; target <= 5 ms).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")

from mlops.core.pipeline import (  # noqa: E402
    DCA_KINDS,
    DETECTOR_KINDS,
    PipelineError,
    feature_frames,
    simulate_labels,
    train_kind,
)
from strategies.engine.feed import Feed, load_csv  # noqa: E402

DETECTORS = ("fork_score", "scalping", "dca_detector", "swing", "channel")


def data_dir() -> tuple[Path, str]:
    shared = Path(os.environ.get("MARKET7_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ohlcv" / "spot"
    if shared.is_dir():
        return shared, "../shared/data spot 1h"
    return ROOT / "trading" / "data" / "bundled", "bundled data (shared data absent)"


def pf(x) -> str:
    """Profit factor; ``n/a`` without a losing deal (or without deals)."""
    return "n/a" if x is None else f"{x:.2f}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    path, label = data_dir()
    data = {p.name.split("-")[0].replace("USDT", "/USDT"): load_csv(p) for p in sorted(path.glob("*USDT-1h.csv.gz"))}
    feed = Feed("1h", data)
    symbols = list(data)
    btc = data["BTC/USDT"]
    start_ms = int(btc.time[0]) + 500 * 3_600_000  # the backtests' warm-up
    end_ms = int(btc.time[-1])
    n = sum(len(c) for c in data.values())
    print(f"data: {label}: {len(symbols)} symbols, {n:,} candles; start after 500 warm-up candles")
    t0 = time.perf_counter()
    frames = feature_frames(feed, symbols, btc)
    t_feat = time.perf_counter() - t0
    print(f"features: {t_feat:6.2f} s ({len(next(iter(frames.values())).names)} per candle)")
    options = {"folds": 4}
    sims = {}
    t1 = time.perf_counter()
    for strat in ("smart_dca", *DETECTORS):
        ts = time.perf_counter()
        try:
            result, sets = simulate_labels(strat, {}, feed, symbols, start_ms=start_ms, end_ms=end_ms, options=options)
        except PipelineError as exc:
            print(f"  backtest {strat:12s} skipped: {exc}")
            continue
        sims[strat] = sets
        print(f"  backtest {strat:12s} {time.perf_counter() - ts:6.2f} s  {len(result.trades):5d} deals")
    t_sim = time.perf_counter() - t1
    print(f"backtests + labels: {t_sim:6.2f} s")
    t2 = time.perf_counter()
    models = 0
    last = None
    for strat, sets in sims.items():
        kinds = DCA_KINDS if strat == "smart_dca" else DETECTOR_KINDS
        for kind in kinds:
            ts = time.perf_counter()
            try:
                out = train_kind(kind, sets[kind], frames, options=options)
            except PipelineError as exc:
                print(f"  {strat:12s} {kind:15s} skipped: {exc}")
                continue
            models += 1
            last = out
            p = out.metrics["pooled"]
            metric = (
                f"AUC {p['auc']:.3f}"
                if p.get("auc") is not None
                else f"MAE {p.get('mae', float('nan')):.3f} (baseline {p.get('baseline_mae', float('nan')):.3f})"
            )
            line = f"  {strat:12s} {kind:15s} {out.rows:6d} rows  {metric:30s} {time.perf_counter() - ts:5.2f} s"
            tr = out.metrics.get("trading")
            if tr:
                u, g = tr["ungated"], tr["gated"]
                line += (
                    f"  ungated {u['trades']} deals PF {pf(u['profit_factor'])} P&L {u['pnl']:.1f} | "
                    f"gated {g['trades']} deals PF {pf(g['profit_factor'])} P&L {g['pnl']:.1f}"
                )
            print(line)
    t_train = time.perf_counter() - t2
    total = time.perf_counter() - t0
    print(f"training: {t_train:6.2f} s for {models} models")
    print(
        f"FULL RETRAIN: {total:6.2f} s (target <= 60 s on 2 cores); peak RSS {peak_rss_mb():,.0f} MB (target <= 1,500 MB)"
    )
    if last is not None:
        model = last.report.model.get_booster()
        X = np.random.default_rng(0).normal(size=(100, len(last.feature_names))).astype(np.float32)
        times = []
        for _ in range(200):
            t = time.perf_counter()
            model.inplace_predict(X)
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"batch inference, 100 symbols x 1 candle: median {statistics.median(times):.3f} ms, "
            f"p95 {np.percentile(times, 95):.3f} ms (target <= 5 ms)"
        )


if __name__ == "__main__":
    import django

    django.setup()  # strategies.backtest reads the engine settings through Django's app registry
    main()
