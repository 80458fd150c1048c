"""Dashboard (/) and its live fragments: exact values, scoping, anonymous redirect."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.views.dashboard import user_equity_series, user_performance


@pytest.mark.django_db
def test_anonymous_redirects(client):
    for url in (reverse("trading:home"), reverse("trading:dashboard-equity"), reverse("trading:live-fragments")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_owner_sees_exact_values(client, user, bot_with_trades):
    client.force_login(user)
    response = client.get(reverse("trading:home"))
    assert response.status_code == 200
    body = response.content.decode()
    summary = response.context["summary"]
    assert summary["balance"] == Decimal("1012.5")
    assert summary["active_trades"] == 1 and summary["closed_trades"] == 1
    # volume = fills 41500*0.005 + 40500*0.005 = 410
    assert summary["volume"] == Decimal("410")
    assert 'data-kpi="balance">1,012.50' in body
    assert 'data-kpi="active_trades">1<' in body
    assert 'data-kpi="volume">410.00' in body
    # today (market day of 2024-01-01): equity 1012.5 - capital 1000 (no snapshot before the day)
    assert 'data-kpi="today_pnl">+12.50' in body
    # performance: one closed deal, +10 -> win rate 100 %, avg 10
    assert 'data-perf="win_rate">100.0 %' in body
    assert ">+10.00 USDT</dd>" in body
    # max drawdown of 1000,1000,1004,1010,1008,1011,1012.5 = (1010-1008)/1010 = 0.198 %
    assert 'data-perf="max_drawdown" class="down">0.20 %' in body
    # active trades: BTC/USDT, entry 41000, current 40800, SO 1 / 3, decisions with reasons
    assert f'id="active-trade-{bot_with_trades.open_trade.pk}"' in body
    assert "1 / 3" in body and ">41,000.00</td>" in body and ">40,800.00</td>" in body
    assert "spend_guard: deal spend 41.2% &gt; cap 40%" in body
    assert "score 0.71" not in body  # routine allow decisions are hidden
    assert 'ws-connect="/ws/live/"' in body and 'hx-ext="ws"' in body


@pytest.mark.django_db
def test_other_user_sees_nothing_of_alice(client, other_user, bot_with_trades):
    client.force_login(other_user)
    response = client.get(reverse("trading:home"))
    body = response.content.decode()
    assert response.context["summary"]["balance"] == 0
    assert "Alpha DCA" not in body and "spend_guard" not in body
    assert client.get(reverse("trading:dashboard-equity")).json() == {"series": []}
    assert client.get(reverse("trading:dashboard-equity"), {"bot": bot_with_trades.pk}).status_code == 404


@pytest.mark.django_db
def test_equity_json(client, user, bot_with_trades):
    client.force_login(user)
    series = client.get(reverse("trading:dashboard-equity")).json()["series"]
    assert [p["equity"] for p in series] == [1000, 1004, 1010, 1008, 1011, 1012.5]
    assert series[0]["time"] == int(T0.timestamp()) and series[-1]["pnl"] == 12.5
    one = client.get(reverse("trading:dashboard-equity"), {"bot": bot_with_trades.pk}).json()["series"]
    assert [p["pnl"] for p in one] == [0, 4, 10, 8, 11, 12.5]


@pytest.mark.django_db
def test_combined_equity_two_bots(user, market, bot_with_trades):
    from trading.models import EquitySnapshot

    b2 = make_bot(user, market, name="second", capital=Decimal("500"))
    EquitySnapshot.objects.create(bot=b2, time=T0 + 2 * H, equity=Decimal("490"))
    series = user_equity_series(user)
    # before b2's first snapshot it counts with its capital 500, then 490
    assert [p["equity"] for p in series] == [1500, 1504, 1500, 1498, 1501, 1502.5]
    perf = user_performance(user, series)
    assert perf["win_rate_pct"] == 100.0 and perf["avg_pnl"] == Decimal("10")


@pytest.mark.django_db
def test_htmx_gets_fragments_only(client, user, bot_with_trades):
    client.force_login(user)
    body = client.get(reverse("trading:home"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in body and 'id="dash-summary"' in body
    live = client.get(reverse("trading:live-fragments"), {"view": "dashboard"}).content.decode()
    assert "<html" not in live
    for section in ("dash-summary", "dash-liquidation", "dash-performance", "dash-active", "dash-decisions"):
        assert f'id="{section}"' in live
    assert live.count('hx-swap-oob="true"') == 5  # dash-liquidation: hidden without perpetual deals near liquidation
