"""``manage.py ml_features``: write the ML feature rows of stored candles to a CSV file.

Example::

    python manage.py ml_features --symbols BTC/USDT,ETH/USDT --timeframe 1h \\
        --start 2025-01-01 --end 2025-02-01 --csv out.csv

One row per (symbol, candle) with open time in ``[--start, --end)`` (UTC; a bare date is its
midnight): ``time`` (ISO UTC), ``symbol``, then every feature of
:data:`mlops.core.features.FEATURE_NAMES` (docs/ml.md "Features"). Candles before ``--start``
(up to 2000 of them) are read as warm-up so the first rows are complete wherever that history
is stored; BTC/USDT is loaded as the market reference. Unknown symbol or timeframe, bad or
reversed dates, or a symbol without candles in the window exit non-zero with a one-line reason
and write nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mlops.features_io import FeatureRowsError, feature_rows_load, feature_rows_write_csv, parse_utc


class Command(BaseCommand):
    help = "Write the ML features of stored candles (one row per symbol and candle) to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe (default 1h)")
        parser.add_argument("--start", required=True, help="first candle open time, UTC (YYYY-MM-DD or ISO)")
        parser.add_argument("--end", required=True, help="end (exclusive), UTC (YYYY-MM-DD or ISO)")
        parser.add_argument("--csv", required=True, type=Path, dest="csv_path", help="output CSV file")
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets (default binance)")

    def handle(self, *args, **opts):
        try:
            rows = feature_rows_load(
                symbols=opts["symbols"].split(","),
                timeframe=opts["timeframe"],
                start=parse_utc(opts["start"], "start"),
                end=parse_utc(opts["end"], "end"),
                exchange=opts["exchange"],
            )
        except FeatureRowsError as exc:
            raise CommandError(str(exc)) from None
        path = opts["csv_path"]
        tmp = path.with_name(path.name + ".partial")
        try:
            n = feature_rows_write_csv(rows, tmp)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CommandError(f"cannot write --csv {path}: {exc}") from None
        self.stdout.write(
            f"{n} rows ({len(rows.frames)} symbol(s) × {rows.timeframe}, {len(rows.frames[next(iter(rows.frames))].names)} "
            f"features) written to {path}"
        )
