"""Market pages on REAL candles: the overview (values, sort, filter, HTMX fragment, query
count), one market's page and its candles JSON, access control, and the market admin.

Candles come from the real Binance files (``../shared/data/ohlcv``; the bundled sample when
that is absent): the last ``ROWS`` rows of each file, inserted with ``bulk_create``.
Expected figures are computed with pandas, independently of the selectors. The data fixture
and its helpers are in tests/trading/conftest.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.trading.conftest import ROWS, expected_stats, load_real_market
from trading.models.market import Candle, Exchange, Market


def _signed_pct(x: float) -> str:
    return f"{'+' if x > 0 else ''}{x:,.2f} %"


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-symbol="([^"]+)">', html)


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/markets/", "/markets/binance/BTC-USDT/", "/markets/binance/BTC-USDT/candles.json?timeframe=1h"]
)
def test_anonymous_is_sent_to_login(client, real_markets, url):
    response = client.get(url)
    assert response.status_code == 302
    from urllib.parse import quote

    assert response["Location"] == f"/accounts/login/?next={quote(url, safe='/')}"


def test_every_role_can_see_markets(client, real_markets, viewer):
    client.force_login(viewer)
    assert client.get("/markets/").status_code == 200
    assert client.get("/markets/binance/BTC-USDT/").status_code == 200


# --- overview ---------------------------------------------------------------------------------


def test_markets_page_shows_real_figures(client, user, real_markets):
    client.force_login(user)
    response = client.get("/markets/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html

    _, btc = real_markets["BTC/USDT"]
    exp = expected_stats(btc)
    assert exp["last_close"] == float(btc.close.iloc[-1])
    row = html[html.index('<tr data-symbol="BTC/USDT">') :]
    row = row[: row.index("</tr>")]
    # last close formatted as displayed: thousands separator, 2 decimals for BTC
    assert f'<td data-label="Last close" class="num last-close">{exp["last_close"]:,.2f}</td>' in row
    assert _signed_pct(exp["change_pct"]) in row
    assert f'title="{exp["quote_volume"]:,.2f} USDT"' in row
    first = datetime.fromtimestamp(btc.open_time.iloc[0] / 1000, tz=UTC)
    last = datetime.fromtimestamp(btc.open_time.iloc[-1] / 1000, tz=UTC)
    assert (
        f'<span class="tf">1h</span><span class="count">{ROWS}</span>'
        f'<span class="muted range">{first:%Y-%m-%d} → {last:%Y-%m-%d}</span>'
    ) in row
    assert f"{last:%Y-%m-%d %H:%M}" in row
    assert 'href="/markets/binance/BTC-USDT/"' in row

    swap = html[html.index('<tr data-symbol="BTC/USDT:USDT">') :]
    assert 'href="/markets/binance/BTC-USDT-USDT/"' in swap[: swap.index("</tr>")]
    sol_close = float(real_markets["SOL/USDT"][1].close.iloc[-1])
    assert f"{sol_close:,.3f}" in html  # 3 digits before the point -> 3 decimals

    # default sort: 24 h quote volume, largest first
    volumes = {s: expected_stats(f)["quote_volume"] for s, (_, f) in real_markets.items()}
    assert _rows(html) == sorted(volumes, key=volumes.get, reverse=True)


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("change", "change_pct", False),
        ("-change", "change_pct", True),
        ("-last", "last_close", True),
        ("last", "last_close", False),
    ],
)
def test_htmx_sort_returns_fragment_in_order(client, user, real_markets, sort, key, reverse):
    client.force_login(user)
    response = client.get(f"/markets/?sort={sort}", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "<body" not in html and '<nav class="mainnav"' not in html
    assert '<div id="markets-table" class="table-wrap">' in html
    assert f'<input type="hidden" name="sort" id="sort-input" value="{sort}" hx-swap-oob="true">' in html
    assert "HX-Request" in response["Vary"]
    values = {s: expected_stats(f)[key] for s, (_, f) in real_markets.items()}
    assert _rows(html) == sorted(values, key=values.get, reverse=reverse)


def test_sort_by_symbol_and_header_links_toggle(client, user, real_markets):
    client.force_login(user)
    html = client.get("/markets/?sort=symbol&q=btc", HTTP_HX_REQUEST="true").content.decode()
    assert _rows(html) == ["BTC/USDT", "BTC/USDT:USDT"]
    assert 'aria-sort="ascending"' in html
    assert 'href="?sort=-symbol&amp;q=btc"' in html  # same column again: reverse
    assert 'href="?sort=-last&amp;q=btc"' in html  # numeric column: largest first
    html = client.get("/markets/?sort=-symbol&q=btc", HTTP_HX_REQUEST="true").content.decode()
    assert _rows(html) == ["BTC/USDT:USDT", "BTC/USDT"]


def test_htmx_filter_by_search_type_and_quote(client, user, real_markets):
    client.force_login(user)
    get = lambda q: _rows(client.get(f"/markets/?{q}&sort=symbol", HTTP_HX_REQUEST="true").content.decode())  # noqa: E731
    assert get("q=eth") == ["ETH/USDT"]
    assert get("q=BTC/USDT:") == ["BTC/USDT:USDT"]
    assert get("type=swap") == ["BTC/USDT:USDT"]
    assert get("type=spot") == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert get("quote=USDT") == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "SOL/USDT"]
    assert get("quote=BTC") == []
    html = client.get("/markets/?q=nothing", HTTP_HX_REQUEST="true").content.decode()
    assert "No markets match these filters." in html


def test_full_page_keeps_filter_state(client, user, real_markets):
    client.force_login(user)
    html = client.get("/markets/?q=sol&type=spot&sort=-change").content.decode()
    assert 'name="q" value="sol"' in html
    assert '<option value="spot" selected>' in html
    assert '<input type="hidden" name="sort" id="sort-input" value="-change">' in html
    assert _rows(html) == ["SOL/USDT"]


def test_history_restore_gets_the_full_page(client, user, real_markets):
    client.force_login(user)
    html = client.get("/markets/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
    assert "<html" in html


def test_overview_query_count_does_not_grow_with_markets(client, user, real_markets, django_assert_max_num_queries):
    client.force_login(user)
    client.get("/markets/")  # warm the session
    with CaptureQueriesContext(connection) as four:
        client.get("/markets/")
    for spec in [("spot", "DOGEUSDT", "DOGE/USDT", "spot", "1h"), ("spot", "ADAUSDT", "ADA/USDT", "spot", "1h")]:
        load_real_market(*spec, rows=60)
    with CaptureQueriesContext(connection) as six:
        html = client.get("/markets/").content.decode()
    assert len(_rows(html)) == 6
    assert len(six) == len(four)
    # session, user, page count, markets page with stats, timeframe stats, quote and exchange
    # choices, the nav's role badge
    with django_assert_max_num_queries(8):
        client.get("/markets/")
    with django_assert_max_num_queries(5):
        client.get("/markets/?sort=change", HTTP_HX_REQUEST="true")


def test_market_without_candles_is_listed_last_with_dashes(client, user, real_markets):
    Market.objects.create(exchange=Exchange.objects.get(code="binance"), symbol="NEW/USDT", base="NEW", quote="USDT")
    client.force_login(user)
    html = client.get("/markets/?sort=-change", HTTP_HX_REQUEST="true").content.decode()
    assert _rows(html)[-1] == "NEW/USDT"
    row = html[html.index('<tr data-symbol="NEW/USDT">') :]
    assert "no candles" in row[: row.index("</tr>")]


# --- one market -------------------------------------------------------------------------------


def test_market_page_has_summary_and_chart(client, user, real_markets):
    client.force_login(user)
    response = client.get("/markets/binance/BTC-USDT/")
    assert response.status_code == 200
    html = response.content.decode()
    exp = expected_stats(real_markets["BTC/USDT"][1])
    assert (
        f'<div class="price" id="summary-last">{exp["last_close"]:,.2f} <span class="muted unit">USDT</span></div>'
        in html
    )
    assert _signed_pct(exp["change_pct"]) in html
    assert f"{exp['high']:,.2f}" in html and f"{exp['low']:,.2f}" in html
    assert 'id="chart" class="chart" data-candle-chart' in html
    assert 'data-url="/markets/binance/BTC-USDT/candles.json"' in html
    assert 'data-timeframe="1h"' in html
    assert 'data-timeframe-tab="1h" aria-selected="true"' in html
    assert "lightweight-charts.standalone.production.js" in html


def test_swap_market_page_by_its_slug(client, user, real_markets):
    client.force_login(user)
    html = client.get("/markets/binance/BTC-USDT-USDT/").content.decode()
    assert "<code>BTC/USDT:USDT</code>" in html
    exp = expected_stats(real_markets["BTC/USDT:USDT"][1])
    assert f"{exp['last_close']:,.2f}" in html


@pytest.mark.parametrize(
    "url",
    [
        "/markets/binance/DOGE-USDT/",
        "/markets/kraken/BTC-USDT/",
        "/markets/binance/BTCUSDT/",
        "/markets/binance/BTC-USDT-USDT-X/",
        "/markets/binance/DOGE-USDT/candles.json",
    ],
)
def test_unknown_market_is_404(client, user, real_markets, url):
    client.force_login(user)
    assert client.get(url).status_code == 404


def test_candles_json_exact_values(client, user, real_markets):
    client.force_login(user)
    _, btc = real_markets["BTC/USDT"]
    response = client.get("/markets/binance/BTC-USDT/candles.json?timeframe=1h&limit=1000")
    assert response.status_code == 200
    data = response.json()
    assert len(data) == ROWS
    for point, row in ((data[0], btc.iloc[0]), (data[-1], btc.iloc[-1])):
        assert point == {
            "time": int(row.open_time) // 1000,
            "open": float(row.open),
            "high": float(row.high),
            "low": float(row.low),
            "close": float(row.close),
            "volume": float(row.volume),
        }
    assert [p["time"] for p in data] == sorted(p["time"] for p in data)

    tail = client.get("/markets/binance/BTC-USDT/candles.json?timeframe=1h&limit=3").json()
    assert [p["time"] for p in tail] == [int(t) // 1000 for t in btc.open_time.iloc[-3:]]
    assert client.get("/markets/binance/BTC-USDT/candles.json?timeframe=4h").json() == []


@pytest.mark.parametrize("query", ["timeframe=7h", "limit=0", "limit=5001", "limit=abc"])
def test_candles_json_rejects_bad_parameters(client, user, real_markets, query):
    client.force_login(user)
    response = client.get(f"/markets/binance/BTC-USDT/candles.json?{query}")
    assert response.status_code == 400
    assert "error" in response.json()


def test_slug_round_trip():
    from trading.selectors.markets import market_slug, symbol_from_slug

    for symbol in ["BTC/USDT", "BTC/USDT:USDT", "1000PEPE/USDT:USDT"]:
        assert symbol_from_slug(market_slug(symbol)) == symbol
    assert market_slug("BTC/USDT:USDT") == "BTC-USDT-USDT"
    assert symbol_from_slug("BTCUSDT") is None
    assert symbol_from_slug("A-B-C-D") is None


# --- admin ------------------------------------------------------------------------------------


def test_market_admin_pages(client, real_markets, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x-Market7!")
    client.force_login(root)
    html = client.get("/admin/trading/market/?type__exact=swap").content.decode()
    assert "BTC/USDT:USDT" in html and ">BTC/USDT (binance)<" not in html
    assert client.get("/admin/trading/exchange/").status_code == 200
    btc = real_markets["BTC/USDT"][0]
    response = client.get(f"/admin/trading/candle/?market__id__exact={btc.pk}&timeframe__exact=1h")
    assert response.status_code == 200
    html = response.content.decode()
    assert "BTC/USDT (binance)" in html and "ETH/USDT (binance)</a></td>" not in html
    assert client.get("/admin/trading/candle/?q=ETH").status_code == 200
    candle = Candle.objects.filter(market=btc).first()
    assert client.get(f"/admin/trading/candle/{candle.pk}/change/").status_code == 200
