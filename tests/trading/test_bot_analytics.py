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
    return re.findall(rf'<tr {attr}="(\w+)">.*?<td class="reason">(.*?)</td>', section, flags=re.S)


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
