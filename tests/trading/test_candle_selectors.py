"""candles_arrays / candles_last_open_ms: range reads of real bundled candles as numpy arrays."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import connection

from trading.models.market import Candle, Market
from trading.selectors.bots import markets_last_open
from trading.selectors.candles import EpochMs, candles_arrays, candles_last_open_ms, datetime_to_ms
from trading.services.candles import candles_import

HOUR = 3_600_000


@pytest.fixture
def btc(db, bundled_data_dir):
    path = bundled_data_dir / "BTCUSDT-1h.csv.gz"
    candles_import(path=path, exchange="binance", market_type="spot")
    with gzip.open(path, "rt") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()[1:]]
    expected = {
        "time": np.array([int(r[0]) for r in rows], dtype=np.int64),
        **{
            name: np.array([float(r[i]) for r in rows])
            for i, name in enumerate(["open", "high", "low", "close", "volume"], 1)
        },
    }
    return Market.objects.get(symbol="BTC/USDT"), expected


def test_whole_range_matches_the_file_exactly(btc):
    market, expected = btc
    arrays = candles_arrays(market=market, timeframe="1h")
    assert list(arrays) == ["time", "open", "high", "low", "close", "volume"]
    assert arrays["time"].dtype == np.int64
    assert all(arrays[k].dtype == np.float64 for k in ["open", "high", "low", "close", "volume"])
    for key, values in expected.items():
        np.testing.assert_array_equal(arrays[key], values)
    assert arrays["close"][-1] == 108246.35
    assert len(arrays["time"]) == 4320


def test_start_inclusive_end_exclusive_datetimes_and_ms(btc):
    market, expected = btc
    start = datetime(2025, 8, 31, 20, tzinfo=UTC)
    end = datetime(2025, 8, 31, 23, tzinfo=UTC)
    arrays = candles_arrays(market=market, timeframe="1h", start=start, end=end)
    assert arrays["time"].tolist() == [1756670400000, 1756674000000, 1756677600000]  # 20:00, 21:00, 22:00
    np.testing.assert_array_equal(arrays["close"], expected["close"][-4:-1])
    same = candles_arrays(market=market, timeframe="1h", start=1756670400000, end=1756681200000)
    assert same["time"].tolist() == arrays["time"].tolist()
    assert candles_arrays(market=market, timeframe="1h", start=1756681200000)["time"].tolist() == [1756681200000]
    assert len(candles_arrays(market=market, timeframe="1h", end=1741132800000 + 10 * HOUR)["time"]) == 10


def test_empty_range_and_other_timeframe(btc):
    market, _ = btc
    for arrays in (
        candles_arrays(market=market, timeframe="5m"),
        candles_arrays(market=market, timeframe="1h", start=datetime(2030, 1, 1, tzinfo=UTC)),
    ):
        assert {k: (v.dtype, len(v)) for k, v in arrays.items()} == {
            "time": (np.int64, 0),
            "open": (np.float64, 0),
            "high": (np.float64, 0),
            "low": (np.float64, 0),
            "close": (np.float64, 0),
            "volume": (np.float64, 0),
        }


def test_naive_datetime_is_refused(btc):
    market, _ = btc
    with pytest.raises(ValueError, match="^start is a naive datetime; Market7 times are timezone-aware UTC$"):
        candles_arrays(market=market, timeframe="1h", start=datetime(2025, 1, 1))
    with pytest.raises(TypeError, match="^end must be a timezone-aware datetime or epoch ms int, not str$"):
        candles_arrays(market=market, timeframe="1h", end="2025-01-01")


def test_last_open_ms(btc):
    market, _ = btc
    assert candles_last_open_ms(market=market, timeframe="1h") == 1756681200000
    assert candles_last_open_ms(market=market, timeframe="4h") is None


def test_markets_last_open_per_market(btc, bundled_data_dir):
    market, _ = btc
    candles_import(path=bundled_data_dir / "ETHUSDT-1h.csv.gz", exchange="binance", market_type="spot")
    eth = Market.objects.get(symbol="ETH/USDT")
    Candle.objects.filter(market=eth, open_time__gte=datetime(2025, 8, 31, 12, tzinfo=UTC)).delete()
    empty = Market.objects.create(exchange=market.exchange, symbol="XRP/USDT", base="XRP", quote="USDT", type="spot")
    last = markets_last_open([market.pk, eth.pk, empty.pk], "1h")
    assert last == {market.pk: datetime(2025, 8, 31, 23, tzinfo=UTC), eth.pk: datetime(2025, 8, 31, 11, tzinfo=UTC)}
    assert markets_last_open([market.pk], "4h") == {}


def test_epoch_ms_is_exact_on_postgres_and_refused_elsewhere(btc):
    market, expected = btc
    qs = Candle.objects.filter(market=market, timeframe="1h").order_by("open_time")
    if connection.vendor != "postgresql":
        with pytest.raises(NotImplementedError, match="^EpochMs is PostgreSQL-only$"):
            list(qs.annotate(ms=EpochMs("open_time")).values_list("ms", flat=True)[:1])
        return
    pairs = list(qs.annotate(ms=EpochMs("open_time")).values_list("ms", "open_time"))
    assert [ms for ms, _ in pairs] == expected["time"].tolist()
    assert all(ms == datetime_to_ms(t) for ms, t in pairs)
    assert all(type(ms) is int for ms, _ in pairs[:3])
