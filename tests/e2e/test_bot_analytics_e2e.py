"""Browser end-to-end for the bot page analytics: the P&L chart is drawn (a canvas, every point
in view: fit to content) and the profit calendar switches between daily, weekly and monthly
P&L in place (HTMX), with the exact sums of the deals created here. Screenshots in
test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


# (opened_at, closed_at, realized P&L in USDT)
DEALS = [
    (at(1, 15), at(1, 16), "3"),
    (at(2, 26, 8), at(2, 26, 10), "10"),
    (at(2, 28), at(2, 29), "-4"),
    (at(3, 4, 10), at(3, 5, 9), "7.25"),
]


def cell(page, start: str) -> tuple[str, str]:
    loc = page.locator(f'#bot-performance [data-period-start="{start}"]')
    return loc.get_attribute("data-pnl"), loc.get_attribute("data-trades")


def test_bot_page_pnl_chart_and_profit_calendar(transactional_db, make_user, page, live_server_url, login, artifact):
    from trading.models import Bot, Exchange, Market, Trade

    owner = make_user("erin", "trader")
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    market = Market.objects.create(exchange=ex, symbol="BTC/USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT")
    bot = Bot.objects.create(
        owner=owner,
        name="Calendar bot",
        strategy="smart_dca",
        params={"base_order_size": 20.0},
        capital=Decimal("1000"),
        feed=Bot.FeedKind.REPLAY,
        replay_start=at(1, 1),
        replay_clock=at(1, 1),
        status=Bot.Status.STOPPED,
        last_candle_at=at(3, 5, 12),
    )
    bot.markets.set([market])
    for i, (opened, closed, pnl) in enumerate(DEALS):
        Trade.objects.create(
            bot=bot,
            market=market,
            deal_id=f"d{i}",
            status="closed",
            opened_at=opened,
            closed_at=closed,
            avg_entry=Decimal("40000"),
            amount=Decimal("0.005"),
            cost=Decimal("200"),
            realized_pnl=Decimal(pnl),
        )

    login(page, "erin", next=f"/bots/{bot.pk}/")
    page.goto(f"{live_server_url}/bots/{bot.pk}/")

    # The P&L chart: a canvas, its six points (0 at the first open, four closes, the market time) all in view.
    page.wait_for_selector("#bot-equity-chart canvas")
    page.wait_for_function("Number(document.querySelector('#bot-equity-chart').dataset.points || 0) === 6")
    visible = page.evaluate(
        "(() => { const r = document.querySelector('#bot-equity-chart')._m7eq.chart.timeScale()"
        ".getVisibleLogicalRange(); return [r.from, r.to]; })()"
    )
    assert visible[0] <= 0 and visible[1] >= 5, visible

    # The calendar opens on days; weekly and monthly swap in place (no reload: the marker survives).
    assert page.locator("#bot-performance").get_attribute("data-period") == "day"
    assert cell(page, "2024-02-26") == ("10.00", "1")
    assert cell(page, "2024-03-05") == ("7.25", "1")
    page.evaluate("window.__m7_marker = 1")
    page.click('#bot-performance [data-period-tab="week"]')
    page.wait_for_selector('#bot-performance[data-period="week"]')
    assert cell(page, "2024-02-26") == ("6.00", "2")  # +10 and -4
    assert cell(page, "2024-01-15") == ("3.00", "1")
    assert page.locator('#bot-performance [data-period-tab="week"]').get_attribute("aria-selected") == "true"
    page.screenshot(path=artifact("e2e_bot_calendar_week.png"), full_page=True)
    page.click('#bot-performance [data-period-tab="month"]')
    page.wait_for_selector('#bot-performance[data-period="month"]')
    assert cell(page, "2024-02-01") == ("6.00", "2")
    assert cell(page, "2024-03-01") == ("7.25", "1")
    assert page.locator("#bot-performance").inner_text().count("Total +16.25 USDT · 4 deals") == 1
    page.click('#bot-performance [data-period-tab="day"]')
    page.wait_for_selector('#bot-performance[data-period="day"]')
    assert cell(page, "2024-02-29") == ("-4.00", "1")
    assert page.evaluate("window.__m7_marker") == 1

    # Performance per pair.
    row = page.locator('#bot-pairs tr[data-pair="BTC/USDT"]').inner_text()
    assert "+16.25 USDT" in row and "75.0 %" in row
    page.screenshot(path=artifact("e2e_bot_analytics.png"), full_page=True)
    assert not [e for e in page.m7_errors if "favicon" not in e], page.m7_errors
