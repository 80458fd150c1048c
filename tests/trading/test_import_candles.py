"""import_candles: file names, symbol mapping, validation (nothing written on a bad row),
--skip-invalid, idempotent upserts, exact updates, gap reports — on real Binance data."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from trading.models.market import Candle, Exchange, Market
from trading.selectors.candles import EPOCH, datetime_to_ms
from trading.services.candles import (
    CandleImportError,
    Gap,
    Rejection,
    _write_sqlite,
    candles_import,
    parse_candle_filename,
)
from trading.services.markets import split_exchange_symbol

HEADER = "open_time,open,high,low,close,volume"
HOUR = 3_600_000


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        return handle.read().splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    data = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(data)
    else:
        path.write_text(data)
    return path


@pytest.fixture
def btc_lines(bundled_data_dir) -> list[str]:
    """Header + the 4320 real BTCUSDT 1h rows of the bundled set."""
    return read_lines(bundled_data_dir / "BTCUSDT-1h.csv.gz")


def row(line: str) -> tuple[int, float, float, float, float, float]:
    t, *values = line.split(",")
    return (int(t), *map(float, values))


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange_symbol", "market_type", "symbol", "base", "quote", "settle"),
    [
        ("BTCUSDT", "spot", "BTC/USDT", "BTC", "USDT", ""),
        ("BTCUSDT", "swap", "BTC/USDT:USDT", "BTC", "USDT", "USDT"),
        ("1000PEPEUSDT", "spot", "1000PEPE/USDT", "1000PEPE", "USDT", ""),
        ("1000PEPEUSDT", "swap", "1000PEPE/USDT:USDT", "1000PEPE", "USDT", "USDT"),
        ("ETHBTC", "spot", "ETH/BTC", "ETH", "BTC", ""),
        ("USDCUSDT", "spot", "USDC/USDT", "USDC", "USDT", ""),
        ("BTCFDUSD", "spot", "BTC/FDUSD", "BTC", "FDUSD", ""),
        ("ETHBUSD", "spot", "ETH/BUSD", "ETH", "BUSD", ""),
        ("SOLBNB", "spot", "SOL/BNB", "SOL", "BNB", ""),
        ("BTCEUR", "spot", "BTC/EUR", "BTC", "EUR", ""),
        ("BTCTRY", "spot", "BTC/TRY", "BTC", "TRY", ""),
        ("LINKETH", "spot", "LINK/ETH", "LINK", "ETH", ""),
        ("ETHUSDC", "spot", "ETH/USDC", "ETH", "USDC", ""),
    ],
)
def test_split_exchange_symbol(exchange_symbol, market_type, symbol, base, quote, settle):
    parts = split_exchange_symbol(exchange_symbol, market_type=market_type)
    assert (parts.symbol, parts.base, parts.quote, parts.settle, parts.type) == (
        symbol,
        base,
        quote,
        settle,
        market_type,
    )
    assert parts.exchange_symbol == exchange_symbol


@pytest.mark.parametrize(
    ("exchange_symbol", "message"),
    [
        (
            "BTCXYZ",
            "cannot split 'BTCXYZ': no known quote asset suffix (USDT, USDC, FDUSD, BUSD, BTC, ETH, BNB, EUR, TRY)",
        ),
        ("USDT", "cannot split 'USDT': no known quote asset suffix (USDT, USDC, FDUSD, BUSD, BTC, ETH, BNB, EUR, TRY)"),
        ("btcusdt", "'btcusdt' is not an exchange symbol like BTCUSDT"),
        ("BTC/USDT", "'BTC/USDT' is not an exchange symbol like BTCUSDT"),
    ],
)
def test_split_exchange_symbol_rejects(exchange_symbol, message):
    with pytest.raises(ValueError) as info:
        split_exchange_symbol(exchange_symbol)
    assert str(info.value) == message


def test_split_exchange_symbol_rejects_unknown_type():
    with pytest.raises(ValueError, match="^unknown market type 'future'; use spot or swap$"):
        split_exchange_symbol("BTCUSDT", market_type="future")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTCUSDT-1h.csv.gz", ("BTCUSDT", "1h")),
        ("ETHUSDT-5m.csv", ("ETHUSDT", "5m")),
        ("1000PEPEUSDT-1d.csv.gz", ("1000PEPEUSDT", "1d")),
        ("/some/dir/BTCUSDT-1m.csv.gz", ("BTCUSDT", "1m")),
    ],
)
def test_parse_candle_filename(name, expected):
    assert parse_candle_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "BTCUSDT-1h-mark.csv.gz",
            "BTCUSDT-1h-mark.csv.gz: mark-price candles, not last-price OHLCV (see parse_data_filename)",
        ),
        (
            "BTCUSDT-funding.csv.gz",
            "BTCUSDT-funding.csv.gz: funding rates, not OHLCV candles (see parse_data_filename)",
        ),
        ("BTCUSDT-2h.csv.gz", "BTCUSDT-2h.csv.gz: unsupported timeframe '2h'; use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d"),
        ("BTCUSDT-1h.parquet", "BTCUSDT-1h.parquet: not a candle file; expected <SYMBOL>-<timeframe>.csv.gz or .csv"),
        (
            "BTCUSDT.csv.gz",
            "BTCUSDT.csv.gz: not a candle file name; expected <SYMBOL>-<timeframe>.csv.gz, e.g. BTCUSDT-1h.csv.gz",
        ),
    ],
)
def test_parse_candle_filename_rejects(name, message):
    with pytest.raises(CandleImportError) as info:
        parse_candle_filename(name)
    assert str(info.value) == message


# --- import: exact values, idempotency, updates ---------------------------------------------------


@pytest.mark.django_db
def test_import_bundled_btc_exact_values_then_reimport_changes_nothing(bundled_data_dir, btc_lines):
    path = bundled_data_dir / "BTCUSDT-1h.csv.gz"
    first = candles_import(path=path, exchange="binance", market_type="spot")

    assert (first.rows, first.inserted, first.updated, first.unchanged, first.rejected) == (4320, 4320, 0, 0, 0)
    assert first.symbol == "BTC/USDT" and first.timeframe == "1h" and first.gaps == []
    assert first.first_ms == 1741132800000  # 2025-03-05 00:00 UTC
    assert first.last_ms == 1756681200000  # 2025-08-31 23:00 UTC
    market = Market.objects.get(exchange__code="binance", symbol="BTC/USDT")
    assert (market.exchange_symbol, market.base, market.quote, market.settle, market.type) == (
        "BTCUSDT",
        "BTC",
        "USDT",
        "",
        "spot",
    )
    assert (market.precision, market.limits) == ({}, {})
    assert Exchange.objects.get(code="binance").name == "Binance"

    last_time, *last_values = row(btc_lines[-1])
    stored = Candle.objects.filter(market=market, timeframe="1h").latest("open_time")
    assert datetime_to_ms(stored.open_time) == last_time
    assert [stored.open, stored.high, stored.low, stored.close, stored.volume] == last_values
    assert stored.close == 108246.35  # the real BTC/USDT close of 2025-08-31 23:00 UTC
    first_time, *first_values = row(btc_lines[1])
    stored = Candle.objects.filter(market=market, timeframe="1h").earliest("open_time")
    assert (datetime_to_ms(stored.open_time), [stored.open, stored.high, stored.low, stored.close, stored.volume]) == (
        first_time,
        first_values,
    )

    second = candles_import(path=path, exchange="binance", market_type="spot")
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 0, 4320, 0)
    assert Candle.objects.count() == 4320
    assert Market.objects.count() == 1 and Exchange.objects.count() == 1


@pytest.mark.django_db
def test_corrected_value_updates_exactly_one_row(tmp_path, btc_lines):
    original = write_lines(tmp_path / "BTCUSDT-1h.csv.gz", btc_lines)
    candles_import(path=original, exchange="binance", market_type="spot")

    t, o, h, lo, c, v = btc_lines[100].split(",")
    corrected_volume = float(v) + 1.25
    fixed = list(btc_lines)
    fixed[100] = ",".join([t, o, h, lo, c, repr(corrected_volume)])
    (tmp_path / "fixed").mkdir()
    corrected = write_lines(tmp_path / "fixed" / "BTCUSDT-1h.csv.gz", fixed)
    report = candles_import(path=corrected, exchange="binance", market_type="spot")

    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 4319)
    assert Candle.objects.count() == 4320
    stored = Candle.objects.get(open_time__exact=_dt(int(t)))
    assert stored.volume == corrected_volume
    assert (stored.open, stored.high, stored.low, stored.close) == (float(o), float(h), float(lo), float(c))


def _dt(ms: int):
    from trading.selectors.candles import _MS, EPOCH

    return EPOCH + ms * _MS


@pytest.mark.django_db
def test_new_rows_are_inserted_next_to_existing_ones(tmp_path, btc_lines):
    candles_import(
        path=write_lines(tmp_path / "BTCUSDT-1h.csv", btc_lines[:101]), exchange="binance", market_type="spot"
    )
    (tmp_path / "more").mkdir()
    report = candles_import(
        path=write_lines(tmp_path / "more" / "BTCUSDT-1h.csv", btc_lines[:1] + btc_lines[51:151]), exchange="binance"
    )
    assert (report.inserted, report.updated, report.unchanged) == (50, 0, 50)
    assert Candle.objects.count() == 150


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("timeframe", "step_ms", "first_ms"),
    [("15m", 900_000, 946_684_800_000 - 2 * 900_000), ("1d", 86_400_000, 1_735_689_600_000)],
)
def test_first_import_stores_exact_times_and_values_for_other_timeframes(tmp_path, timeframe, step_ms, first_ms):
    """A fresh range goes by binary COPY straight into the table on PostgreSQL (by bulk_create on
    SQLite): times (here across 2000-01-01, PostgreSQL's own epoch) and values are exact."""
    lines = [HEADER] + [
        f"{first_ms + k * step_ms},{100 + k}.25,{101 + k}.5,{99 + k}.125,{100 + k}.75,{k * 1.5}" for k in range(5)
    ]
    report = candles_import(path=write_lines(tmp_path / f"ETHBTC-{timeframe}.csv", lines), exchange="binance")
    assert (report.inserted, report.updated, report.unchanged) == (5, 0, 0)
    stored = list(
        Candle.objects.filter(market__symbol="ETH/BTC", timeframe=timeframe)
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume")
    )
    assert [(datetime_to_ms(t), *values) for t, *values in stored] == [row(line) for line in lines[1:]]


@pytest.mark.django_db
def test_sqlite_rows_store_open_time_in_djangos_own_format(tmp_path, btc_lines):
    """SQLite compares datetimes as text: the executemany writer must store exactly what the ORM
    would (``adapt_datetimefield_value``), for whole seconds (numpy path) and sub-seconds."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's text datetimes only")
    candles_import(path=write_lines(tmp_path / "BTCUSDT-1h.csv", btc_lines[:4]), exchange="binance")
    market = Market.objects.get(symbol="BTC/USDT")
    _write_sqlite(market, "1m", np.array([1_735_689_600_250, 1_735_689_660_000]), np.ones((2, 5)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT timeframe, CAST(open_time AS TEXT) FROM trading_candle ORDER BY timeframe, open_time")
        stored = cursor.fetchall()
    assert stored == [
        ("1h", "2025-03-05 00:00:00"),
        ("1h", "2025-03-05 01:00:00"),
        ("1h", "2025-03-05 02:00:00"),
        ("1m", "2025-01-01 00:00:00.250000"),
        ("1m", "2025-01-01 00:01:00"),
    ]
    adapt = connection.ops.adapt_datetimefield_value
    orm_times = [EPOCH + timedelta(milliseconds=row(line)[0]) for line in btc_lines[1:4]]
    orm_times += [datetime(2025, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC), datetime(2025, 1, 1, 0, 1, tzinfo=UTC)]
    assert [stamp for _, stamp in stored] == [adapt(t) for t in orm_times]
    assert Candle.objects.filter(market=market, open_time__gte=orm_times[1], timeframe="1h").count() == 2


@pytest.mark.django_db
def test_swap_import_creates_the_perpetual_market(tmp_path, btc_lines):
    report = candles_import(
        path=write_lines(tmp_path / "BTCUSDT-1h.csv", btc_lines[:25]), exchange="binance", market_type="swap"
    )
    assert report.symbol == "BTC/USDT:USDT"
    market = Market.objects.get()
    assert (market.symbol, market.base, market.quote, market.settle, market.type) == (
        "BTC/USDT:USDT",
        "BTC",
        "USDT",
        "USDT",
        "swap",
    )
    assert Candle.objects.filter(market=market).count() == 24


# --- validation: a bad row imports nothing -----------------------------------------------------


def _replace(lines: list[str], number: int, text: str) -> list[str]:
    """Replace 1-based file line ``number``."""
    out = list(lines)
    out[number - 1] = text
    return out


def _with_field(lines: list[str], number: int, column: int, value: str) -> list[str]:
    fields = lines[number - 1].split(",")
    fields[column] = value
    return _replace(lines, number, ",".join(fields))


T42 = 1741132800000 + 40 * HOUR  # open time on line 42 of the bundled BTC file
CASES = {
    "high below close": (
        lambda L: _replace(L, 42, f"{T42},41000.0,41000.5,40900.0,41200.0,12.5"),
        "BTCUSDT-1h.csv.gz line 42: high 41000.5 < close 41200.0",
    ),
    "high below open": (
        lambda L: _replace(L, 42, f"{T42},41300.0,41000.5,40900.0,41200.0,12.5"),
        "BTCUSDT-1h.csv.gz line 42: high 41000.5 < open 41300.0",
    ),
    "low above open": (
        lambda L: _replace(L, 42, f"{T42},41000.0,41500.0,41100.0,41200.0,12.5"),
        "BTCUSDT-1h.csv.gz line 42: low 41100.0 > open 41000.0",
    ),
    "low not positive": (
        lambda L: _replace(L, 42, f"{T42},0.00000965,0.00001,0,0.000009,12.5"),
        "BTCUSDT-1h.csv.gz line 42: low 0.0 <= 0",
    ),
    "negative volume": (lambda L: _with_field(L, 42, 5, "-1.5"), "BTCUSDT-1h.csv.gz line 42: volume -1.5 < 0"),
    "bad number": (
        lambda L: _with_field(L, 42, 4, "86800.3x"),
        "BTCUSDT-1h.csv.gz line 42: close '86800.3x' is not a number",
    ),
    "NaN": (lambda L: _with_field(L, 42, 5, "NaN"), "BTCUSDT-1h.csv.gz line 42: volume is NaN"),
    "inf": (lambda L: _with_field(L, 42, 2, "inf"), "BTCUSDT-1h.csv.gz line 42: high is inf"),
    "empty field": (lambda L: _with_field(L, 42, 3, ""), "BTCUSDT-1h.csv.gz line 42: low is empty"),
    "float time": (
        lambda L: _with_field(L, 42, 0, f"{T42}.0"),
        f"BTCUSDT-1h.csv.gz line 42: open_time '{T42}.0' is not an integer epoch ms",
    ),
    "too many fields": (lambda L: _replace(L, 42, L[41] + ",7"), "BTCUSDT-1h.csv.gz line 42: expected 6 fields, got 7"),
    "too few fields": (
        lambda L: _replace(L, 42, L[41].rsplit(",", 1)[0]),
        "BTCUSDT-1h.csv.gz line 42: expected 6 fields, got 5",
    ),
    "blank line": (lambda L: _replace(L, 42, ""), "BTCUSDT-1h.csv.gz line 42: empty line"),
    "misaligned time": (
        lambda L: _with_field(L, 42, 0, str(T42 + 30_000)),
        f"BTCUSDT-1h.csv.gz line 42: open_time {T42 + 30_000} (2025-03-06 16:00 UTC) is not aligned to 1h",
    ),
    "duplicate time": (
        lambda L: _with_field(L, 42, 0, str(T42 - HOUR)),
        f"BTCUSDT-1h.csv.gz line 42: duplicate open_time {T42 - HOUR} (2025-03-06 15:00 UTC), first on line 41",
    ),
    "out of order": (
        lambda L: L[:41] + [L[42], L[41]] + L[43:],
        f"BTCUSDT-1h.csv.gz line 43: open_time {T42} (2025-03-06 16:00 UTC) is before the previous row's "
        f"{T42 + HOUR} (2025-03-06 17:00 UTC); times must be strictly increasing",
    ),
    "time in seconds": (
        lambda L: _with_field(L, 42, 0, str(T42 * 1000)),
        f"BTCUSDT-1h.csv.gz line 42: open_time {T42 * 1000} out of range (epoch ms 1970..2100)",
    ),
    "wrong header": (
        lambda L: _replace(L, 1, "time,open,high,low,close,volume"),
        "BTCUSDT-1h.csv.gz line 1: header must be exactly 'open_time,open,high,low,close,volume', "
        "got 'time,open,high,low,close,volume'",
    ),
    "missing header": (
        lambda L: L[1:],
        "BTCUSDT-1h.csv.gz line 1: header must be exactly 'open_time,open,high,low,close,volume', "
        "got '1741132800000,87281.98,87281.98,86334.53,86800.36,1522.96488'",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CASES))
def test_bad_row_rejects_the_whole_file_and_writes_nothing(tmp_path, btc_lines, case):
    mutate, message = CASES[case]
    path = write_lines(tmp_path / "BTCUSDT-1h.csv.gz", mutate(btc_lines))
    with pytest.raises(CandleImportError) as info:
        candles_import(path=path, exchange="binance", market_type="spot")
    assert str(info.value) == message
    assert (Candle.objects.count(), Market.objects.count(), Exchange.objects.count()) == (0, 0, 0)

    with pytest.raises(CommandError) as info:
        call_command("import_candles", "--exchange", "binance", "--market-type", "spot", str(path))
    assert str(info.value).splitlines()[0] == message
    assert (Candle.objects.count(), Market.objects.count(), Exchange.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_bad_row_in_second_file_keeps_existing_data(tmp_path, btc_lines, bundled_data_dir):
    candles_import(path=bundled_data_dir / "BTCUSDT-1h.csv.gz", exchange="binance")
    before = list(Candle.objects.order_by("open_time").values_list("open_time", "close"))
    bad = _with_field(btc_lines, 4000, 4, "1e999x")
    with pytest.raises(CandleImportError, match="line 4000: close '1e999x' is not a number$"):
        candles_import(
            path=write_lines(tmp_path / "BTCUSDT-1h.csv.gz", _with_field(bad, 10, 5, "7")), exchange="binance"
        )
    assert list(Candle.objects.order_by("open_time").values_list("open_time", "close")) == before


@pytest.mark.django_db
def test_error_lists_every_rejected_row(tmp_path, btc_lines):
    lines = _with_field(_with_field(btc_lines, 7, 5, "-2"), 3, 1, "abc")
    with pytest.raises(CandleImportError) as info:
        candles_import(path=write_lines(tmp_path / "BTCUSDT-1h.csv", lines), exchange="binance")
    assert str(info.value) == "BTCUSDT-1h.csv line 3: open 'abc' is not a number"
    assert info.value.rejections == [Rejection(3, "open 'abc' is not a number"), Rejection(7, "volume -2.0 < 0")]


@pytest.mark.django_db
def test_skip_invalid_imports_exactly_the_good_rows(tmp_path, btc_lines):
    lines = btc_lines[:31]  # header + 30 rows
    lines = _with_field(lines, 3, 4, "oops")
    lines = _with_field(lines, 10, 5, "NaN")
    lines = _with_field(lines, 20, 0, lines[18].split(",")[0])  # duplicate of line 19
    path = write_lines(tmp_path / "BTCUSDT-1h.csv.gz", lines)

    report = candles_import(path=path, exchange="binance", market_type="spot", skip_invalid=True)

    dup = int(lines[18].split(",")[0])
    assert report.rejections == [
        Rejection(3, "close 'oops' is not a number"),
        Rejection(10, "volume is NaN"),
        Rejection(20, f"duplicate open_time {dup} (2025-03-05 17:00 UTC), first on line 19"),
    ]
    assert (report.rows, report.inserted, report.updated, report.unchanged, report.rejected) == (30, 27, 0, 0, 3)
    good = [row(line) for n, line in enumerate(lines, start=1) if n > 1 and n not in (3, 10, 20)]
    stored = [
        (datetime_to_ms(c.open_time), c.open, c.high, c.low, c.close, c.volume)
        for c in Candle.objects.order_by("open_time")
    ]
    assert stored == good
    # The skipped rows leave holes: the gap report names them.
    assert [str(g) for g in report.gaps] == [
        "gap 2025-03-05 01:00 → 2025-03-05 01:00 UTC (1 candle)",
        "gap 2025-03-05 08:00 → 2025-03-05 08:00 UTC (1 candle)",
        "gap 2025-03-05 18:00 → 2025-03-05 18:00 UTC (1 candle)",  # line 20's own hour is gone
    ]


@pytest.mark.django_db
def test_skip_invalid_command_lists_rejected_rows(tmp_path, btc_lines, capsys):
    lines = _with_field(_with_field(btc_lines[:31], 5, 2, "1"), 6, 2, "1")
    path = write_lines(tmp_path / "BTCUSDT-1h.csv.gz", lines)
    call_command("import_candles", "--skip-invalid", "--list-rejected", "1", str(path))
    out = capsys.readouterr().out.splitlines()
    _, open5, _, _, close5, _ = row(lines[4])
    which, value = ("close", close5) if close5 >= open5 else ("open", open5)
    assert out[0] == (
        "[1/1] BTCUSDT-1h.csv.gz: binance BTC/USDT 1h 2025-03-05 00:00 → 2025-03-06 05:00 UTC: "
        f"30 rows, 28 inserted, 0 updated, 0 unchanged, 2 rejected ({out[0].rsplit('(', 1)[1]}"
    )
    assert out[1] == f"  rejected line 5: high 1.0 < {which} {value!r}"
    assert out[2] == "  ... and 1 more rejected rows"
    assert Candle.objects.count() == 28


# --- gaps ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_gap_report_on_a_constructed_file(tmp_path, btc_lines, capsys):
    lines = btc_lines[:11] + btc_lines[14:20]  # drop 2025-03-05 10:00..12:00
    path = write_lines(tmp_path / "BTCUSDT-1h.csv", lines)
    report = candles_import(path=path, exchange="binance")
    assert report.gaps == [Gap(1741132800000 + 10 * HOUR, 1741132800000 + 12 * HOUR, 3)]
    assert [str(g) for g in report.gaps] == ["gap 2025-03-05 10:00 → 2025-03-05 12:00 UTC (3 candles)"]
    (tmp_path / "again").mkdir()
    call_command("import_candles", str(write_lines(tmp_path / "again" / "BTCUSDT-1h.csv", lines)))
    assert "  gap 2025-03-05 10:00 → 2025-03-05 12:00 UTC (3 candles)" in capsys.readouterr().out.splitlines()


@pytest.mark.django_db
@pytest.mark.shared_data
def test_gap_report_on_real_aave_file(shared_data_dir, capsys):
    path = shared_data_dir / "spot" / "AAVEUSDT-1h.csv.gz"
    call_command("import_candles", "--exchange", "binance", "--market-type", "spot", str(path))
    out = capsys.readouterr().out.splitlines()
    assert "  gap 2024-09-07 02:00 → 2024-09-13 23:00 UTC (166 candles)" in out
    assert Candle.objects.filter(market__symbol="AAVE/USDT", timeframe="1h").count() == 14450


@pytest.mark.django_db
@pytest.mark.shared_data
def test_importing_a_real_shared_5m_file_twice_changes_nothing(shared_data_dir):
    path = shared_data_dir / "spot" / "ETHUSDT-5m.csv.gz"
    first = candles_import(path=path, exchange="binance", market_type="spot")
    assert (first.rows, first.inserted, first.gaps) == (26496, 26496, [])
    second = candles_import(path=path, exchange="binance", market_type="spot")
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 26496)
    assert Candle.objects.filter(market__symbol="ETH/USDT", timeframe="5m").count() == 26496
    last = read_lines(path)[-1]
    stored = Candle.objects.filter(timeframe="5m").latest("open_time")
    assert (datetime_to_ms(stored.open_time), stored.open, stored.high, stored.low, stored.close, stored.volume) == row(
        last
    )


@pytest.mark.django_db
@pytest.mark.shared_data
def test_shared_mark_and_funding_files_import(shared_data_dir):
    from decimal import Decimal

    from trading.models.market import FundingRate, MarkCandle

    folder = shared_data_dir / "futures"
    call_command("import_candles", "--market-type", "swap", str(folder / "BTCUSDT-1h-mark.csv.gz"))
    call_command("import_candles", "--market-type", "swap", str(folder / "BTCUSDT-funding.csv.gz"))
    assert (Candle.objects.count(), MarkCandle.objects.count(), FundingRate.objects.count()) == (0, 14616, 1827)
    assert MarkCandle.objects.latest("open_time").close == 108208.4  # 2025-08-31 23:00 UTC
    assert sum(FundingRate.objects.values_list("rate", flat=True)) == Decimal("0.15467260")  # awk sum over the file


# --- the bundled set and the command ---------------------------------------------------------------


@pytest.mark.django_db
def test_import_bundled_twice_duplicates_nothing(capsys, bundled_data_dir):
    call_command("import_candles", "--bundled")
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 12
    assert first[-1].startswith(
        "11 file(s) imported: 51840 rows, 51840 inserted, 0 updated, 0 unchanged, 0 rejected in "
    )
    assert Candle.objects.count() == 51840
    assert Candle.objects.filter(timeframe="1h").count() == 10 * 4320
    assert Candle.objects.filter(timeframe="5m", market__symbol="BTC/USDT").count() == 8640
    assert sorted(Market.objects.values_list("symbol", flat=True)) == sorted(
        f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LINK", "AVAX", "LTC")
    )

    call_command("import_candles", "--bundled")
    second = capsys.readouterr().out.splitlines()
    assert second[-1].startswith(
        "11 file(s) imported: 51840 rows, 0 inserted, 0 updated, 51840 unchanged, 0 rejected in "
    )
    assert Candle.objects.count() == 51840


@pytest.mark.django_db
def test_command_needs_files(tmp_path):
    with pytest.raises(CommandError, match="^no files given; pass FILE... or --bundled$"):
        call_command("import_candles")
    with pytest.raises(CommandError) as info:
        call_command("import_candles", str(tmp_path / "BTCUSDT-1h.csv.gz"))
    assert str(info.value) == f"{tmp_path / 'BTCUSDT-1h.csv.gz'}: no such file"


@pytest.mark.django_db
def test_corrupt_gzip_and_empty_file(tmp_path):
    (tmp_path / "BTCUSDT-1h.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CandleImportError, match=r"^BTCUSDT-1h.csv.gz: not a valid gzip file \("):
        candles_import(path=tmp_path / "BTCUSDT-1h.csv.gz", exchange="binance")
    (tmp_path / "ETHUSDT-1h.csv").write_text("")
    with pytest.raises(CandleImportError) as info:
        candles_import(path=tmp_path / "ETHUSDT-1h.csv", exchange="binance")
    assert (
        str(info.value)
        == "ETHUSDT-1h.csv line 1: empty file, expected the header 'open_time,open,high,low,close,volume'"
    )
    assert Candle.objects.count() == 0


@pytest.mark.django_db
def test_header_only_file_is_refused_and_creates_no_market(tmp_path):
    # (was: imported zero rows and created an empty ETH/BTC market; see test_input_errors.py)
    with pytest.raises(CandleImportError, match="^ETHBTC-1d.csv line 2: no candle rows after the header"):
        candles_import(path=write_lines(tmp_path / "ETHBTC-1d.csv", [HEADER]), exchange="binance")
    assert (Market.objects.count(), Exchange.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_unknown_exchange_is_refused(tmp_path, btc_lines):
    with pytest.raises(ValueError, match="^unknown exchange 'nosuchx': not a ccxt exchange id"):
        candles_import(path=write_lines(tmp_path / "BTCUSDT-1h.csv", btc_lines[:3]), exchange="nosuchx")
    assert Candle.objects.count() == 0
