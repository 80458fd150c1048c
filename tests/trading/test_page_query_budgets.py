"""Query budgets of the main pages (issue 10 §1, "pages fast"): the dashboard, the bots list, a
bot's detail page and the trades page — and the live-refresh fragments they poll — each render
in at most a fixed number of SQL queries, and that number does not grow with the rows shown
(no query per bot, deal, order or event). The budgets are the counts measured on these pages
(``benchmarks/pages.py`` prints the same counts on the demo data); docs/ui.md lists them.

The data: 3 running bots of alice, each on two markets with candles, each with
:data:`DEALS` closed deals (base order, safety order, take profit; their fills; decisions,
order, fill and deal events; an equity snapshot) and one open deal with a pending safety
order, a portfolio risk block whose drawdown pause holds, and a status event. Then
:func:`grow` adds as many deals again to every bot and two more bots: the counts stay equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from trading.models import Bot, BotEvent, Candle, EquitySnapshot, Exchange, Fill, Market, Order, Trade

T0 = datetime(2024, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
DEALS = 20
HX = {"HTTP_HX_REQUEST": "true"}
_seq = count(1)

# Budgets: the query count of one request, measured (session + user + permissions included).
BUDGETS = {
    "dashboard": 17,
    "bots": 8,
    "bot": 20,  # + the newest signal starts (issue 11)
    "trades": 9,
    "live-dashboard": 14,
    "live-bots": 7,
    "live-bot": 10,
    "live-trades": 4,
    "bot-row": 7,
    "trades-table": 4,
    "bot-events": 8,
}


def _markets() -> list[Market]:
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    out = []
    for base, price in (("BTC", 40000), ("ETH", 2000), ("SOL", 100), ("XRP", 1), ("ADA", 0.5), ("DOGE", 0.1)):
        m, created = Market.objects.get_or_create(
            exchange=ex,
            symbol=f"{base}/USDT",
            defaults={"exchange_symbol": f"{base}USDT", "base": base, "quote": "USDT"},
        )
        if created:
            Candle.objects.bulk_create(
                Candle(market=m, timeframe="1h", open_time=T0 + i * H, open=price, high=price * 1.01,
                       low=price * 0.99, close=price * (1 + i / 1000), volume=10.0)
                for i in range(24 * 50)
            )  # fmt: skip
        out.append(m)
    return out


def add_deals(bot: Bot, market: Market, n: int, start: datetime) -> None:
    """``n`` closed deals of ``bot`` on ``market`` from ``start``, one every 6 h, each with
    three orders and fills, five log entries and an equity snapshot."""
    price = Decimal("100")
    for k in range(n):
        opened = start + k * 6 * H
        deal = f"d{next(_seq)}"
        trade = Trade.objects.create(
            bot=bot, market=market, deal_id=deal, side="long", status="closed", opened_at=opened,
            closed_at=opened + 3 * H, avg_entry=price, amount=Decimal("1"), cost=price, fees=Decimal("0.1"),
            realized_pnl=Decimal("1.5") if k % 3 else Decimal("-2"), exit_price=Decimal("101.5"),
            exit_reason="take_profit", safety_orders_filled=1, safety_orders_max=3,
        )  # fmt: skip
        for i, (tag, side) in enumerate((("base_order", "buy"), ("safety_order_1", "buy"), ("take_profit", "sell"))):
            order = Order.objects.create(
                bot=bot, market=market, trade=trade, client_order_id=f"c{next(_seq)}", side=side,
                amount=Decimal("0.5"), filled=Decimal("0.5"), average=price, status="closed", tag=tag,
                deal_id=deal, placed_at=opened + i * H,
            )  # fmt: skip
            Fill.objects.create(order=order, price=price, amount=Decimal("0.5"), time=opened + i * H)
        for kind, rule, outcome in (
            ("decision", "spend_guard", "block"),
            ("decision", "entry", "allow"),
            ("order", "", ""),
            ("fill", "", ""),
            ("trade_opened", "", ""),
            ("trade_closed", "take_profit", "exit"),
        ):
            BotEvent.objects.create(
                bot=bot, time=opened + H, kind=kind, rule=rule, outcome=outcome, reason=f"{rule or kind} {deal}",
                symbol=market.symbol, payload={"deal_id": deal},
            )  # fmt: skip
        EquitySnapshot.objects.create(bot=bot, time=opened + 3 * H, equity=bot.capital + k, realized_pnl=k)


def make_page_bot(owner, markets: list[Market], name: str) -> Bot:
    """A running replay bot on ``markets`` with DEALS closed deals spread over its markets, one open deal with a pending safety order, a holding drawdown pause, a status event."""
    bot = Bot.objects.create(
        owner=owner, name=name, strategy="smart_dca", params={"base_order_size": 20.0}, timeframe="1h",
        capital=Decimal("1000"), feed=Bot.FeedKind.REPLAY, replay_start=T0, replay_clock=T0,
        status=Bot.Status.RUNNING, equity=Decimal("1010"), realized_pnl=Decimal("12"), unrealized_pnl=Decimal("-2"),
        last_candle_at=T0 + 40 * 24 * H, risk={"drawdown_pause_pct": 10, "max_positions": 3},
        state={"risk": {"paused": True}, "big": ["x" * 50] * 40},
    )  # fmt: skip
    bot.markets.set(markets)
    grow_bot(bot, markets)
    return bot


def grow_bot(bot: Bot, markets: list[Market]) -> None:
    """DEALS more closed deals (over the bot's markets) and one more open deal."""
    closed = Trade.objects.filter(bot=bot, status="closed").count()
    start = T0 + 24 * H + (closed // len(markets)) * 6 * H  # after the deals it has
    for i, market in enumerate(markets):
        add_deals(bot, market, DEALS // len(markets), start + i * H)
    market = markets[0]
    deal = f"o{next(_seq)}"
    trade = Trade.objects.create(
        bot=bot, market=market, deal_id=deal, side="long", status="open", opened_at=T0 + 39 * 24 * H,
        avg_entry=Decimal("100"), amount=Decimal("1"), cost=Decimal("100"), fees=Decimal("0.1"),
        take_profit_price=Decimal("102"), safety_orders_filled=1, safety_orders_max=3,
    )  # fmt: skip
    for tag, status, price in (("base_order", "closed", None), ("safety_order_1", "closed", None),
                               ("safety_order_2", "open", Decimal("95"))):  # fmt: skip
        Order.objects.create(
            bot=bot, market=market, trade=trade, client_order_id=f"c{next(_seq)}", side="buy", type="limit",
            price=price, amount=Decimal("0.5"), filled=Decimal("0.5") if status == "closed" else 0,
            average=Decimal("100") if status == "closed" else None, status=status, tag=tag, deal_id=deal,
            placed_at=T0 + 39 * 24 * H,
        )  # fmt: skip
    BotEvent.objects.create(bot=bot, time=datetime.now(UTC), kind="status", rule="start", outcome="running")
    BotEvent.objects.create(
        bot=bot, time=T0 + 39 * 24 * H, kind="decision", rule="drawdown_pause", outcome="info",
        reason="drawdown_pause: drawdown 11% >= 10%",
    )  # fmt: skip


@pytest.fixture
def page_bots(user):
    markets = _markets()
    return [make_page_bot(user, markets[2 * i : 2 * i + 2], f"Bot {i}") for i in range(3)]


def grow(bots: list[Bot]) -> None:
    """As many deals again on every bot, and two more bots of the same owner."""
    markets = _markets()
    for bot in bots:
        grow_bot(bot, list(bot.markets.order_by("symbol")))
    for i in range(2):
        make_page_bot(bots[0].owner, markets[i : i + 2], f"More {i}")


def _urls(bot: Bot) -> dict[str, tuple[str, dict]]:
    return {
        "dashboard": (reverse("trading:home"), {}),
        "bots": (reverse("trading:bots"), {}),
        "bot": (reverse("trading:bot", args=[bot.pk]), {}),
        "trades": (reverse("trading:trades"), {}),
        "live-dashboard": (reverse("trading:live-fragments") + "?view=dashboard", HX),
        "live-bots": (reverse("trading:live-fragments") + "?view=bots", HX),
        "live-bot": (reverse("trading:live-fragments") + f"?view=bot&bot={bot.pk}", HX),
        "live-trades": (reverse("trading:live-fragments") + "?view=trades", HX),
        "bot-row": (reverse("trading:bot-row", args=[bot.pk]), HX),
        "trades-table": (reverse("trading:trades") + "?page=2", {**HX, "HTTP_HX_TARGET": "trades-table"}),
        "bot-events": (reverse("trading:bot-events", args=[bot.pk]), HX),
    }


def queries_of(client, url: str, headers: dict) -> tuple[int, bytes]:
    """(SQL queries of one GET of ``url``, its body); the page must answer 200. The cache is
    emptied first, so a page counts its queries on a miss (the dashboard's equity series is
    cached, ``user_equity_series``: one query fewer on a hit)."""
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries), response.content


@pytest.mark.parametrize("page", list(BUDGETS))
def test_page_within_budget_and_flat_in_rows(client, user, page_bots, page):
    client.force_login(user)
    url, headers = _urls(page_bots[0])[page]
    client.get(url, **headers)  # first request: session and caches settle
    before, body = queries_of(client, url, headers)
    assert before <= BUDGETS[page], f"{page}: {before} queries > budget {BUDGETS[page]}"
    grow(page_bots)
    after, body_after = queries_of(client, url, headers)
    assert after == before, f"{page}: {before} queries with 3 bots x {DEALS} deals, {after} after growing"
    assert body_after != body or page == "bot-row"  # the grown rows are really on the page


def test_rows_are_shown(client, user, page_bots):
    """The pages under budget show what they list: every bot, open deal and its price."""
    client.force_login(user)
    bots = client.get(reverse("trading:bots")).content.decode()
    assert all(f"Bot {i}" in bots for i in range(3))
    trades = client.get(reverse("trading:trades")).content.decode()
    assert trades.count('id="hist-') == 50  # the first page of 3 x 21 deals
    assert Trade.objects.filter(bot__owner=user).count() == 63
    detail = client.get(reverse("trading:bot", args=[page_bots[0].pk])).content.decode()
    assert "drawdown_pause: drawdown 11% &gt;= 10%" in detail or "drawdown_pause: drawdown 11% >= 10%" in detail


def test_dashboard_equity_series_is_cached_and_a_new_snapshot_is_a_new_key(user, page_bots):
    from trading.selectors.dashboard import user_equity_series

    cache.clear()
    with CaptureQueriesContext(connection) as miss:
        first = user_equity_series(user)
    with CaptureQueriesContext(connection) as hit:
        again = user_equity_series(user)
    assert again == first and len(hit.captured_queries) == len(miss.captured_queries) - 1 == 2
    bot = page_bots[0]
    last = EquitySnapshot.objects.filter(bot=bot).order_by("-time").first()
    EquitySnapshot.objects.create(bot=bot, time=last.time + 10 * H, equity=last.equity + 7)
    grown = user_equity_series(user)
    assert grown[:-1] == first and grown[-1]["equity"] == round(first[-1]["equity"] + 7, 8)
    assert grown[-1]["time"] == int((last.time + 10 * H).timestamp())
