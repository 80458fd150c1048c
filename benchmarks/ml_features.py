"""Feature computation speed: the inference path (100 symbols, one new candle) and the batch.

Plain script (``make bench``); prints figures, asserts nothing. Data: ``../shared/data/ohlcv``
(or ``MARKET7_SHARED_DATA``); without it the bundled 10 symbols × 180 days are used. Figures:

* ``features_latest_many`` for 100 symbols (the 21 symbols repeated, each with its last 2000
  1h candles, BTC/USDT as reference): min and median of 50 calls (target <= 5 ms);
* the same computed symbol by symbol with ``features_at`` (the per-symbol path, for scale);
* ``compute_features`` over every candle of every symbol (21 × 20 months): wall time and rows/s;
* the largest difference between the inference rows and the batch rows (relative / absolute).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops.core.features import FEATURE_NAMES, compute_features, features_at, features_latest_many  # noqa: E402
from strategies.engine.feed import load_csv  # noqa: E402


def data_dir() -> tuple[Path, str]:
    shared = Path(os.environ.get("MARKET7_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ohlcv" / "spot"
    if shared.is_dir():
        return shared, "../shared/data spot 1h"
    return ROOT / "trading" / "data" / "bundled", "bundled data (shared data absent)"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    path, label = data_dir()
    data = {p.name.split("-")[0].replace("USDT", "/USDT"): load_csv(p) for p in sorted(path.glob("*USDT-1h.csv.gz"))}
    btc = data["BTC/USDT"]
    names = list(data)
    n_rows = sum(len(c) for c in data.values())
    print(f"data: {label}, {len(data)} symbols, {n_rows:,} candles; {len(FEATURE_NAMES)} features")

    batch = {f"{names[k % len(names)]}#{k}": data[names[k % len(names)]][-2000:] for k in range(100)}
    features_latest_many(batch, btc)  # warm
    ms = timed(lambda: features_latest_many(batch, btc), 50)
    print(
        f"inference, 100 symbols x 1 new candle (features_latest_many): "
        f"min {min(ms):.2f} ms, median {statistics.median(ms):.2f} ms  (target <= 5 ms)"
    )
    one = timed(lambda: [features_at(c, len(c) - 1, btc) for c in list(batch.values())[:20]], 5)
    print(f"per-symbol path (features_at), 20 symbols: min {min(one):.2f} ms -> {min(one) * 5:.1f} ms per 100")

    t = time.perf_counter()
    frames = {s: compute_features(c, btc) for s, c in data.items()}
    wall = time.perf_counter() - t
    print(f"batch, {len(data)} symbols x all candles (compute_features): {wall:.2f} s, {n_rows / wall:,.0f} rows/s")

    _, rows = features_latest_many({s: c[-2000:] for s, c in data.items()}, btc)
    ref = np.stack([frames[s].values[-1] for s in data])
    diff = np.abs(rows.astype(np.float64) - ref)
    rel = diff / np.maximum(np.abs(ref), 1e-12)
    print(
        f"inference vs batch rows: max abs diff {np.nanmax(diff):.3g}, max rel diff {np.nanmax(rel[diff > 0], initial=0):.3g}"
    )


if __name__ == "__main__":
    main()
