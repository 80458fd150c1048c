"""``import_candles``: import candle CSV files (the ``../shared/data`` format) into the database.

Thin: parses options, calls :func:`trading.services.candles.candles_import` per file, prints.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trading.services.candles import CandleImportError, bundled_candle_files, candles_import, fmt_ms


def _what(report) -> str:
    return {"mark": f"{report.timeframe} mark", "funding": "funding"}.get(report.kind, report.timeframe)


class Command(BaseCommand):
    help = (
        "Import OHLCV candle files named <SYMBOL>-<timeframe>.csv.gz (or .csv), header "
        "open_time,open,high,low,close,volume (open_time in epoch ms UTC). Every row is validated "
        "first; a file with a bad row imports nothing unless --skip-invalid. Re-importing is a no-op. "
        "With --market-type swap also <SYMBOL>-<timeframe>-mark.csv.gz (mark-price candles) and "
        "<SYMBOL>-funding.csv.gz (header time,funding_rate: funding rates, fraction per event)."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", metavar="FILE", help="candle files, e.g. BTCUSDT-1h.csv.gz")
        parser.add_argument("--exchange", default="binance", help="ccxt exchange id (default: binance)")
        parser.add_argument(
            "--market-type", choices=["spot", "swap"], default="spot", help="spot (BTC/USDT) or swap (BTC/USDT:USDT)"
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="import the valid rows of a file and report the rejected ones"
        )
        parser.add_argument(
            "--bundled", action="store_true", help="import every file of the bundled data set (trading/data/bundled)"
        )
        parser.add_argument(
            "--list-rejected", type=int, default=20, metavar="N", help="rejected rows listed per file (default 20)"
        )

    def handle(self, *args, files, exchange, market_type, skip_invalid, bundled, list_rejected, **options):
        paths = [Path(f) for f in files]
        if bundled:
            paths = bundled_candle_files() + paths
        if not paths:
            raise CommandError("no files given; pass FILE... or --bundled")
        failures: list[str] = []
        totals = dict(rows=0, inserted=0, updated=0, unchanged=0, rejected=0)
        started = time.perf_counter()
        for number, path in enumerate(paths, start=1):
            tick = time.perf_counter()
            try:
                report = candles_import(
                    path=path, exchange=exchange, market_type=market_type, skip_invalid=skip_invalid
                )
            except CandleImportError as exc:
                message = str(exc)
                if exc.rejections:
                    message += f"\n  {len(exc.rejections)} invalid row(s) in this file; nothing was imported from it (--skip-invalid imports the valid rows)"
                failures.append(message)
                self.stderr.write(f"[{number}/{len(paths)}] {message}")
                continue
            for key in totals:
                totals[key] += getattr(report, key)
            span = f" {fmt_ms(report.first_ms)} → {fmt_ms(report.last_ms)} UTC" if report.first_ms is not None else ""
            self.stdout.write(
                f"[{number}/{len(paths)}] {report.file}: {report.exchange} {report.symbol} {_what(report)}{span}: "
                f"{report.rows} rows, {report.inserted} inserted, {report.updated} updated, "
                f"{report.unchanged} unchanged, {report.rejected} rejected ({time.perf_counter() - tick:.2f}s)"
            )
            for rejection in report.rejections[:list_rejected]:
                self.stdout.write(f"  rejected {rejection}")
            if report.rejected > list_rejected:
                self.stdout.write(f"  ... and {report.rejected - list_rejected} more rejected rows")
            for gap in report.gaps:
                self.stdout.write(f"  {gap}")
        self.stdout.write(
            f"{len(paths) - len(failures)} file(s) imported: {totals['rows']} rows, {totals['inserted']} inserted, "
            f"{totals['updated']} updated, {totals['unchanged']} unchanged, {totals['rejected']} rejected "
            f"in {time.perf_counter() - started:.2f}s"
        )
        if failures:
            if len(failures) == 1:
                raise CommandError(failures[0])
            raise CommandError(f"{len(failures)} of {len(paths)} files failed; first: {failures[0]}")
