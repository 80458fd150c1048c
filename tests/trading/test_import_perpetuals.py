"""import_candles for perpetuals: mark-price candles and funding rates (bundled BTCUSDT subset)."""

import gzip
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from trading.models.market import Candle, FundingRate, MarkCandle, Market
from trading.selectors.candles import candles_arrays, datetime_to_ms
from trading.services.candles import CandleImportError, candles_import, parse_data_filename
from trading.services.funding import funding_arrays

FUT = Path(settings.MARKET7_BUNDLED_DATA) / "futures"


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def lines_of(name: str) -> list[str]:
    return gzip.decompress((FUT / name).read_bytes()).decode().splitlines()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTCUSDT-1h.csv.gz", ("BTCUSDT", "last", "1h")),
        ("BTCUSDT-1h-mark.csv.gz", ("BTCUSDT", "mark", "1h")),
        ("ETHUSDT-funding.csv.gz", ("ETHUSDT", "funding", None)),
    ],
)
def test_parse_data_filename(name, expected):
    assert parse_data_filename(name) == expected


def test_parse_data_filename_rejects_bad_mark_timeframe():
    with pytest.raises(CandleImportError, match=r"^BTCUSDT-2h-mark.csv.gz: unsupported timeframe '2h'"):
        parse_data_filename("BTCUSDT-2h-mark.csv.gz")


@pytest.mark.django_db
def test_import_mark_candles_exact_values_and_reimport_is_noop():
    report = candles_import(path=FUT / "BTCUSDT-1h-mark.csv.gz", market_type="swap")
    assert (report.kind, report.symbol, report.timeframe) == ("mark", "BTC/USDT:USDT", "1h")
    assert (report.rows, report.inserted, report.updated, report.unchanged, report.rejected) == (672, 672, 0, 0, 0)
    market = Market.objects.get(symbol="BTC/USDT:USDT")
    assert (market.type, market.settle) == ("swap", "USDT")
    assert Candle.objects.count() == 0  # mark prices never mix into last-price candles
    first = MarkCandle.objects.earliest("open_time")
    assert (datetime_to_ms(first.open_time), first.open, first.high, first.low, first.close, first.volume) == (
        1721606400000,
        68138.0,
        68453.0,
        68006.44425532,
        68158.03137589,
        0.0,
    )
    arrays = candles_arrays(market=market, timeframe="1h", model=MarkCandle)
    assert len(arrays["time"]) == 672 and arrays["close"][-1] == 58390.0
    again = candles_import(path=FUT / "BTCUSDT-1h-mark.csv.gz", market_type="swap")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 672)


@pytest.mark.django_db
def test_import_funding_exact_values_and_update_of_one_rate(tmp_path):
    report = candles_import(path=FUT / "BTCUSDT-funding.csv.gz", market_type="swap")
    assert (report.kind, report.symbol, report.rows, report.inserted, report.rejected) == (
        "funding",
        "BTC/USDT:USDT",
        84,
        84,
        0,
    )
    assert (report.first_ms, report.last_ms) == (1721606400000, 1723996800000)
    rates = list(FundingRate.objects.order_by("time").values_list("rate", flat=True))
    assert rates[0] == Decimal("0.00009136") and rates[-1] == Decimal("-0.00003149")
    assert sum(rates) == Decimal("0.00335607")  # awk over the file: the exact decimal sum
    market = Market.objects.get(symbol="BTC/USDT:USDT")
    arrays = funding_arrays(market=market)
    assert arrays["time"][1] - arrays["time"][0] == 8 * 3600 * 1000 and arrays["rate"][0] == 0.00009136

    lines = lines_of("BTCUSDT-funding.csv.gz")
    lines[5] = lines[5].split(",")[0] + ",0.0002"
    changed = candles_import(path=write(tmp_path / "BTCUSDT-funding.csv.gz", lines), market_type="swap")
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 83)
    assert list(FundingRate.objects.order_by("time").values_list("rate", flat=True))[4] == Decimal("0.0002")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda ls: ls.__setitem__(3, "1721635200000,abc"),
            "BTCUSDT-funding.csv.gz line 4: funding_rate 'abc' is not a number",
        ),
        (
            lambda ls: ls.__setitem__(3, "1721635200001,0.0001"),
            "line 4: time 1721635200001 (2024-07-22 08:00 UTC) is not a whole minute",
        ),
        (
            lambda ls: ls.__setitem__(3, ls[2]),
            "line 4: duplicate time 1721635200000 (2024-07-22 08:00 UTC), first on line 3",
        ),
        (lambda ls: ls.__setitem__(3, "1721664000000,0.5"), "line 4: funding_rate 0.5 beyond ±0.1"),
        (
            lambda ls: ls.__setitem__(0, "time,rate"),
            "line 1: header must be exactly 'time,funding_rate', got 'time,rate'",
        ),
    ],
)
def test_bad_funding_file_imports_nothing(tmp_path, edit, message):
    lines = lines_of("BTCUSDT-funding.csv.gz")
    edit(lines)
    with pytest.raises(CandleImportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        candles_import(path=write(tmp_path / "BTCUSDT-funding.csv.gz", lines), market_type="swap")
    assert FundingRate.objects.count() == 0 and Market.objects.count() == 0


@pytest.mark.django_db
def test_bad_mark_row_imports_nothing(tmp_path):
    lines = lines_of("BTCUSDT-1h-mark.csv.gz")
    t, o, h, lo, c, v = lines[10].split(",")
    lines[10] = ",".join([t, o, str(float(c) - 1000), lo, c, v])
    with pytest.raises(CandleImportError, match=r"^BTCUSDT-1h-mark.csv.gz line 11: high .* < "):
        candles_import(path=write(tmp_path / "BTCUSDT-1h-mark.csv.gz", lines), market_type="swap")
    assert MarkCandle.objects.count() == 0 and Market.objects.count() == 0


@pytest.mark.django_db
def test_mark_and_funding_need_a_swap_market():
    for name, what in (("BTCUSDT-1h-mark.csv.gz", "mark prices"), ("BTCUSDT-funding.csv.gz", "funding rates")):
        with pytest.raises(CandleImportError) as info:
            candles_import(path=FUT / name, market_type="spot")
        assert str(info.value) == f"{name}: {what} belong to perpetuals; import with market_type swap"
    assert Market.objects.count() == 0


@pytest.mark.django_db
def test_import_candles_command_takes_the_three_futures_files(capsys):
    files = [str(FUT / n) for n in ("BTCUSDT-1h.csv.gz", "BTCUSDT-1h-mark.csv.gz", "BTCUSDT-funding.csv.gz")]
    call_command("import_candles", *files, "--market-type", "swap")
    out = capsys.readouterr().out
    assert (
        "BTCUSDT-1h-mark.csv.gz: binance BTC/USDT:USDT 1h mark 2024-07-22 00:00 → 2024-08-18 23:00 UTC: 672 rows" in out
    )
    assert (
        "BTCUSDT-funding.csv.gz: binance BTC/USDT:USDT funding 2024-07-22 00:00 → 2024-08-18 16:00 UTC: 84 rows" in out
    )
    assert (Candle.objects.count(), MarkCandle.objects.count(), FundingRate.objects.count()) == (672, 672, 84)
