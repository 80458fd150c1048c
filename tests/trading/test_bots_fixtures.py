"""The bot tests' shared data (fixtures and helpers in tests/trading/conftest.py): the bundled
real-candle slices load exactly as expected."""

from __future__ import annotations

from datetime import UTC, datetime

from trading.models import Candle


def test_bundled_slices_load_real_candles(candles):
    btc = candles["BTC/USDT"]
    qs = Candle.objects.filter(market=btc, timeframe="1h").order_by("open_time")
    assert qs.count() == 1368  # 2025-03-05 00:00 .. 2025-04-30 23:00
    first = qs.first()
    assert (first.open_time, first.open, first.close) == (datetime(2025, 3, 5, tzinfo=UTC), 87281.98, 86800.36)
    assert qs.last().open_time == datetime(2025, 4, 30, 23, tzinfo=UTC)
