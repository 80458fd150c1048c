"""Issue 10 §2 "no server error on any input": every bad input to the API, candle import and
bot pages in this area is a 4xx (or a refused import) naming the reason — never a 500 — and
nothing is written on a refused request."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

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
