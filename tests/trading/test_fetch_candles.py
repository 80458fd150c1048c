"""fetch_candles through ccxt against the local fake Binance server: pagination, resume,
open-candle drop, failures (unreachable, 503, 429, 418) with nothing written."""

from __future__ import annotations

import gzip

import ccxt
import pytest
from django.core.management import CommandError, call_command

from trading.exchanges import ExchangeUnavailable, exchange_client
from trading.models.market import Candle, Market
from trading.selectors.candles import candles_arrays, candles_last_open_ms, datetime_to_ms
from trading.services.candles import CandleFetchError, candles_fetch

# The fake_binance fixture (harmless once tests/conftest.py registers the plugin too).
pytest_plugins = ["tests.fakes.fixtures"]

HOUR = 3_600_000
JUL_1 = 1751328000000  # 2025-07-01 00:00 UTC
AUG_1 = 1754006400000  # 2025-08-01 00:00 UTC
AUG_31 = 1756598400000  # 2025-08-31 00:00 UTC
LAST = 1756681200000  # 2025-08-31 23:00 UTC, the bundled set's last candle


def bundled_rows(bundled_data_dir, name="BTCUSDT-1h"):
    with gzip.open(bundled_data_dir / f"{name}.csv.gz", "rt") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()[1:]]
    return [(int(r[0]), *map(float, r[1:])) for r in rows]


def stored(symbol="BTC/USDT", timeframe="1h"):
    return [
        (datetime_to_ms(c.open_time), c.open, c.high, c.low, c.close, c.volume)
        for c in Candle.objects.filter(market__symbol=symbol, timeframe=timeframe).order_by("open_time")
    ]


# --- the client factory ------------------------------------------------------------------------


def test_exchange_client_defaults_to_ccxt_urls(settings):
    settings.MARKET7_EXCHANGE_URLS = {}
    client = exchange_client("binance", options={"defaultType": "spot"})
    assert client.urls["api"] == ccxt.binance().urls["api"]
    assert client.enableRateLimit is True
    assert client.timeout == settings.MARKET7_EXCHANGE_TIMEOUT_MS
    assert client.options["defaultType"] == "spot"


def test_exchange_client_points_every_api_url_at_the_override(settings):
    settings.MARKET7_EXCHANGE_URLS = {"binance": "http://127.0.0.1:9/"}
    client = exchange_client("binance", options={}, timeout_ms=1234)
    assert client.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
    assert client.urls["api"]["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert client.urls["api"]["sapi"] == "http://127.0.0.1:9/sapi/v1"
    flat = [u for u in client.urls["api"].values() if isinstance(u, str)]
    assert flat and all(u.startswith("http://127.0.0.1:9/") for u in flat)
    assert client.timeout == 1234


def test_exchange_client_refuses_unknown_exchange():
    with pytest.raises(ValueError, match="^unknown exchange 'nosuchx': not a ccxt exchange id"):
        exchange_client("nosuchx", options={})


# --- fetching -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pagination_stores_every_closed_candle_exactly(fake_binance, bundled_data_dir, capsys):
    call_command(
        "fetch_candles", "--exchange", "binance", "--symbols", "BTC/USDT", "--timeframe", "1h", "--since", "2025-07-01"
    )

    klines = fake_binance.klines_requests()
    assert klines == [
        {"interval": "1h", "limit": "1000", "symbol": "BTCUSDT", "startTime": str(JUL_1)},
        {"interval": "1h", "limit": "1000", "symbol": "BTCUSDT", "startTime": str(JUL_1 + 1000 * HOUR)},
    ]
    expected = [r for r in bundled_rows(bundled_data_dir) if r[0] >= JUL_1]
    assert len(expected) == 1488
    assert stored() == expected
    market = Market.objects.get(symbol="BTC/USDT")
    assert market.precision == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert market.limits["cost"] == {"min": 5.0, "max": 9000000.0}
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "BTC/USDT 1h 2025-07-01 00:00 → 2025-08-31 23:00 UTC: 2 request(s), 1488 received, "
        "1488 inserted, 0 updated, 0 unchanged, 0 open candle(s) dropped"
    )
    # Nothing but the fake was asked, and only what ccxt needs.
    assert sorted(set(fake_binance.paths())) == ["/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/time"]


@pytest.mark.django_db
def test_resume_after_the_last_stored_candle_ignores_since(fake_binance, bundled_data_dir):
    first = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=JUL_1, until=AUG_1)
    assert (first.symbols[0].inserted, first.symbols[0].last_ms) == (744, AUG_1 - HOUR)
    assert fake_binance.klines_requests()[0]["endTime"] == str(AUG_1 - 1)
    fake_binance.requests.clear()

    second = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=JUL_1)
    result = second.symbols[0]
    assert (result.resumed, result.start_ms) == (True, AUG_1)
    assert fake_binance.klines_requests()[0]["startTime"] == str(AUG_1)
    assert (result.inserted, result.updated, result.unchanged) == (744, 0, 0)
    assert stored() == [r for r in bundled_rows(bundled_data_dir) if r[0] >= JUL_1]

    # Up to date: one request that returns nothing new.
    fake_binance.requests.clear()
    third = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=JUL_1).symbols[0]
    assert [p["startTime"] for p in fake_binance.klines_requests()] == [str(LAST + HOUR)]
    assert (third.inserted, third.received) == (0, 0)


@pytest.mark.django_db
def test_since_after_stored_candles_is_honoured(fake_binance):
    candles_fetch(exchange="binance", symbols=["ETH/USDT"], timeframe="1h", since=JUL_1, until=JUL_1 + 5 * HOUR)
    report = candles_fetch(
        exchange="binance", symbols=["ETH/USDT"], timeframe="1h", since=AUG_31, until=AUG_31 + 2 * HOUR
    )
    assert (report.symbols[0].resumed, report.symbols[0].start_ms, report.symbols[0].inserted) == (False, AUG_31, 2)
    assert Candle.objects.filter(market__symbol="ETH/USDT").count() == 7


@pytest.mark.django_db
def test_open_candle_is_dropped(fake_binance, bundled_data_dir):
    fake_binance.now_ms = AUG_31 + 12 * HOUR + 30 * 60_000  # 2025-08-31 12:30 UTC: the 12:00 candle is open
    report = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=AUG_31)
    result = report.symbols[0]
    assert report.server_time_ms == fake_binance.now_ms
    assert (result.received, result.dropped_open, result.inserted) == (13, 1, 12)
    assert candles_last_open_ms(market=Market.objects.get(symbol="BTC/USDT"), timeframe="1h") == AUG_31 + 11 * HOUR
    assert stored() == [r for r in bundled_rows(bundled_data_dir) if AUG_31 <= r[0] <= AUG_31 + 11 * HOUR]

    # Once it closes, the next run stores it (and only what has closed since).
    fake_binance.now_ms = AUG_31 + 14 * HOUR + 1
    fake_binance.requests.clear()
    result = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=AUG_31).symbols[0]
    assert fake_binance.klines_requests()[0]["startTime"] == str(AUG_31 + 12 * HOUR)
    assert (result.inserted, result.dropped_open) == (2, 1)


@pytest.mark.django_db
def test_several_symbols_and_5m(fake_binance, bundled_data_dir):
    since = LAST + HOUR - 10 * 300_000  # the last 10 five-minute candles
    report = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="5m", since=since)
    assert report.symbols[0].inserted == 10
    assert stored(timeframe="5m") == bundled_rows(bundled_data_dir, "BTCUSDT-5m")[-10:]
    call_command("fetch_candles", "--symbols", "ETH/USDT,SOL/USDT", "--since", "2025-08-31T20:00")
    for symbol, name in (("ETH/USDT", "ETHUSDT-1h"), ("SOL/USDT", "SOLUSDT-1h")):
        assert stored(symbol) == bundled_rows(bundled_data_dir, name)[-4:]


@pytest.mark.django_db
def test_swap_uses_the_futures_api(fake_binance, bundled_data_dir):
    call_command("fetch_candles", "--symbols", "BTC/USDT:USDT", "--since", "2025-08-31T21:00", "--market-type", "swap")
    assert sorted(set(fake_binance.paths())) == ["/fapi/v1/exchangeInfo", "/fapi/v1/klines", "/fapi/v1/time"]
    market = Market.objects.get(symbol="BTC/USDT:USDT")
    assert (market.type, market.settle, market.precision["price"]) == ("swap", "USDT", 0.1)
    assert stored("BTC/USDT:USDT") == bundled_rows(bundled_data_dir)[-3:]


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unreachable_exchange_fails_fast_with_a_clear_message(fake_binance):
    fake_binance.stop()
    with pytest.raises(CommandError) as info:
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-07-01")
    assert str(info.value) == f"cannot reach binance: binance GET {fake_binance.base_url}/api/v3/exchangeInfo"
    assert (Candle.objects.count(), Market.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_http_503_is_exchange_unavailable(fake_binance):
    fake_binance.fail_next(503)
    with pytest.raises(ExchangeUnavailable) as info:
        candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=JUL_1)
    message = str(info.value)
    assert message.startswith(f"cannot reach binance: binance GET {fake_binance.base_url}/api/v3/exchangeInfo 503 ")
    assert [r.status for r in fake_binance.requests] == [503]
    assert (Candle.objects.count(), Market.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_failure_mid_fetch_keeps_stored_pages_and_resumes(fake_binance, bundled_data_dir):
    fake_binance.fail_next(503, after=3)  # exchangeInfo, time, first klines page pass; the second fails
    with pytest.raises(CommandError, match="^cannot reach binance: "):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-07-01")
    assert Candle.objects.count() == 1000
    fake_binance.requests.clear()
    call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-07-01")
    assert fake_binance.klines_requests()[0]["startTime"] == str(JUL_1 + 1000 * HOUR)
    assert stored() == [r for r in bundled_rows(bundled_data_dir) if r[0] >= JUL_1]


@pytest.mark.django_db
def test_rate_limit_429_is_retried(fake_binance):
    fake_binance.fail_next(429, after=2)
    report = candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=AUG_31)
    assert report.symbols[0].inserted == 24
    assert [(r.path, r.status) for r in fake_binance.requests][-2:] == [
        ("/api/v3/klines", 429),
        ("/api/v3/klines", 200),
    ]


@pytest.mark.django_db
def test_rate_limit_429_gives_up_after_retries(fake_binance):
    fake_binance.fail_next(429, times=3)
    with pytest.raises(CommandError) as info:
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-08-31")
    assert str(info.value).startswith("binance rate limit exceeded (HTTP 429), gave up after retries: ")
    assert [r.status for r in fake_binance.requests] == [429, 429, 429]
    assert Candle.objects.count() == 0


@pytest.mark.django_db
def test_ip_ban_418_is_not_retried(fake_binance):
    fake_binance.fail_next(418, times=5)
    with pytest.raises(CommandError) as info:
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-08-31")
    assert str(info.value).startswith("binance refused the request (HTTP 418, IP banned for now): ")
    assert len(fake_binance.requests) == 1


@pytest.mark.django_db
def test_timeout_is_short_and_clear(fake_binance, settings):
    settings.MARKET7_EXCHANGE_TIMEOUT_MS = 200
    fake_binance.delay = 1.0
    with pytest.raises(ExchangeUnavailable, match="^cannot reach binance: binance GET .*/api/v3/exchangeInfo"):
        candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=AUG_31)
    fake_binance.delay = 0.0


@pytest.mark.django_db
def test_bad_arguments(fake_binance):
    with pytest.raises(CommandError, match="^FOO/USDT is not a spot market on binance$"):
        call_command("fetch_candles", "--symbols", "BTC/USDT,FOO/USDT", "--since", "2025-08-31")
    with pytest.raises(CommandError, match=r"^BTC/USDT is not a swap market on binance$"):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-08-31", "--market-type", "swap")
    with pytest.raises(CommandError, match="^unsupported timeframe '2h'; use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d$"):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-08-31", "--timeframe", "2h")
    with pytest.raises(CommandError, match=r"^--until 2025-08-01 00:00 is not after --since 2025-08-31 00:00$"):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "2025-08-31", "--until", "2025-08-01")
    with pytest.raises(
        CommandError, match=r"^'yesterday' is not a date; use 2024-01-01, 2024-01-01T12:00 \(UTC\) or epoch ms$"
    ):
        call_command("fetch_candles", "--symbols", "BTC/USDT", "--since", "yesterday")
    assert Candle.objects.count() == 0


@pytest.mark.django_db
def test_invalid_candle_from_the_exchange_is_not_stored(fake_binance, bundled_data_dir):
    rows = [list(r) for r in bundled_rows(bundled_data_dir) if r[0] >= AUG_31]
    rows[3][2] = rows[3][4] - 1  # high below close
    fake_binance.set_klines("BTCUSDT", "1h", rows)
    with pytest.raises(CandleFetchError) as info:
        candles_fetch(exchange="binance", symbols=["BTC/USDT"], timeframe="1h", since=AUG_31)
    assert str(info.value).startswith("binance sent an invalid BTC/USDT 1h candle at 2025-08-31 03:00 UTC: high ")
    assert Candle.objects.count() == 0
    assert len(candles_arrays(market=Market.objects.get(symbol="BTC/USDT"), timeframe="1h")["time"]) == 0
