"""The dashboard flags open perpetual deals near liquidation; the mark-price lookup of the
dashboard, bot and deal pages is one query whatever the number of open perpetual deals.

Near = the distance of the liquidation price from the mark (percent of the mark, at the bot's
market time) below 2 × the bot's liquidation buffer, or 10 % when the buffer is 0
(``trading.selectors.perpetuals``). Hand-made rows with round numbers so every distance is
exact: the mark closes at 100 at the bots' last candle (and 50 one candle later, which no
page may use).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from trading.models import Bot, Exchange, Market, Trade
from trading.models.market import MarkCandle
from trading.selectors.perpetuals import attach_liquidation_distance, near_liquidation_threshold_pct

T0 = datetime(2024, 8, 1, tzinfo=UTC)
H = timedelta(hours=1)
AT = T0 + 5 * H  # the bots' last processed candle
_seq = count(1)


@pytest.fixture
def swap(db):
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    m = Market.objects.create(
        exchange=ex, symbol="BTC/USDT:USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT", settle="USDT",
        type="swap", precision={"price": 0.1, "amount": 0.001},
    )  # fmt: skip
    MarkCandle.objects.bulk_create(
        MarkCandle(market=m, timeframe="1h", open_time=T0 + i * H, open=c, high=c, low=c, close=c, volume=0)
        for i, c in enumerate([104, 103, 102, 101, 100.5, 100, 50])
    )
    return m


def perp_bot(owner, market, *, name, buffer="0", last_candle_at=AT) -> Bot:
    bot = Bot.objects.create(
        owner=owner, name=name, strategy="smart_dca", params={}, timeframe="1h", capital=Decimal("1000"),
        feed=Bot.FeedKind.REPLAY, replay_start=T0, replay_clock=T0, status=Bot.Status.RUNNING,
        last_candle_at=last_candle_at, leverage=5, margin_mode="isolated", liquidation_buffer_pct=Decimal(buffer),
    )  # fmt: skip
    bot.markets.set([market])
    return bot


def deal(bot: Bot, market: Market, *, side: str, lp: str | None, status="open", leverage=5) -> Trade:
    return Trade.objects.create(
        bot=bot, market=market, deal_id=f"d{next(_seq)}", side=side, status=status, opened_at=T0 + H,
        closed_at=T0 + 2 * H if status == "closed" else None, avg_entry=Decimal("100"), amount=Decimal("1"),
        cost=Decimal("100"), fees=Decimal("0.1"), leverage=leverage, margin=Decimal("20"),
        liquidation_price=None if lp is None else Decimal(lp), funding_paid=Decimal("0.01"),
        exit_reason="take_profit" if status == "closed" else "",
    )  # fmt: skip


@pytest.fixture
def deals(user, other_user, swap):
    """alice: bot "No buffer" (threshold 10 %) and bot "Buffer 6" (threshold 12 %); bob: one
    deal 1 % from liquidation."""
    a = perp_bot(user, swap, name="No buffer")
    b = perp_bot(user, swap, name="Buffer 6", buffer="6")
    bob = perp_bot(other_user, swap, name="Bob perp")
    return {
        "long_9_5": deal(a, swap, side="long", lp="90.5"),  # (100 - 90.5) / 100 = 9.5 % < 10: flagged
        "long_10": deal(a, swap, side="long", lp="90"),  # exactly 10 %: not below, not flagged
        "short_11": deal(b, swap, side="short", lp="111"),  # 11 % < 12: flagged
        "short_13": deal(b, swap, side="short", lp="113"),  # 13 %: not flagged
        "crossed": deal(b, swap, side="long", lp="101"),  # -1 %: past the liquidation price, flagged first
        "no_lp": deal(a, swap, side="long", lp=None),  # no liquidation price yet
        "closed": deal(a, swap, side="long", lp="99", status="closed"),
        "bob": deal(bob, swap, side="long", lp="99"),
    }


def test_threshold_is_twice_the_buffer_or_ten_percent():
    assert near_liquidation_threshold_pct(Decimal("0")) == Decimal("10")
    assert near_liquidation_threshold_pct(None) == Decimal("10")
    assert near_liquidation_threshold_pct(Decimal("6")) == Decimal("12")
    assert near_liquidation_threshold_pct(Decimal("7.5")) == Decimal("15.0")


def test_distances_and_flags_from_the_mark_at_the_bots_market_time(deals):
    trades = attach_liquidation_distance(list(Trade.objects.filter(pk__in=[t.pk for t in deals.values()])))
    by_pk = {t.pk: t for t in trades}
    got = {
        name: (by_pk[t.pk].mark_price, by_pk[t.pk].liq_distance_pct, by_pk[t.pk].liq_threshold_pct,
               by_pk[t.pk].near_liquidation)
        for name, t in deals.items()
    }  # fmt: skip
    assert got == {
        "long_9_5": (100.0, Decimal("9.5"), Decimal("10"), True),
        "long_10": (100.0, Decimal("10"), Decimal("10"), False),
        "short_11": (100.0, Decimal("11"), Decimal("12"), True),
        "short_13": (100.0, Decimal("13"), Decimal("12"), False),
        "crossed": (100.0, Decimal("-1"), Decimal("12"), True),
        "no_lp": (100.0, None, Decimal("10"), False),
        "closed": (None, None, None, False),
        "bob": (100.0, Decimal("1"), Decimal("10"), True),
    }


def test_dashboard_lists_the_owners_deals_near_liquidation_closest_first(client, user, other_user, deals):
    assert client.get("/").status_code == 302  # anonymous: to the login page
    client.force_login(user)
    page = client.get("/").content.decode()
    section = page[page.index('id="dash-liquidation"') : page.index("</section>", page.index('id="dash-liquidation"'))]
    assert " hidden" not in section[: section.index(">")]
    flagged = [deals[n].pk for n in ("crossed", "long_9_5", "short_11")]
    assert [int(p.split('"')[0]) for p in section.split('id="near-liq-')[1:]] == flagged
    assert 'Near liquidation <span class="muted">(3)</span>' in section
    assert f'href="/bots/{deals["long_9_5"].bot_id}/deals/{deals["long_9_5"].pk}/"' in section
    assert "9.50 % from liquidation" in section and "11.00 % from liquidation" in section
    assert "-1.00 % from liquidation" in section
    assert "LP 90.5 · mark 100.0 · flag below 10%" in section
    assert "flag below 12%" in section
    assert section.count("Bob perp") == 0
    # the active-trades rows carry the flag too
    assert page.count("data-near-liquidation") == 3 + 3
    # the live refresh re-renders the section out of band
    live = client.get("/live/?view=dashboard", HTTP_HX_REQUEST="true").content.decode()
    assert '<section id="dash-liquidation" class="card liq-alert" aria-labelledby="liq-h"  hx-swap-oob="true">' in live
    assert live.count('id="near-liq-') == 3

    client.force_login(other_user)  # bob sees his own deal only
    page = client.get("/").content.decode()
    assert page.count('id="near-liq-') == 1 and f'id="near-liq-{deals["bob"].pk}"' in page
    assert "No buffer" not in page and "Buffer 6" not in page


def test_section_is_hidden_when_nothing_is_near(client, user, swap):
    bot = perp_bot(user, swap, name="Safe")
    deal(bot, swap, side="long", lp="80")  # 20 % away
    client.force_login(user)
    page = client.get("/").content.decode()
    assert '<section id="dash-liquidation" class="card liq-alert" aria-labelledby="liq-h" hidden >' in page
    assert "data-near-liquidation" not in page


def queries(client, url: str, **headers) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, **headers).status_code == 200
    return len(ctx.captured_queries)


def test_mark_lookup_is_one_query_whatever_the_number_of_open_perpetual_deals(client, user, swap):
    bots = [perp_bot(user, swap, name=f"P{i}") for i in range(2)]
    for bot in bots:
        deal(bot, swap, side="long", lp="95")
    client.force_login(user)
    urls = {"dashboard": ("/", {}), "live": ("/live/?view=dashboard", {"HTTP_HX_REQUEST": "true"}),
            "bot": (f"/bots/{bots[0].pk}/", {})}  # fmt: skip
    for url, headers in urls.values():
        client.get(url, **headers)
    before = {name: queries(client, url, **headers) for name, (url, headers) in urls.items()}
    for bot in bots:
        for _ in range(4):
            deal(bot, swap, side="short", lp="104")
    after = {name: queries(client, url, **headers) for name, (url, headers) in urls.items()}
    assert after == before
    page = client.get(f"/bots/{bots[0].pk}/").content.decode()
    assert page.count("(4.00 % from mark)") == 4 and page.count("(5.00 % from mark)") == 1
    # without open perpetual deals the lookup costs nothing: one query fewer
    Trade.objects.filter(leverage__isnull=False).update(leverage=None)
    assert queries(client, "/", **{}) == before["dashboard"] - 1
