"""The dashboard's recent decisions: market-time rows only (no wall-clock status/error rows),
newest market time first — not in the order they were written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, BotEvent
from trading.selectors.dashboard import recent_decisions

pytestmark = pytest.mark.django_db

W0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)  # wall-clock time


@pytest.fixture
def two_bots(user, other_user, market):
    """Two replay bots of alice at different market times, rows written out of market-time
    order, plus wall-time status/error rows and bob's decision."""
    a = make_bot(user, market, name="A", status=Bot.Status.RUNNING)
    b = make_bot(user, market, name="B", status=Bot.Status.ERROR)
    bob = make_bot(other_user, market, name="Bob")
    rows = [
        (a, "decision", T0 + 1 * H, "spend_guard", "block", "a@1"),
        (b, "error", W0 + timedelta(minutes=5), "step", "error", "step failed: boom"),
        (b, "trade_opened", T0 + 5 * H, "base_order", "opened", "b@5"),
        (a, "decision", T0 + 9 * H, "confidence", "allow", "a@9 routine"),
        (a, "status", W0, "start", "running", "start: bot is running"),
        (a, "trade_closed", T0 + 3 * H, "take_profit", "closed", "a@3"),
        (b, "decision", T0 + 7 * H, "max_deals", "block", "b@7"),
        (bob, "decision", T0 + 8 * H, "spend_guard", "block", "bob@8"),
    ]
    for i, (bot, kind, time, rule, outcome, reason) in enumerate(rows):
        e = BotEvent.objects.create(bot=bot, time=time, kind=kind, rule=rule, outcome=outcome, reason=reason)
        # written in this order, a minute apart: created_at order = list order
        BotEvent.objects.filter(pk=e.pk).update(created_at=W0 + timedelta(minutes=i))
    return a, b


def test_recent_decisions_market_time_only_newest_market_time_first(user, other_user, two_bots):
    rows = recent_decisions(user)
    assert [(e.reason, e.bot.name, e.time) for e in rows] == [
        ("b@7", "B", T0 + 7 * H),
        ("b@5", "B", T0 + 5 * H),
        ("a@3", "A", T0 + 3 * H),
        ("a@1", "A", T0 + 1 * H),
    ]
    assert [e.reason for e in recent_decisions(user, limit=2)] == ["b@7", "b@5"]
    assert [e.reason for e in recent_decisions(other_user)] == ["bob@8"]


def test_dashboard_lists_them_in_that_order(client, user, two_bots):
    client.force_login(user)
    body = client.get(reverse("trading:home")).content.decode()
    positions = [body.find(reason) for reason in ("b@7", "b@5", "a@3", "a@1")]
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    assert "step failed: boom" not in body and "start: bot is running" not in body and "bob@8" not in body
