"""Candle services: import CSV files, fetch from an exchange through ccxt, upsert in bulk.

The one entry point for candle writes; the work is split by seam and re-exported here, so
callers import everything from this module:

* :mod:`trading.services.candle_files` — the file format, names, reading, row validation
  (:func:`validate_candles`), gaps, and the shared :class:`CandleArrays` / :class:`Rejection`
  / :class:`Gap` types;
* :mod:`trading.services.candle_upsert` — :func:`candles_upsert` (binary COPY on Postgres,
  compare-then-``executemany`` on SQLite);
* :mod:`trading.services.candle_fetch` — :func:`candles_fetch` through ccxt;
* here — :func:`candles_import` of one file (validate all, then one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ccxt
from django.db import connection, transaction

from trading.exchanges import ExchangeRequestError
from trading.models.market import Candle, MarkCandle
from trading.services.candle_fetch import FETCH_LIMIT as FETCH_LIMIT
from trading.services.candle_fetch import CandleFetchError, FetchReport, SymbolFetch, candles_fetch
from trading.services.candle_files import HEADER as HEADER
from trading.services.candle_files import MAX_OPEN_TIME_MS as MAX_OPEN_TIME_MS
from trading.services.candle_files import MAX_PRICE as MAX_PRICE
from trading.services.candle_files import MAX_VOLUME as MAX_VOLUME
from trading.services.candle_files import SUPPORTED_TIMEFRAMES as SUPPORTED_TIMEFRAMES
from trading.services.candle_files import VALUE_COLUMNS as VALUE_COLUMNS
from trading.services.candle_files import (
    CandleArrays,
    CandleImportError,
    Gap,
    Rejection,
    bundled_candle_files,
    find_gaps,
    parse_candle_filename,
    parse_data_filename,
    read_candle_file,
    validate_candles,
)
from trading.services.candle_files import fmt_ms as fmt_ms
from trading.services.candle_files import fmt_number as fmt_number
from trading.services.candle_upsert import UpsertCounts, candles_upsert
from trading.services.candle_upsert import _write_sqlite as _write_sqlite
from trading.services.funding import funding_upsert, read_funding_file
from trading.services.markets import market_ensure, split_exchange_symbol


@dataclass
class ImportReport:
    """What :func:`candles_import` did with one file."""

    file: str
    exchange: str
    symbol: str
    market_type: str
    timeframe: str  # "" for funding files
    kind: str = "last"  # last (last-price candles) | mark (mark-price candles) | funding (funding rates)
    rows: int = 0  # data rows in the file
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # all of them, in line order
    gaps: list[Gap] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None

    @property
    def imported(self) -> int:
        return self.inserted + self.updated + self.unchanged


def candles_import(
    *, path: Path | str, exchange: str = "binance", market_type: str = "spot", skip_invalid: bool = False
) -> ImportReport:
    """Import one market-data file for ``exchange`` (ccxt id) as ``market_type`` (spot | swap).

    The symbol, kind and timeframe come from the file name (:func:`parse_data_filename`):
    ``BTCUSDT-1h.csv.gz`` -> last-price candles of ``BTC/USDT`` (``BTC/USDT:USDT`` when swap);
    ``BTCUSDT-1h-mark.csv.gz`` -> mark-price candles (:class:`MarkCandle`) and
    ``BTCUSDT-funding.csv.gz`` -> funding rates (:class:`FundingRate`, see
    :mod:`trading.services.funding`), both of a perpetual: ``market_type`` must be swap. The whole file is validated first; then, in one
    transaction, the Exchange/Market rows are created when missing and the valid rows upserted.

    Raises CandleImportError (message ``"<file> line <n>: <reason>"`` for the first bad row;
    ``.rejections`` lists all) when a row is invalid and ``skip_invalid`` is false — nothing is
    written then. With ``skip_invalid`` the valid rows are imported and the report lists the
    rejected ones (every row rejected: nothing written, not even the Market row). Bad file name
    / header / gzip, or a header without rows: CandleImportError, nothing written.
    """
    path = Path(path)
    if exchange not in ccxt.exchanges:
        raise CandleImportError(f"unknown exchange {exchange!r}: not a ccxt exchange id (e.g. binance, kraken, okx)")
    exchange_symbol, kind, timeframe = parse_data_filename(path)
    try:
        parts = split_exchange_symbol(exchange_symbol, market_type=market_type)
    except ValueError as exc:
        raise CandleImportError(f"{path.name}: {exc}") from None
    if kind != "last" and market_type != "swap":
        what = "mark prices" if kind == "mark" else "funding rates"
        raise CandleImportError(f"{path.name}: {what} belong to perpetuals; import with market_type swap")
    if kind == "funding":
        return _funding_import(path, exchange, exchange_symbol, parts.symbol, skip_invalid)
    candles, rejections, rows = read_candle_file(path, timeframe=timeframe)
    if rejections and not skip_invalid:
        raise CandleImportError(f"{path.name} {rejections[0]}", rejections=rejections)
    if not rows:
        # A header and nothing else is a truncated download, not an empty market: refuse it
        # before the Exchange/Market rows are written.
        raise CandleImportError(f"{path.name} line 2: no candle rows after the header; nothing imported")
    report = ImportReport(path.name, exchange, parts.symbol, market_type, timeframe, kind=kind, rows=rows)
    report.rejected, report.rejections = len(rejections), rejections
    report.gaps = find_gaps(candles.time, timeframe=timeframe)
    if len(candles):
        report.first_ms, report.last_ms = int(candles.time[0]), int(candles.time[-1])
    else:
        return report  # skip_invalid and every row rejected: nothing written, no empty market
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # This transaction only holds re-importable market data: don't wait for the WAL
            # flush at commit (a crash can lose at most the last moments' imports, never
            # consistency; re-running the import restores them). Scoped to this transaction.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        market = market_ensure(exchange=exchange, exchange_symbol=exchange_symbol, market_type=market_type)
        model = MarkCandle if kind == "mark" else Candle
        counts = candles_upsert(market=market, timeframe=timeframe, candles=candles, model=model)
    report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
    return report


def _funding_import(path: Path, exchange: str, exchange_symbol: str, symbol: str, skip_invalid: bool) -> ImportReport:
    """The funding-file branch of :func:`candles_import` (same all-or-nothing rule)."""
    rows, rejections, count = read_funding_file(path)
    if rejections and not skip_invalid:
        raise CandleImportError(f"{path.name} {rejections[0]}", rejections=rejections)
    if not count:
        raise CandleImportError(f"{path.name} line 2: no funding rows after the header; nothing imported")
    report = ImportReport(path.name, exchange, symbol, "swap", "", kind="funding", rows=count)
    report.rejected, report.rejections = len(rejections), rejections
    if not len(rows):
        return report
    report.first_ms, report.last_ms = rows.time[0], rows.time[-1]
    with transaction.atomic():
        market = market_ensure(exchange=exchange, exchange_symbol=exchange_symbol, market_type="swap")
        report.inserted, report.updated, report.unchanged = funding_upsert(market=market, rows=rows)
    return report


__all__ = [
    "CandleArrays",
    "CandleFetchError",
    "CandleImportError",
    "ExchangeRequestError",
    "FetchReport",
    "Gap",
    "ImportReport",
    "Rejection",
    "SymbolFetch",
    "UpsertCounts",
    "bundled_candle_files",
    "candles_fetch",
    "candles_import",
    "candles_upsert",
    "find_gaps",
    "parse_candle_filename",
    "parse_data_filename",
    "read_candle_file",
    "validate_candles",
]
