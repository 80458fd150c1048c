"""Trades page: DCA tracker, filtered history, CSV export (exact header and rows), scoping."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.models import Trade
from trading.views.trades import CSV_COLUMNS

HEADER = (
    "id,bot_id,bot,exchange,market,side,status,deal_id,opened_at,closed_at,avg_entry,exit_price,amount,cost,fees,"
    "realized_pnl,pnl_pct,safety_orders_filled,safety_orders_max,take_profit_price,stop_loss_price,exit_reason"
)


def csv_rows(response):
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.django_db
def test_anonymous_redirects(client):
    for url in (reverse("trading:trades"), reverse("trading:trades-csv")):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_owner_page_tracker_and_history(client, user, bot_with_trades):
    client.force_login(user)
    body = client.get(reverse("trading:trades")).content.decode()
    open_ = bot_with_trades.open_trade
    assert f'id="deal-{open_.pk}"' in body
    # the ladder: SO1 filled at 40500, SO2 pending at 39800, entry, TP and now
    assert 'data-kind="so-filled" data-price="40500.0"' in body
    assert 'data-kind="so-pending" data-price="39800.0"' in body
    assert 'data-kind="entry" data-price="41000.0"' in body
    assert 'data-kind="tp" data-price="43050.0"' in body
    assert 'data-kind="price" data-price="40800.0"' in body
    assert f'id="hist-{open_.pk}"' in body and f'id="hist-{bot_with_trades.closed_trade.pk}"' in body
    assert "take_profit: +5.2% &gt;= 5%" in body


@pytest.mark.django_db
def test_other_user_sees_nothing(client, other_user, bot_with_trades):
    client.force_login(other_user)
    body = client.get(reverse("trading:trades")).content.decode()
    assert "Alpha DCA" not in body and "No deals match." in body and "No open deals." in body
    rows = csv_rows(client.get(reverse("trading:trades-csv")))
    assert rows == [CSV_COLUMNS]
    # filtering by alice's bot id does not leak either
    assert csv_rows(client.get(reverse("trading:trades-csv"), {"bot": bot_with_trades.pk})) == [CSV_COLUMNS]


@pytest.mark.django_db
def test_filters_and_htmx_fragment(client, user, bot_with_trades):
    client.force_login(user)
    url = reverse("trading:trades")
    r = client.get(url, {"status": "closed"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trades-table")
    body = r.content.decode()
    assert "<html" not in body and 'id="trades-table"' in body and 'id="dca-tracker"' not in body
    assert (
        f'id="hist-{bot_with_trades.closed_trade.pk}"' in body
        and f'id="hist-{bot_with_trades.open_trade.pk}"' not in body
    )
    body = client.get(url, {"date_from": "2024-01-01", "date_to": "2024-01-01", "side": "long"}).content.decode()
    assert body.count('id="hist-') == 2
    body = client.get(url, {"date_from": "2024-01-02"}).content.decode()
    assert 'id="hist-' not in body
    body = client.get(url, {"side": "short"}).content.decode()
    assert 'id="hist-' not in body
    body = client.get(url, {"market": "ETH/USDT"}).content.decode()
    assert 'id="hist-' not in body


@pytest.mark.django_db
def test_csv_exact(client, user, bot_with_trades):
    client.force_login(user)
    response = client.get(reverse("trading:trades-csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="market7-trades.csv"'
    rows = csv_rows(response)
    assert ",".join(rows[0]) == HEADER
    b, o, c = bot_with_trades, bot_with_trades.open_trade, bot_with_trades.closed_trade
    assert rows[1:] == [
        [
            str(o.pk),
            str(b.pk),
            "Alpha DCA",
            "binance",
            "BTC/USDT",
            "long",
            "open",
            "d2",
            "2024-01-01T03:00:00+00:00",
            "",
            "41000",
            "",
            "0.01",
            "410",
            "0.41",
            "",
            "",
            "1",
            "3",
            "43050",
            "",
            "",
        ],
        [
            str(c.pk),
            str(b.pk),
            "Alpha DCA",
            "binance",
            "BTC/USDT",
            "long",
            "closed",
            "d1",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T02:00:00+00:00",
            "40000",
            "42080",
            "0.005",
            "200",
            "0.4",
            "10",
            "5.0000",
            "0",
            "3",
            "",
            "",
            "take_profit: +5.2% >= 5%",
        ],
    ]
    rows = csv_rows(client.get(reverse("trading:trades-csv"), {"status": "closed"}))
    assert len(rows) == 2 and rows[1][0] == str(c.pk)


@pytest.mark.django_db
def test_risk_levels(user, market, bot_with_trades):
    from trading.views.trades import decorate_trades

    bot = make_bot(user, market, name="deep", last_candle_at=T0 + 4 * H)  # close 40500
    Trade.objects.create(
        bot=bot,
        market=market,
        deal_id="x",
        opened_at=T0,
        avg_entry=Decimal("46000"),
        amount=Decimal("0.01"),
        cost=Decimal("460"),
        safety_orders_filled=1,
        safety_orders_max=5,
    )
    rows = {t.deal_id: t for t in decorate_trades(Trade.objects.filter(status="open"))}
    assert rows["d2"].risk == "low"  # -0.59 %, 1 of 3 SO
    assert rows["x"].risk == "high"  # (40500 - 46000) / 46000 = -11.96 %
