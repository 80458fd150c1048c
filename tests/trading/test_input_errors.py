"""Issue 10 §2 "no server error on any input": every bad input to the API, candle import and
bot pages in this area is a 4xx (or a refused import) naming the reason — never a 500 — and
nothing is written on a refused request."""

from __future__ import annotations

import gzip

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from trading.models import Candle, Exchange, Market
from trading.services.candles import CandleImportError, candles_import

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # beyond a signed 64-bit integer (9223372036854775807)


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _list_urls(market, bot):
    return [
        "/api/v1/exchanges/",
        "/api/v1/markets/",
        f"/api/v1/markets/{market.pk}/candles/?timeframe=1h",
        "/api/v1/bots/",
        "/api/v1/bot-trades/",
        "/api/v1/bot-orders/",
    ]


def _with(url, query):
    return url + ("&" if "?" in url else "?") + query


# ============================================================================ pagination
@pytest.mark.parametrize(
    ("query", "errors"),
    [
        (f"limit={HUGE}", {"limit": ["Ensure this value is less than or equal to 9223372036854775807."]}),
        (f"offset={HUGE}", {"offset": ["Ensure this value is less than or equal to 9223372036854775807."]}),
        ("limit=abc", {"limit": ["A valid integer is required."]}),
        ("offset=abc", {"offset": ["A valid integer is required."]}),
        ("limit=-5", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("limit=0", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("offset=-1", {"offset": ["Ensure this value is greater than or equal to 0."]}),
        ("limit=1.5", {"limit": ["A valid integer is required."]}),
    ],
)
def test_bad_limit_or_offset_is_400_on_every_list(api, market, bot_with_trades, query, errors):
    for url in _list_urls(market, bot_with_trades):
        response = api.get(_with(url, query))
        assert (response.status_code, response.json()) == (400, errors), url


def test_good_limit_and_offset_still_page(api, market, bot_with_trades):
    page = api.get("/api/v1/bot-orders/?limit=2&offset=1").json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert page["next"] is None and page["previous"].endswith("/api/v1/bot-orders/?limit=2")
    # empty parameters mean the defaults, as in DRF
    assert api.get("/api/v1/bot-orders/?limit=&offset=").json()["count"] == 3
    candles = api.get(f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&limit=3&offset=8").json()
    assert (candles["count"], [c["close"] for c in candles["results"]]) == (10, [42300.0, 42600.0])
    # a limit above a page's maximum is cut to it, as before (candles: 5000)
    assert api.get(f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&limit=999999").json()["count"] == 10


# ============================================================================ candle dates
@pytest.mark.parametrize(
    ("param", "value", "errors"),
    [
        ("start", "2024-01-01T00:00:00+23:00", ["time-zone offset +23:00 is out of range (-15:59 to +15:59)"]),
        ("end", "2024-01-01T00:00:00-16:00", ["time-zone offset -16:00 is out of range (-15:59 to +15:59)"]),
        ("start", "0001-01-01T00:00:00+01:00", ["date/time is out of range once in UTC (years 1 to 9999)"]),
        ("end", "9999-12-31T23:59:59-05:00", ["date/time is out of range once in UTC (years 1 to 9999)"]),
        ("start", "yesterday", ["Enter a valid date/time."]),
        ("start", "2024-13-45", ["Enter a valid date/time."]),
        ("end", "2024-01-01T25:00:00", ["Enter a valid date/time."]),
        ("start", "%00", ["Enter a valid date/time."]),
        ("start", "9" * 300, ["Enter a valid date/time."]),
    ],
)
def test_bad_candle_bounds_are_400_with_the_reason(api, market, param, value, errors):
    response = api.get(f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&{param}={value.replace('+', '%2B')}")
    assert (response.status_code, response.json()) == (400, {param: errors})


def test_candle_bounds_with_offsets_are_read_in_utc(api, market):
    # 2024-01-01T05:30:00+05:30 is 00:00 UTC and 2024-01-01T01:00:00-02:00 is 03:00 UTC: candles
    # open at 00:00, 01:00, 02:00 UTC (the fixture's closes 42000, 41800, 41500)
    url = f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&start=2024-01-01T05:30:00%2B05:30&end=2024-01-01T01:00:00-02:00"
    body = api.get(url).json()
    assert [(c["open_time"], c["close"]) for c in body["results"]] == [
        ("2024-01-01T00:00:00Z", 42000.0),
        ("2024-01-01T01:00:00Z", 41800.0),
        ("2024-01-01T02:00:00Z", 41500.0),
    ]
    edge = f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&start=2024-01-01T15:59:00%2B15:59"
    assert api.get(edge).json()["count"] == 10


# ============================================================================ candle import
def _bundled_lines(bundled_data_dir, rows: int) -> list[str]:
    with gzip.open(bundled_data_dir / "BTCUSDT-1h.csv.gz", "rt") as handle:
        return handle.read().splitlines()[: rows + 1]


def _set(lines: list[str], number: int, column: int, value: str) -> list[str]:
    """Line ``number`` (1-based, 1 = header) with field ``column`` replaced."""
    out = list(lines)
    fields = out[number - 1].split(",")
    fields[column] = value
    out[number - 1] = ",".join(fields)
    return out


def _nothing_written():
    return (Candle.objects.count(), Market.objects.count(), Exchange.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (2, "1e300", "BTCUSDT-1h.csv line 7: high 1e+300 > 1e+15: not a plausible price"),
        (1, "1e300", "BTCUSDT-1h.csv line 7: open 1e+300 > 1e+15: not a plausible price"),
        (5, "1e300", "BTCUSDT-1h.csv line 7: volume 1e+300 > 1e+20: not a plausible volume"),
        (4, "inf", "BTCUSDT-1h.csv line 7: close is inf"),
        (4, "-inf", "BTCUSDT-1h.csv line 7: close is -inf"),
        (3, "nan", "BTCUSDT-1h.csv line 7: low is NaN"),
        (3, "-5", "BTCUSDT-1h.csv line 7: low -5.0 <= 0"),
        (3, "0", "BTCUSDT-1h.csv line 7: low 0.0 <= 0"),
    ],
)
def test_absurd_prices_refuse_the_file_naming_file_and_row(tmp_path, bundled_data_dir, column, value, message):
    lines = _set(_bundled_lines(bundled_data_dir, 10), 7, column, value)
    if column in (1, 2) and value == "1e300":
        lines = _set(lines, 7, 2, "1e300")  # keep high >= open so the bound is what is named
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CandleImportError) as info:
        candles_import(path=path, exchange="binance")
    assert str(info.value) == message
    assert _nothing_written()


def test_a_1e300_row_is_not_imported_even_when_skipping_invalid_rows(tmp_path, bundled_data_dir):
    lines = _set(_set(_bundled_lines(bundled_data_dir, 10), 7, 2, "1e300"), 7, 4, "1e300")
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("\n".join(lines) + "\n")
    report = candles_import(path=path, exchange="binance", skip_invalid=True)
    assert (report.rows, report.inserted, report.rejected) == (10, 9, 1)
    assert [str(r) for r in report.rejections] == ["line 7: high 1e+300 > 1e+15: not a plausible price"]
    assert Candle.objects.filter(high__gt=1e15).count() == 0


def test_header_only_file_writes_nothing(tmp_path):
    path = tmp_path / "ETHBTC-1d.csv"
    path.write_text("open_time,open,high,low,close,volume\n")
    with pytest.raises(CandleImportError) as info:
        candles_import(path=path, exchange="binance")
    assert str(info.value) == "ETHBTC-1d.csv line 2: no candle rows after the header; nothing imported"
    assert _nothing_written()


def test_every_row_rejected_with_skip_invalid_writes_nothing(tmp_path, bundled_data_dir):
    lines = _bundled_lines(bundled_data_dir, 2)
    lines = _set(_set(lines, 2, 5, "-1"), 3, 5, "-2")
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("\n".join(lines) + "\n")
    report = candles_import(path=path, exchange="binance", skip_invalid=True)
    assert (report.rows, report.imported, report.rejected, report.first_ms) == (2, 0, 2, None)
    assert _nothing_written()


# ============================================================================ open redirect
@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example/x",
        "https://evil.example/",
        "http://evil.example/bots/",
        "/\\evil.example/x",
        "javascript:alert(1)",
        "https://testserver.evil.example/",
    ],
)
def test_bot_action_never_redirects_off_site(client, user, bot_with_trades, next_url):
    client.force_login(user)
    url = reverse("trading:bot-action", args=[bot_with_trades.pk, "pause"])
    response = client.post(url, {"next": next_url})
    assert (response.status_code, response["Location"]) == (302, f"/bots/{bot_with_trades.pk}/")
    bot_with_trades.refresh_from_db()
    assert bot_with_trades.status == "paused"  # the action itself happened


def test_bot_action_follows_a_next_on_this_site(client, user, bot_with_trades):
    client.force_login(user)
    pause = reverse("trading:bot-action", args=[bot_with_trades.pk, "pause"])
    assert client.post(pause, {"next": "/bots/?x=1"})["Location"] == "/bots/?x=1"
    resume = reverse("trading:bot-action", args=[bot_with_trades.pk, "resume"])
    assert client.post(resume, {"next": "http://testserver/bots/"})["Location"] == "http://testserver/bots/"
    # an https page is not sent back over plain http
    pause_again = client.post(pause, {"next": "http://testserver/bots/"}, secure=True)
    assert pause_again["Location"] == f"/bots/{bot_with_trades.pk}/"
    close_all = reverse("trading:bot-close-all", args=[bot_with_trades.pk])
    assert client.post(close_all, {"next": "//evil.example/x"})["Location"] == f"/bots/{bot_with_trades.pk}/"


def test_login_next_stays_on_site(client, user):
    response = client.post("/accounts/login/?next=//evil.example/x", {"username": "alice", "password": "pw-Market7!"})
    assert (response.status_code, response["Location"]) == (302, reverse("trading:home"))
