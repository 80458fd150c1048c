"""Benchmark: one full market scan — 100 markets × the 5 strategies (fork_score, scalping,
dca_detector, swing, channel) on 1h candles — through :mod:`strategies.services.scans`, and
where its time goes.

A scratch SQLite database (a temporary file, deleted at the end) is migrated and loaded with
the bundled candles (``import_candles --bundled``: 10 markets, 180 days of 1h). The data has
fewer than 100 markets, so 90 more (``SYN00/USDT`` … ``SYN89/USDT``) are synthesised by copying
the 1h candles of bundled market ``k % 10`` with every price × ``1 + (k+1)/1000`` (volumes
unchanged) — same row counts and shapes as real markets. Then :func:`scan_run` (plan = read
the last 500 candles of each market + BTC's, detect, save in one transaction) is run
:data:`WARMUP` + :data:`RUNS` times as of the newest candle; printed: median / max seconds per
scan, the split plan (DB reads) / detect (per strategy) / save, and the signals stored.

Target (issue 11 §5): a full scan of 100 symbols × 5 strategies <= 2 s.

    .venv/bin/python benchmarks/scan.py            # figures
    .venv/bin/python benchmarks/scan.py --profile  # + cProfile of one scan (top 20)
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKETS = 100
STRATEGIES = ("fork_score", "scalping", "dca_detector", "swing", "channel")
WARMUP = 1
RUNS = 5
TARGET_S = 2.0


def _setup() -> list[str]:
    """migrate, bundled candles, 90 synthetic markets; returns the 100 1h symbols scanned."""
    from django.core.management import call_command

    from trading.models import Candle, Market

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("import_candles", bundled=True, verbosity=0, stdout=io.StringIO())
    real = list(Market.objects.filter(candles__timeframe="1h").distinct().order_by("symbol").select_related("exchange"))
    symbols = [m.symbol for m in real]
    cols = ("open_time", "open", "high", "low", "close", "volume")
    rows = {
        m.pk: list(Candle.objects.filter(market=m, timeframe="1h").order_by("open_time").values_list(*cols))
        for m in real
    }
    k = 0
    while len(symbols) < MARKETS:
        src = real[k % len(real)]
        f = 1.0 + (k + 1) / 1000
        m = Market.objects.create(
            exchange=src.exchange,
            symbol=f"SYN{k:02d}/USDT",
            exchange_symbol=f"SYN{k:02d}USDT",
            base=f"SYN{k:02d}",
            quote="USDT",
            precision=src.precision,
            limits=src.limits,
        )
        Candle.objects.bulk_create(
            [
                Candle(market=m, timeframe="1h", open_time=t, open=o * f, high=h * f, low=lo * f, close=c * f, volume=v)
                for t, o, h, lo, c, v in rows[src.pk]
            ],
            batch_size=2000,
        )
        symbols.append(m.symbol)
        k += 1
    n = Candle.objects.filter(timeframe="1h").count()
    print(f"  setup: {len(real)} bundled + {k} synthetic 1h markets, {n} 1h candles, {time.perf_counter() - t0:.0f} s")
    return symbols


def worker(profile: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
    import django

    django.setup()
    from django.db import connection

    from strategies.models import MarketScan
    from strategies.services.scans import scan_detect, scan_plan, scan_run, scan_save

    symbols = _setup()
    kw = {"symbols": symbols, "timeframe": "1h", "strategies": STRATEGIES}
    totals, found = [], 0
    for run in range(WARMUP + RUNS):
        t0 = time.perf_counter()
        _, signals = scan_run(**kw)
        if run >= WARMUP:
            totals.append(time.perf_counter() - t0)
            found = len(signals)

    # where the time goes: the same three steps, timed apart (median of RUNS)
    plan_s, save_s = [], []
    det_s: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for _ in range(RUNS):
        t0 = time.perf_counter()
        plan = scan_plan(**kw)
        plan_s.append(time.perf_counter() - t0)
        signals = []
        for det in plan.detectors:
            one = type(plan)(**{**plan.__dict__, "detectors": (det,)})
            t0 = time.perf_counter()
            signals += scan_detect(one)
            det_s[det.name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scan_save(plan, signals)
        save_s.append(time.perf_counter() - t0)

    med = statistics.median
    label = f"{connection.vendor} ({Path(connection.settings_dict['NAME']).name})"
    print(f"  {label}: {len(symbols)} markets x {len(STRATEGIES)} strategies, 1h, 500 candles each")
    print(
        f"  full scan (scan_run, saved): median {med(totals):.3f} s, max {max(totals):.3f} s over {RUNS} runs; "
        f"{found} passing signals stored per scan ({MarketScan.objects.count()} scans in the table)"
    )
    detect = sum(med(v) for v in det_s.values())
    print(f"  plan (read candles): {med(plan_s):.3f} s; detect: {detect:.3f} s; save: {med(save_s):.3f} s")
    for name, v in det_s.items():
        print(f"    detect {name:<13} {med(v):.3f} s  ({med(v) / len(symbols) * 1000:.2f} ms per market)")
    print(f"  target <= {TARGET_S:g} s: {'met' if med(totals) <= TARGET_S else 'NOT met'}")
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        scan_run(**kw)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(20)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="market7-bench-scan-") as tmp:
        db = Path(tmp) / "bench_scan.sqlite3"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING"}
        args = [sys.executable, __file__, "--worker"] + [a for a in ("--profile",) if a in sys.argv]
        return subprocess.run(args, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(profile="--profile" in sys.argv)
    else:
        sys.exit(main())
