"""Read-only market API on real candles: anonymous is refused, authenticated users get exact
data; filters; the candles endpoint; the OpenAPI schema and Swagger UI served offline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from tests.trading.conftest import ROWS, expected_stats


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _iso(ms) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/",
        "/api/v1/markets/",
        "/api/v1/exchanges/",
        "/api/v1/markets/{pk}/",
        "/api/v1/markets/{pk}/candles/?timeframe=1h",
    ],
)
def test_anonymous_is_refused(real_markets, url):
    pk = real_markets["BTC/USDT"][0].pk
    response = APIClient().get(url.format(pk=pk))
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only(api, real_markets, method):
    pk = real_markets["BTC/USDT"][0].pk
    url = f"/api/v1/markets/{pk}/" if method != "post" else "/api/v1/markets/"
    assert getattr(api, method)(url, {"symbol": "X/Y"}, format="json").status_code == 405


def test_market_list_exact(api, real_markets):
    response = api.get("/api/v1/markets/?symbol=BTC/USDT")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    market, frame = real_markets["BTC/USDT"]
    exp = expected_stats(frame)
    assert {
        k: item[k]
        for k in ("id", "exchange", "symbol", "slug", "base", "quote", "settle", "type", "active", "stats_timeframe")
    } == {
        "id": market.pk,
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "slug": "BTC-USDT",
        "base": "BTC",
        "quote": "USDT",
        "settle": "",
        "type": "spot",
        "active": True,
        "stats_timeframe": "1h",
    }
    assert item["last_open"] == _iso(frame.open_time.iloc[-1])
    assert item["last_close"] == exp["last_close"]
    assert item["change_24h_pct"] == pytest.approx(exp["change_pct"], rel=1e-12)
    assert item["quote_volume_24h"] == pytest.approx(exp["quote_volume"], rel=1e-12)
    assert (item["high_24h"], item["low_24h"]) == (exp["high"], exp["low"])


@pytest.mark.parametrize(
    ("query", "symbols"),
    [
        ("", ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "SOL/USDT"]),
        ("type=swap", ["BTC/USDT:USDT"]),
        ("exchange=binance&base=BTC", ["BTC/USDT", "BTC/USDT:USDT"]),
        ("exchange=kraken", []),
        ("quote=USDT&type=spot", ["BTC/USDT", "ETH/USDT", "SOL/USDT"]),
        ("symbol=BTC/USDT:USDT", ["BTC/USDT:USDT"]),
    ],
)
def test_market_filters(api, real_markets, query, symbols):
    body = api.get(f"/api/v1/markets/?{query}").json()
    assert [m["symbol"] for m in body["results"]] == symbols


def test_market_list_query_count(api, real_markets, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # count + page; no query per market
        api.get("/api/v1/markets/")


def test_candles_exact_range_and_pagination(api, real_markets):
    market, frame = real_markets["ETH/USDT"]
    start, end = frame.open_time.iloc[100], frame.open_time.iloc[110]
    response = api.get(f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&start={_iso(start)}&end={_iso(end)}")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 10
    assert body["results"][0] == {
        "open_time": _iso(start),
        "open": float(frame.open.iloc[100]),
        "high": float(frame.high.iloc[100]),
        "low": float(frame.low.iloc[100]),
        "close": float(frame.close.iloc[100]),
        "volume": float(frame.volume.iloc[100]),
    }
    assert body["results"][-1]["open_time"] == _iso(frame.open_time.iloc[109])

    page = api.get(f"/api/v1/markets/{market.pk}/candles/?timeframe=1h&limit=2&offset={ROWS - 2}").json()
    assert page["count"] == ROWS
    assert [c["close"] for c in page["results"]] == [float(x) for x in frame.close.iloc[-2:]]
    assert page["next"] is None


@pytest.mark.parametrize("query", ["", "timeframe=2h", "timeframe=1h&start=yesterday"])
def test_candles_bad_parameters(api, real_markets, query):
    pk = real_markets["BTC/USDT"][0].pk
    response = api.get(f"/api/v1/markets/{pk}/candles/?{query}")
    assert response.status_code == 400


def test_candles_unknown_market_404(api, real_markets):
    assert api.get("/api/v1/markets/999999/candles/?timeframe=1h").status_code == 404


def test_exchanges(api, real_markets):
    body = api.get("/api/v1/exchanges/").json()
    assert [(e["code"], e["name"]) for e in body["results"]] == [("binance", "Binance")]


def test_schema_and_swagger_ui_offline(client, user):
    client.force_login(user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/markets/{id}/candles/:" in text
    assert "/api/v1/markets/:" in text
    docs = client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()
