"""Bot page analytics: the decision log on one time axis (market time) apart from the bot
activity (wall time); the equity/P&L JSON, the profit calendar and the per-pair performance —
exact values from deals created here, owner scoping and query budgets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, BotEvent
from trading.selectors.events import bot_activity, bot_events_page

W0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)  # wall-clock time of the status events
MIN = timedelta(minutes=1)


def login(client, user):
    client.force_login(user)
    return client


# ============================================================================ decision log
@pytest.fixture
def logged_bot(user, market):
    """A replay bot (market time January 2024) whose log holds market-time rows and wall-time
    status/error rows (June 2025), written in an id order that differs from both time orders."""
    bot = make_bot(user, market, status=Bot.Status.ERROR, last_candle_at=T0 + 3 * H)
    rows = [
        ("decision", T0 + 2 * H, "spend_guard", "block", "d@2"),
        ("status", W0, "start", "running", "start: bot is running"),
        ("decision", T0 + 1 * H, "confidence", "allow", "d@1"),
        ("fill", T0 + 3 * H, "base_order", "filled", "fill@3"),
        ("error", W0 + 5 * MIN, "step", "error", "step failed: boom"),
        ("status", W0 + 1 * MIN, "pause", "paused", "pause: bot is paused"),
        ("trade_closed", T0 + 3 * H, "take_profit", "closed", "closed@3"),
    ]
    for kind, time, rule, outcome, reason in rows:
        BotEvent.objects.create(
            bot=bot, time=time, kind=kind, rule=rule, outcome=outcome, reason=reason, symbol="BTC/USDT"
        )
    return bot


def table_rows(body: str, section_id: str, attr: str) -> list[tuple[str, str]]:
    """``[(kind, reason)]`` of the rows of the table inside ``id=section_id``, in page order."""
    section = body.split(f'id="{section_id}"', 1)[1]
    section = section.split("</table>", 1)[0]
    return re.findall(rf'<tr {attr}="(\w+)">.*?<td [^>]*class="[^"]*reason">(.*?)</td>', section, flags=re.S)


@pytest.mark.django_db
def test_decision_log_is_market_time_only_newest_first(user, logged_bot):
    events, total = bot_events_page(user=user, bot=logged_bot)
    # market time desc, then id desc (closed@3 was written after fill@3 on the same candle)
    assert [e.reason for e in events] == ["closed@3", "fill@3", "d@2", "d@1"]
    assert total == 4
    # a wall-time kind is not in the decision log at all
    assert bot_events_page(user=user, bot=logged_bot, kind="status") == ([], 0)
    assert [e.reason for e in bot_activity(user=user, bot=logged_bot)] == [
        "step failed: boom",
        "pause: bot is paused",
        "start: bot is running",
    ]


@pytest.mark.django_db
def test_bot_page_log_and_activity_in_order(client, user, logged_bot):
    body = login(client, user).get(reverse("trading:bot", args=[logged_bot.pk])).content.decode()
    assert table_rows(body, "bot-events", "data-event-kind") == [
        ("trade_closed", "closed@3"),
        ("fill", "fill@3"),
        ("decision", "d@2"),
        ("decision", "d@1"),
    ]
    assert table_rows(body, "bot-activity", "data-activity-kind") == [
        ("error", "step failed: boom"),
        ("status", "pause: bot is paused"),
        ("status", "start: bot is running"),
    ]
    assert "2025-06-01 10:05:00" in body  # the error's wall time, to the second


@pytest.mark.django_db
def test_decision_log_filters_kind_and_symbol(client, user, logged_bot, market):
    from trading.models import Exchange, Market

    eth = Market.objects.create(
        exchange=Exchange.objects.get(code="binance"),
        symbol="ETH/USDT",
        exchange_symbol="ETHUSDT",
        base="ETH",
        quote="USDT",
    )
    logged_bot.markets.add(eth)
    BotEvent.objects.create(
        bot=logged_bot, time=T0 + 4 * H, kind="decision", rule="x", outcome="block", reason="eth@4", symbol="ETH/USDT"
    )
    url = reverse("trading:bot-events", args=[logged_bot.pk])
    login(client, user)
    body = client.get(url, {"symbol": "ETH/USDT"}, HTTP_HX_REQUEST="true").content.decode()
    assert table_rows(body, "bot-events", "data-event-kind") == [("decision", "eth@4")]
    body = client.get(url, {"kind": "decision", "symbol": "BTC/USDT"}, HTTP_HX_REQUEST="true").content.decode()
    assert table_rows(body, "bot-events", "data-event-kind") == [("decision", "d@2"), ("decision", "d@1")]
    # not one of the bot's markets: ignored (the whole log)
    body = client.get(url, {"symbol": "DOGE/USDT"}, HTTP_HX_REQUEST="true").content.decode()
    assert [r for _, r in table_rows(body, "bot-events", "data-event-kind")] == [
        "eth@4",
        "closed@3",
        "fill@3",
        "d@2",
        "d@1",
    ]
    # the page's filter offers market-time kinds only, and the market select (two markets)
    page = client.get(reverse("trading:bot", args=[logged_bot.pk])).content.decode()
    kinds = re.findall(r'<option value="(\w+)"', page.split('name="kind"')[1].split("</select>")[0])
    assert kinds == ["decision", "order", "fill", "trade_opened", "trade_closed"]
    assert '<select name="symbol">' in page


@pytest.mark.django_db
def test_other_users_log_is_404(client, other_user, logged_bot):
    login(client, other_user)
    assert client.get(reverse("trading:bot-events", args=[logged_bot.pk])).status_code == 404
    assert bot_events_page(user=other_user, bot=logged_bot) == ([], 0)
    assert bot_activity(user=other_user, bot=logged_bot) == []


# ============================================================================ analytics
D = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)  # the bot's market time (a Tuesday)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


# (symbol, opened_at, closed_at, realized P&L); the ETH deal with closed_at None is open
DEALS = [
    ("BTC/USDT", at(1, 15), at(1, 16), "3"),
    ("BTC/USDT", at(2, 26, 8), at(2, 26, 10), "10"),
    ("BTC/USDT", at(2, 28), at(2, 29), "-4"),
    ("ETH/USDT", at(2, 29, 6), at(2, 29, 12), "6"),
    ("ETH/USDT", at(3, 1), at(3, 1, 1, 30), "-2.5"),
    ("BTC/USDT", at(3, 4, 10), at(3, 5, 9), "7.25"),
    ("ETH/USDT", at(3, 5, 8), None, None),
]


def add_market(symbol: str):
    from trading.models import Exchange, Market

    base = symbol.split("/")[0]
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    return Market.objects.get_or_create(
        exchange=ex, symbol=symbol, defaults={"exchange_symbol": base + "USDT", "base": base, "quote": "USDT"}
    )[0]


def add_deals(bot, deals, start: int = 0) -> None:
    from decimal import Decimal

    from trading.models import Trade

    markets = {m.symbol: m for m in bot.markets.all()}
    for i, (symbol, opened, closed, pnl) in enumerate(deals, start=start):
        Trade.objects.create(
            bot=bot,
            market=markets[symbol],
            deal_id=f"d{i}",
            status="closed" if closed else "open",
            opened_at=opened,
            closed_at=closed,
            avg_entry=Decimal("100"),
            amount=Decimal("1"),
            cost=Decimal("100"),
            realized_pnl=Decimal(pnl) if pnl is not None else None,
        )


@pytest.fixture
def perf_bot(user, market):
    from decimal import Decimal

    bot = make_bot(user, market, status=Bot.Status.RUNNING, last_candle_at=D, unrealized_pnl=Decimal("-1.5"))
    bot.markets.add(add_market("ETH/USDT"), add_market("SOL/USDT"))
    add_deals(bot, DEALS)
    return bot


def cells(body: str) -> list[tuple[str, str, str]]:
    """``[(period start, P&L, deals)]`` of the calendar cells, in page order."""
    return re.findall(r'data-period-start="([\d-]+)" data-pnl="([^"]+)" data-trades="(\d+)"', body)


@pytest.mark.django_db
def test_profit_calendar_exact_sums_per_day_week_month(user, perf_bot):
    from decimal import Decimal

    from trading.selectors.performance import bot_profit_calendar

    day = bot_profit_calendar(user=user, bot=perf_bot, period="day")
    assert len(day["rows"]) == 31 and day["rows"][0]["start"] == at(2, 4) and day["rows"][-1]["start"] == at(3, 5)
    traded = [
        (r["start"], r["pnl"], r["trades"], r["wins"], r["win_rate_pct"], r["heat"]) for r in day["rows"] if r["trades"]
    ]
    assert traded == [
        (at(2, 26), Decimal("10"), 1, 1, 100.0, 100),
        (at(2, 29), Decimal("2"), 2, 1, 50.0, 20),
        (at(3, 1), Decimal("-2.5"), 1, 0, 0.0, 25),
        (at(3, 5), Decimal("7.25"), 1, 1, 100.0, 72),  # 72.5 rounded half-even
    ]
    assert day["total"] == {"pnl": Decimal("16.75"), "trades": 5, "wins": 3, "win_rate_pct": 60.0}
    assert day["rows"][0]["pnl"] == Decimal("0") and day["rows"][0]["win_rate_pct"] is None
    assert day["rows"][-1]["pnl_pct"] == Decimal("0.725")  # of capital 1000

    week = bot_profit_calendar(user=user, bot=perf_bot, period="week")
    assert [r["start"] for r in week["rows"]][::11] == [datetime(2023, 12, 18, tzinfo=UTC), at(3, 4)]
    assert [(r["start"], r["pnl"], r["trades"], r["wins"]) for r in week["rows"] if r["trades"]] == [
        (at(1, 15), Decimal("3"), 1, 1),
        (at(2, 26), Decimal("9.5"), 4, 2),
        (at(3, 4), Decimal("7.25"), 1, 1),
    ]
    assert week["total"] == {"pnl": Decimal("19.75"), "trades": 6, "wins": 4, "win_rate_pct": 4 / 6 * 100}

    month = bot_profit_calendar(user=user, bot=perf_bot, period="month")
    assert len(month["rows"]) == 12 and month["rows"][0]["start"] == datetime(2023, 4, 1, tzinfo=UTC)
    assert [(r["start"], r["pnl"], r["trades"], r["win_rate_pct"]) for r in month["rows"] if r["trades"]] == [
        (at(1, 1), Decimal("3"), 1, 100.0),
        (at(2, 1), Decimal("12"), 3, 2 / 3 * 100),
        (at(3, 1), Decimal("4.75"), 2, 50.0),
    ]
    with pytest.raises(ValueError, match="unknown period 'year'"):
        bot_profit_calendar(user=user, bot=perf_bot, period="year")


@pytest.mark.django_db
def test_pair_performance_exact(user, perf_bot):
    from decimal import Decimal

    from trading.selectors.performance import bot_pair_performance

    assert bot_pair_performance(user=user, bot=perf_bot) == [
        {
            "symbol": "BTC/USDT",
            "trades": 4,
            "open": 0,
            "wins": 3,
            "losses": 1,
            "win_rate_pct": 75.0,
            "pnl": Decimal("16.25"),
            "avg_pnl": Decimal("4.0625"),
            "profit_factor": 5.0625,  # (3 + 10 + 7.25) / 4
            "avg_duration_s": 65700.0,  # (24h + 2h + 24h + 23h) / 4 = 18h15m
        },
        {
            "symbol": "ETH/USDT",
            "trades": 2,
            "open": 1,
            "wins": 1,
            "losses": 1,
            "win_rate_pct": 50.0,
            "pnl": Decimal("3.5"),
            "avg_pnl": Decimal("1.75"),
            "profit_factor": 2.4,
            "avg_duration_s": 13500.0,  # (6h + 1h30) / 2
        },
        {
            "symbol": "SOL/USDT",
            "trades": 0,
            "open": 0,
            "wins": 0,
            "losses": 0,
            "win_rate_pct": None,
            "pnl": Decimal("0"),
            "avg_pnl": None,
            "profit_factor": None,
            "avg_duration_s": None,
        },
    ]


@pytest.mark.django_db
def test_equity_json_realized_cumulative_plus_unrealized(client, user, perf_bot):
    data = login(client, user).get(reverse("trading:bot-equity", args=[perf_bot.pk])).json()
    s = lambda dt: int(dt.timestamp())  # noqa: E731
    assert data["currency"] == "USDT" and data["capital"] == "1000"
    assert (data["realized"], data["unrealized"]) == ("19.75", "-1.5")
    assert [(p["time"], p["pnl"], p["equity"]) for p in data["series"]] == [
        (s(at(1, 15)), 0.0, 1000.0),
        (s(at(1, 16)), 3.0, 1003.0),
        (s(at(2, 26, 10)), 13.0, 1013.0),
        (s(at(2, 29)), 9.0, 1009.0),
        (s(at(2, 29, 12)), 15.0, 1015.0),
        (s(at(3, 1, 1, 30)), 12.5, 1012.5),
        (s(at(3, 5, 9)), 19.75, 1019.75),
        (s(D), 18.25, 1018.25),  # + unrealized at the market time
    ]


@pytest.mark.django_db
def test_equity_json_empty_bot_and_same_second_closes(client, user, market):
    bot = make_bot(user, market)
    login(client, user)
    assert client.get(reverse("trading:bot-equity", args=[bot.pk])).json()["series"] == []
    add_deals(bot, [("BTC/USDT", at(1, 1), at(1, 2), "2"), ("BTC/USDT", at(1, 1, 5), at(1, 2), "-3")])
    series = client.get(reverse("trading:bot-equity", args=[bot.pk])).json()["series"]
    assert [(p["time"], p["pnl"]) for p in series] == [
        (int(at(1, 1).timestamp()), 0.0),
        (int(at(1, 2).timestamp()), -1.0),
    ]


@pytest.mark.django_db
def test_performance_partial_switches_period(client, user, perf_bot):
    login(client, user)
    url = reverse("trading:bot-performance", args=[perf_bot.pk])
    body = client.get(url, {"period": "week"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in body and 'data-period="week"' in body
    assert [c for c in cells(body) if c[2] != "0"] == [
        ("2024-01-15", "3.00", "1"),
        ("2024-02-26", "9.50", "4"),
        ("2024-03-04", "7.25", "1"),
    ]
    assert "+9.50 USDT" in body and "4 deals · 50 % won" in body
    assert "Total +19.75 USDT · 6 deals · win rate 66.7 %" in body
    body = client.get(url, {"period": "month"}).content.decode()
    assert [c for c in cells(body) if c[2] != "0"] == [
        ("2024-01-01", "3.00", "1"),
        ("2024-02-01", "12.00", "3"),
        ("2024-03-01", "4.75", "2"),
    ]
    response = client.get(url, {"period": "year"})
    assert response.status_code == 400 and response.content == b"period must be one of day, week, month"


@pytest.mark.django_db
def test_bot_page_shows_chart_calendar_and_pairs(client, user, perf_bot):
    body = login(client, user).get(reverse("trading:bot", args=[perf_bot.pk])).content.decode()
    assert f'data-url="/bots/{perf_bot.pk}/equity.json"' in body and "data-equity-chart" in body
    assert 'data-period="day"' in body
    assert [c for c in cells(body) if c[2] != "0"] == [
        ("2024-02-26", "10.00", "1"),
        ("2024-02-29", "2.00", "2"),
        ("2024-03-01", "-2.50", "1"),
        ("2024-03-05", "7.25", "1"),
    ]
    pairs = body.split('id="bot-pairs"')[1].split("</table>")[0]
    rows = re.findall(r'<tr data-pair="([^"]+)">(.*?)</tr>', pairs, flags=re.S)
    assert [symbol for symbol, _ in rows] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    btc = re.sub(r"<[^>]+>", "|", rows[0][1])
    cols = [c.strip() for c in btc.split("|") if c.strip()]
    assert cols == ["BTC/USDT", "4", "0", "75.0 %", "(3/4)", "+16.25 USDT", "+4.06 USDT", "5.06", "18h 15m"]
    sol = [c.strip() for c in re.sub(r"<[^>]+>", "|", rows[2][1]).split("|") if c.strip()]
    assert sol == ["SOL/USDT", "0", "0", "—", "0.00 USDT", "—", "—", "—"]


@pytest.mark.django_db
def test_query_budget_does_not_grow_with_deals(client, user, perf_bot, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(client, user)
    urls = [
        reverse("trading:bot", args=[perf_bot.pk]),
        reverse("trading:bot-equity", args=[perf_bot.pk]),
        reverse("trading:bot-performance", args=[perf_bot.pk]) + "?period=week",
    ]

    def counts():
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            out.append(len(ctx))
        return out

    before = counts()
    more = [("ETH/USDT", at(3, 2, h), at(3, 2, h, 30), "1") for h in range(20)]
    add_deals(perf_bot, more, start=100)
    assert counts() == before
    with django_assert_max_num_queries(6):
        client.get(urls[1])
    with django_assert_max_num_queries(6):
        client.get(urls[2])


@pytest.mark.django_db
class TestAnalyticsAccess:
    def urls(self, bot):
        return [
            reverse("trading:bot-equity", args=[bot.pk]),
            reverse("trading:bot-performance", args=[bot.pk]) + "?period=day",
        ]

    def test_owner_200(self, client, user, perf_bot):
        login(client, user)
        assert [client.get(u).status_code for u in self.urls(perf_bot)] == [200, 200]

    def test_other_user_404(self, client, other_user, perf_bot):
        from trading.selectors.performance import bot_pair_performance, bot_pnl_series, bot_profit_calendar

        login(client, other_user)
        assert [client.get(u).status_code for u in self.urls(perf_bot)] == [404, 404]
        # the selectors, handed another user's bot, read no deal
        assert bot_pair_performance(user=other_user, bot=perf_bot) == []
        assert bot_profit_calendar(user=other_user, bot=perf_bot, period="month")["total"]["trades"] == 0
        assert bot_pnl_series(user=other_user, bot=perf_bot)["realized"] == "0"

    def test_anonymous_redirects(self, client, perf_bot):
        for url in self.urls(perf_bot):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
