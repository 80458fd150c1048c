"""The per-user watchlist: services, the bulk "watch liquid markets" filter on real candles
(24 h quote volumes recomputed from the files by ``expected_stats``), the markets page cell and
its actions, and access (another user's entry is a 404, never touched)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import IntegrityError

from tests.trading.conftest import expected_stats
from trading.models import Market, WatchlistEntry
from trading.selectors.watchlist import watchlist_enabled_symbols
from trading.services.watchlist import (
    WatchlistError,
    watchlist_disable,
    watchlist_enable,
    watchlist_enable_liquid,
    watchlist_set_multiplier,
    watchlist_toggle,
)


def _mine(user):
    return {e.market.symbol: (e.enabled, e.risk_multiplier) for e in WatchlistEntry.objects.for_user(user)}


# --- services ---------------------------------------------------------------------------------


def test_enable_disable_toggle_and_multiplier(user, other_user, real_markets):
    btc, eth = real_markets["BTC/USDT"][0], real_markets["ETH/USDT"][0]
    entry = watchlist_enable(user=user, market=btc)
    assert (entry.enabled, entry.risk_multiplier, entry.owner_id) == (True, Decimal("1"), user.pk)
    watchlist_set_multiplier(user=user, entry_id=entry.pk, multiplier="2.5")
    watchlist_disable(user=user, market=btc)  # keeps the multiplier
    watchlist_toggle(user=user, market=eth)  # not listed -> enabled
    assert _mine(user) == {"BTC/USDT": (False, Decimal("2.50")), "ETH/USDT": (True, Decimal("1.00"))}
    watchlist_toggle(user=user, market=btc)
    watchlist_toggle(user=user, market=eth)
    assert _mine(user) == {"BTC/USDT": (True, Decimal("2.50")), "ETH/USDT": (False, Decimal("1.00"))}
    assert watchlist_enabled_symbols(user) == {"binance": ["BTC/USDT"]}
    assert watchlist_enabled_symbols(other_user) == {}
    assert WatchlistEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.01", "risk multiplier must be between 0 and 10"),
        ("-1", "risk multiplier must be between 0 and 10"),
        ("abc", "risk multiplier 'abc' is not a number"),
        ("NaN", "risk multiplier must be between 0 and 10"),
        ("1.005", "risk multiplier takes at most 2 decimals"),
    ],
)
def test_multiplier_out_of_range_is_refused(user, real_markets, value, message):
    entry = watchlist_enable(user=user, market=real_markets["BTC/USDT"][0])
    with pytest.raises(WatchlistError, match=f"^{re.escape(message)}$"):
        watchlist_set_multiplier(user=user, entry_id=entry.pk, multiplier=value)
    entry.refresh_from_db()
    assert entry.risk_multiplier == Decimal("1")


def test_multiplier_bounds_are_allowed(user, real_markets):
    entry = watchlist_enable(user=user, market=real_markets["BTC/USDT"][0])
    for value in ("0", "10"):
        assert watchlist_set_multiplier(user=user, entry_id=entry.pk, multiplier=value).risk_multiplier == Decimal(
            value
        )


def test_one_entry_per_user_and_market(user, real_markets):
    btc = real_markets["BTC/USDT"][0]
    watchlist_enable(user=user, market=btc)
    with pytest.raises(IntegrityError):
        WatchlistEntry.objects.create(owner=user, market=btc)


def test_another_users_entry_cannot_be_changed(user, other_user, real_markets):
    entry = watchlist_enable(user=other_user, market=real_markets["BTC/USDT"][0])
    with pytest.raises(WatchlistEntry.DoesNotExist):
        watchlist_set_multiplier(user=user, entry_id=entry.pk, multiplier="3")
    entry.refresh_from_db()
    assert entry.risk_multiplier == Decimal("1")


# --- bulk: liquid markets ---------------------------------------------------------------------


def test_enable_liquid_counts_on_real_volumes(user, other_user, real_markets):
    volumes = {s: expected_stats(frame)["quote_volume"] for s, (_, frame) in real_markets.items()}
    # BTC/USDT 1.03e9, ETH/USDT 1.59e9, SOL/USDT 0.67e9, BTC/USDT:USDT 7.63e9 (quote USDT)
    assert sorted(s for s, v in volumes.items() if v >= 1e9) == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT"]
    watchlist_disable(user=user, market=real_markets["ETH/USDT"][0])  # re-enabled by the bulk
    eth = WatchlistEntry.objects.for_user(user).get()
    watchlist_set_multiplier(user=user, entry_id=eth.pk, multiplier="3")

    entries = watchlist_enable_liquid(user=user, min_quote_volume=1e9, type="spot")
    assert [e.market.symbol for e in entries] == ["BTC/USDT", "ETH/USDT"]
    assert _mine(user) == {"BTC/USDT": (True, Decimal("1.00")), "ETH/USDT": (True, Decimal("3.00"))}

    entries = watchlist_enable_liquid(user=user, min_quote_volume=1e9, quote="USDT")
    assert len(entries) == 3 and WatchlistEntry.objects.for_user(user).count() == 3
    # the threshold is inclusive: exactly ETH's volume keeps ETH and the swap
    got = watchlist_enable_liquid(user=other_user, min_quote_volume=volumes["ETH/USDT"] * (1 - 1e-12))
    assert [e.market.symbol for e in got] == ["BTC/USDT:USDT", "ETH/USDT"]
    assert watchlist_enable_liquid(user=other_user, min_quote_volume=1e10) == []
    assert watchlist_enable_liquid(user=user, min_quote_volume=0, quote="BTC") == []
    assert WatchlistEntry.objects.count() == 5
    assert watchlist_enabled_symbols(user) == {"binance": ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT"]}


def test_enable_liquid_skips_inactive_markets_and_bad_thresholds(user, real_markets):
    Market.objects.filter(symbol="BTC/USDT:USDT").update(active=False)
    assert len(watchlist_enable_liquid(user=user, min_quote_volume=0)) == 3
    for bad, message in ((-1, "minimum quote volume must be >= 0"), ("x", "minimum quote volume 'x' is not a number")):
        with pytest.raises(WatchlistError, match=f"^{re.escape(message)}$"):
            watchlist_enable_liquid(user=user, min_quote_volume=bad)


# --- page and actions -------------------------------------------------------------------------


def _cell(html: str, market: Market) -> str:
    start = html.index(f'<td data-label="Watch" class="watch" id="watch-{market.pk}">')
    return html[start : html.index("</td>", start)]


def test_markets_page_shows_only_my_watch_state(client, user, other_user, real_markets):
    btc, eth = real_markets["BTC/USDT"][0], real_markets["ETH/USDT"][0]
    watchlist_enable(user=user, market=btc)
    watchlist_enable(user=other_user, market=eth)
    client.force_login(user)
    html = client.get("/markets/").content.decode()
    assert 'aria-pressed="true"' in _cell(html, btc) and ">watching</button>" in _cell(html, btc)
    assert 'name="risk_multiplier" value="1.00"' in _cell(html, btc)
    assert 'aria-pressed="false"' in _cell(html, eth) and "risk_multiplier" not in _cell(html, eth)
    assert 'action="/markets/watch-liquid/"' in html


def test_toggle_over_htmx_answers_the_cell(client, user, real_markets):
    btc = real_markets["BTC/USDT"][0]
    client.force_login(user)
    response = client.post("/markets/binance/BTC-USDT/watch/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<td data-label="Watch" class="watch" id="watch-{btc.pk}">')
    assert ">watching</button>" in html
    assert _mine(user) == {"BTC/USDT": (True, Decimal("1.00"))}
    html = client.post("/markets/binance/BTC-USDT/watch/", HTTP_HX_REQUEST="true").content.decode()
    assert ">watch</button>" in html and _mine(user) == {"BTC/USDT": (False, Decimal("1.00"))}
    response = client.post("/markets/binance/BTC-USDT/watch/", {"enabled": "1"})
    assert response.status_code == 302 and response["Location"] == "/markets/"
    assert _mine(user) == {"BTC/USDT": (True, Decimal("1.00"))}


def test_multiplier_action_and_its_errors(client, user, real_markets):
    entry = watchlist_enable(user=user, market=real_markets["BTC/USDT"][0])
    client.force_login(user)
    url = f"/markets/watchlist/{entry.pk}/multiplier/"
    html = client.post(url, {"risk_multiplier": "0.5"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="risk_multiplier" value="0.50"' in html
    response = client.post(url, {"risk_multiplier": "11"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "risk multiplier must be between 0 and 10" in response.content.decode()
    entry.refresh_from_db()
    assert entry.risk_multiplier == Decimal("0.50")


def test_watch_liquid_form(client, user, real_markets):
    client.force_login(user)
    response = client.post("/markets/watch-liquid/", {"min_quote_volume": "1000000000", "quote": "USDT"}, follow=True)
    assert "Watching 3 markets." in response.content.decode()
    response = client.post("/markets/watch-liquid/", {"min_quote_volume": "-5"}, follow=True)
    assert "minimum quote volume must be &gt;= 0" in response.content.decode()
    assert WatchlistEntry.objects.for_user(user).count() == 3


# --- access -----------------------------------------------------------------------------------


def test_another_users_entry_is_a_404_and_untouched(client, user, other_user, real_markets):
    entry = watchlist_enable(user=other_user, market=real_markets["BTC/USDT"][0])
    client.force_login(user)
    assert client.post(f"/markets/watchlist/{entry.pk}/multiplier/", {"risk_multiplier": "5"}).status_code == 404
    # toggling the same market makes the user's own entry, never touches bob's
    client.post("/markets/binance/BTC-USDT/watch/", {"enabled": "0"})
    entry.refresh_from_db()
    assert (entry.enabled, entry.risk_multiplier) == (True, Decimal("1"))
    assert _mine(user) == {"BTC/USDT": (False, Decimal("1.00"))}


def test_unknown_market_is_a_404_and_get_is_refused(client, user, real_markets):
    client.force_login(user)
    assert client.post("/markets/binance/NOPE-USDT/watch/").status_code == 404
    assert client.get("/markets/binance/BTC-USDT/watch/").status_code == 405
    assert WatchlistEntry.objects.count() == 0


@pytest.mark.parametrize(
    "url", ["/markets/binance/BTC-USDT/watch/", "/markets/watch-liquid/", "/markets/watchlist/1/multiplier/"]
)
def test_anonymous_is_sent_to_login(client, real_markets, url):
    response = client.post(url, {"min_quote_volume": "0"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert WatchlistEntry.objects.count() == 0
