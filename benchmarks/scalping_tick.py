"""Benchmark: the scalping tick path (:class:`strategies.signals.scalping_tick.ScalpingTick`) —
latency of one ``tick`` and ticks per second on one core, 100 symbols.

Data: the real Binance 1m samples ``../shared/data/ohlcv/spot/{BTC,ETH}USDT-1m.csv.gz`` (the
bundled BTC/USDT 5m file when they are absent). Symbol ``k`` replays file ``k % 2`` from candle
``OFFSET·k`` (so the 100 symbols are at different places of the series), scaled by ``1 + k/1000``.
Each symbol is warmed up with :data:`WARMUP` closed candles (``update``), then for each of
:data:`CANDLES` candles four ticks per symbol — open, high, low, close, each a quarter of the
candle's volume — round-robin over the 100 symbols (symbol 0's open, symbol 1's open ...),
then the closed candle of every symbol (``update``).

Printed: p50 / p99 / max µs per tick (each tick timed alone with ``perf_counter_ns``; the
timer's own cost, printed too, is included), ticks/s of an untimed pass over the same ticks
(one core, GC on), and µs per ``update``. Targets (issue 11 §5): p99 <= 40 µs, >= 100k ticks/s.

    .venv/bin/python benchmarks/scalping_tick.py            # figures
    .venv/bin/python benchmarks/scalping_tick.py --profile  # + cProfile of the untimed pass
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "ohlcv" / "spot"
SYMBOLS = 100
WARMUP = 100
CANDLES = 500
OFFSET = 300
TARGET_P99_US = 40.0
TARGET_RATE = 100_000


def _pct(values: list[int], q: float) -> int:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))]


def _series() -> tuple[list[list[tuple]], str]:
    from strategies.engine.feed import load_csv

    files = [SHARED / "BTCUSDT-1m.csv.gz", SHARED / "ETHUSDT-1m.csv.gz"]
    if not all(f.exists() for f in files):
        files = [ROOT / "trading" / "data" / "bundled" / "BTCUSDT-5m.csv.gz"]
    data = [load_csv(f) for f in files]
    need = WARMUP + CANDLES
    out = []
    for k in range(SYMBOLS):
        cd = data[k % len(data)]
        start = (OFFSET * k) % (len(cd) - need)
        m = 1.0 + k / 1000
        sl = slice(start, start + need)
        out.append(
            [
                (t, o * m, h * m, lo * m, c * m, v)
                for t, o, h, lo, c, v in zip(
                    cd.time[sl].tolist(),
                    cd.open[sl].tolist(),
                    cd.high[sl].tolist(),
                    cd.low[sl].tolist(),
                    cd.close[sl].tolist(),
                    cd.volume[sl].tolist(),
                    strict=True,
                )
            ]
        )
    return out, ", ".join(f.name for f in files)


def _warm(series):
    from strategies.signals.scalping_tick import ScalpingTick

    s = ScalpingTick()
    for k, rows in enumerate(series):
        for row in rows[:WARMUP]:
            s.update(f"S{k}/USDT", row)
    return s


def _ticks(series, i: int) -> list[tuple[str, float, float]]:
    """The round-robin ticks of candle ``i`` (after warm-up) of every symbol."""
    out = []
    for j in range(1, 5):  # open, high, low, close
        for k, rows in enumerate(series):
            row = rows[WARMUP + i]
            out.append((f"S{k}/USDT", row[j], row[5] / 4))
    return out


def main() -> None:
    sys.path.insert(0, str(ROOT))
    profile = "--profile" in sys.argv
    series, source = _series()
    plan = [_ticks(series, i) for i in range(CANDLES)]
    closes = [[(f"S{k}/USDT", rows[WARMUP + i]) for k, rows in enumerate(series)] for i in range(CANDLES)]
    n_ticks = sum(len(t) for t in plan)

    # timed one by one
    s = _warm(series)
    tick, update, clock = s.tick, s.update, time.perf_counter_ns
    lat: list[int] = []
    upd: list[int] = []
    passed = 0
    for i in range(CANDLES):
        for sym, price, vol in plan[i]:
            t0 = clock()
            r = tick(sym, price, vol)
            lat.append(clock() - t0)
            passed += r is not None and r.passed
        for sym, row in closes[i]:
            t0 = clock()
            update(sym, row)
            upd.append(clock() - t0)
    overhead = min(-(clock() - clock()) for _ in range(1000))

    # untimed: throughput (ticks only)
    s = _warm(series)
    tick, update = s.tick, s.update
    spent = 0.0
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    for i in range(CANDLES):
        t0 = time.perf_counter()
        for sym, price, vol in plan[i]:
            tick(sym, price, vol)
        spent += time.perf_counter() - t0
        for sym, row in closes[i]:
            update(sym, row)
    if prof is not None:
        prof.disable()

    rate = n_ticks / spent
    p50, p99, mx = (_pct(lat, 50) / 1000, _pct(lat, 99) / 1000, max(lat) / 1000)
    print(f"  data: {source}; {SYMBOLS} symbols x {CANDLES} candles x 4 ticks = {n_ticks} ticks ({WARMUP} warm-up)")
    print(f"  tick: p50 {p50:.2f} us, p99 {p99:.2f} us, max {mx:.0f} us (timer ~{overhead / 1000:.2f} us included)")
    print(f"  tick rate: {rate:,.0f} ticks/s on one core (untimed pass); passing scores seen: {passed}")
    print(f"  update (closed candle): p50 {_pct(upd, 50) / 1000:.2f} us, p99 {_pct(upd, 99) / 1000:.2f} us")
    ok = p99 <= TARGET_P99_US and rate >= TARGET_RATE
    print(f"  target p99 <= {TARGET_P99_US:g} us and >= {TARGET_RATE:,} ticks/s: {'met' if ok else 'NOT met'}")
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
