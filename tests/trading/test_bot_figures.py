"""The bot page's top figures use the shared formatting: money with the quote currency and
thousands separators, signed P&L, P&L percent of capital."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.trading.conftest import make_bot
from trading.models import Bot

pytestmark = pytest.mark.django_db


def figures(client, user, bot) -> list[str]:
    client.force_login(user)
    body = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    section = re.search(rf'<section id="bot-figures-{bot.pk}".*?</section>', body, re.S).group(0)
    text = re.sub(r"<[^>]+>", "\n", section)
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_gain(client, user, bot_with_trades):
    # equity 1012.5, capital 1000, realized 10 + unrealized 2.5 = 12.5 (1.25 % of capital)
    assert figures(client, user, bot_with_trades)[:8] == [
        "Equity",
        "1,012.50 USDT",
        "capital 1,000.00 USDT",
        "P&amp;L",
        "+12.50 USDT",
        "+1.25 %",
        "realized +10.00 USDT · unrealized +2.50 USDT",
        "Open deals",
    ]


def test_loss_and_no_equity_yet(client, user, market):
    bot = make_bot(
        user,
        market,
        status=Bot.Status.RUNNING,
        capital=Decimal("25000"),
        equity=Decimal("23765.4321"),
        realized_pnl=Decimal("-1300"),
        unrealized_pnl=Decimal("65.4321"),
    )
    assert figures(client, user, bot)[:7] == [
        "Equity",
        "23,765.43 USDT",
        "capital 25,000.00 USDT",
        "P&amp;L",
        "-1,234.57 USDT",
        "-4.94 %",
        "realized -1,300.00 USDT · unrealized +65.43 USDT",
    ]
    fresh = make_bot(user, market, name="fresh", capital=Decimal("1500"))
    assert figures(client, user, fresh)[:7] == [
        "Equity",
        "1,500.00 USDT",
        "capital 1,500.00 USDT",
        "P&amp;L",
        "0.00 USDT",
        "0.00 %",
        "realized 0.00 USDT · unrealized 0.00 USDT",
    ]
