"""fetch_candles for perpetuals against the fake Binance server: mark-price klines
(/fapi/v1/markPriceKlines) and funding-rate history (/fapi/v1/fundingRate)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from trading.models.market import Candle, FundingRate, MarkCandle
from trading.selectors.candles import datetime_to_ms
from trading.services.candle_fetch import funding_fetch
from trading.services.candles import CandleFetchError, candles_fetch

pytest_plugins = ["tests.fakes.fixtures"]

JUL_22 = 1721606400000  # 2024-07-22 00:00 UTC, first row of the bundled futures subset
AUG_19 = 1724025600000  # 2024-08-19 00:00 UTC, just after its last row


@pytest.mark.django_db
def test_mark_price_candles_fetched_through_the_mark_endpoint(fake_binance):
    fake_binance.now_ms = AUG_19
    report = candles_fetch(
        exchange="binance", symbols=["BTC/USDT:USDT"], timeframe="1h", since=JUL_22, market_type="swap", price="mark"
    )
    item = report.symbols[0]
    assert (item.requests, item.received, item.inserted) == (1, 672, 672)
    assert Candle.objects.count() == 0 and MarkCandle.objects.count() == 672
    first = MarkCandle.objects.earliest("open_time")
    assert (datetime_to_ms(first.open_time), first.open, first.low, first.close, first.volume) == (
        JUL_22,
        68138.0,
        68006.44425532,
        68158.03137589,
        0.0,
    )
    paths = fake_binance.paths()
    assert "/fapi/v1/markPriceKlines" in paths and "/fapi/v1/klines" not in paths


@pytest.mark.django_db
def test_mark_price_needs_swap(fake_binance):
    with pytest.raises(CandleFetchError, match="^mark prices exist for perpetuals only; use --market-type swap$"):
        candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=JUL_22, price="mark")
    assert MarkCandle.objects.count() == 0


@pytest.mark.django_db
def test_funding_history_rounded_to_the_minute_exact_rates_and_resume(fake_binance):
    fake_binance.now_ms = AUG_19
    first = funding_fetch(
        exchange="binance", symbols=["BTC/USDT:USDT"], since=JUL_22, until=JUL_22 + 10 * 8 * 3_600_000
    )
    assert (first[0].requests, first[0].received, first[0].inserted) == (1, 10, 10)
    rest = funding_fetch(exchange="binance", symbols=["BTC/USDT:USDT"], since=JUL_22)
    assert (rest[0].start_ms, rest[0].inserted, rest[0].unchanged) == (JUL_22 + 9 * 8 * 3_600_000 + 60_000, 74, 0)
    times = [datetime_to_ms(t) for t in FundingRate.objects.order_by("time").values_list("time", flat=True)]
    assert len(times) == 84 and all(t % 60_000 == 0 for t in times)  # the +8 ms jitter is gone
    assert sum(FundingRate.objects.values_list("rate", flat=True)) == Decimal("0.00335607")  # as the file
    params = [r.params for r in fake_binance.requests if r.path == "/fapi/v1/fundingRate"]
    assert params[0]["startTime"] == str(JUL_22) and params[0]["limit"] == "1000"


@pytest.mark.django_db
def test_fetch_candles_command_price_mark_and_funding(fake_binance, capsys):
    fake_binance.now_ms = AUG_19
    args = ["--symbols", "BTC/USDT:USDT", "--since", "2024-08-18", "--market-type", "swap"]
    call_command("fetch_candles", *args, "--price", "mark")
    call_command("fetch_candles", *args, "--funding")
    out = capsys.readouterr().out
    assert "BTC/USDT:USDT 1h mark 2024-08-18 00:00 → 2024-08-18 23:00 UTC: 1 request(s), 24 received" in out
    assert "BTC/USDT:USDT funding 2024-08-18 00:00 → 2024-08-18 16:00 UTC: 1 request(s), 3 received, 3 inserted" in out
    assert (MarkCandle.objects.count(), FundingRate.objects.count()) == (24, 3)
    with pytest.raises(CommandError, match="^--funding needs --market-type swap$"):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2024-08-18", "--funding")
