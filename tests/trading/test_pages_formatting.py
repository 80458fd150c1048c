"""Numbers on the trades and dashboard pages: prices with thousands separators, money with its
currency, signed percents (market7.formatting through the builtin template filters)."""

import pytest
from django.urls import reverse


def _row(body: str, marker: str) -> str:
    row = body[body.index(marker) :]
    return row[: row.index("</tr>")]


@pytest.mark.django_db
def test_trades_history_row_is_formatted(client, user, bot_with_trades):
    client.force_login(user)
    body = client.get(reverse("trading:trades")).content.decode()
    row = _row(body, f'id="hist-{bot_with_trades.closed_trade.pk}"')
    assert '<td data-label="Avg entry" class="num">40,000.00</td>' in row
    assert '<td data-label="Exit" class="num">42,080.00</td>' in row
    assert '<td data-label="Cost" class="num opt">200.00</td>' in row
    assert '<td data-label="Fees" class="num">0.4000</td>' in row
    assert ">+10.00 USDT</td>" in row  # P&L with its currency
    assert ">+5.00 %</td>" in row
    open_row = _row(body, f'id="hist-{bot_with_trades.open_trade.pk}"')
    assert '<td data-label="Avg entry" class="num">41,000.00</td>' in open_row
    assert '<td data-label="Exit" class="num">—</td>' in open_row  # no exit yet
    tracker = body[body.index(f'id="deal-{bot_with_trades.open_trade.pk}"') :]
    assert "entry <b>41,000.00</b>" in tracker and "now <b>40,800.00</b>" in tracker


@pytest.mark.django_db
def test_dashboard_money_has_its_currency(client, user, bot_with_trades):
    client.force_login(user)
    body = client.get(reverse("trading:home")).content.decode()
    assert "capital 1,000.00 USDT" in body
    assert 'data-kpi="total_pnl">+12.50 USDT<' in body
    assert "realized +10.00 USDT" in body
