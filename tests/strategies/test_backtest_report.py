"""Exports and paging of a stored backtest run: trades.csv, report.json, the closed-deals table a
page at a time (HTMX fragment), on a real run of the bundled candles; owner / other / anonymous."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.strategies.test_backtest_results import GUARDED, execute


@pytest.fixture
def guarded_run(db, user):
    return execute(user, "guarded", GUARDED)


def test_trades_csv_is_every_closed_deal(client, user, guarded_run):
    client.force_login(user)
    r = client.get(reverse("backtests:trades_csv", args=[guarded_run.pk]))
    assert r.status_code == 200
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    assert r["Content-Disposition"] == f'attachment; filename="backtest-{guarded_run.pk}-trades.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == [
        "symbol",
        "side",
        "opened_at",
        "closed_at",
        "entry_price",
        "exit_price",
        "amount",
        "cost",
        "fees",
        "pnl",
        "pnl_pct",
        "exit_reason",
        "safety_orders_filled",
    ]
    assert len(rows) == 1 + 150
    first = guarded_run.trades.order_by("opened_at", "id").first()
    assert rows[1][:4] == [
        first.symbol,
        "long",
        first.opened_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        first.closed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    assert Decimal(rows[1][9]) == first.pnl and rows[1][11] == first.exit_reason
    # the CSV's P&L adds up to the per-market figures of the report
    for symbol, pair in guarded_run.report["pairs"].items():
        total = sum(Decimal(row[9]) for row in rows[1:] if row[0] == symbol)
        assert round(float(total), 6) == round(pair["pnl"], 6)


def test_report_json_is_the_stored_report(client, user, guarded_run):
    client.force_login(user)
    r = client.get(reverse("backtests:report_json", args=[guarded_run.pk]))
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert r["Content-Disposition"] == f'attachment; filename="backtest-{guarded_run.pk}-report.json"'
    body = json.loads(r.content)
    assert (body["id"], body["name"], body["status"], body["exchange"]) == (
        guarded_run.pk,
        "guarded",
        "done",
        "binance",
    )
    assert body["report"] == guarded_run.report
    assert body["report"]["metrics"]["trades"] == 150 and len(body["report"]["trades"]) == 150


def test_trades_table_pages_with_htmx(client, user, guarded_run):
    client.force_login(user)
    url = reverse("backtests:detail", args=[guarded_run.pk])
    body = client.get(url).content.decode()
    assert body.count("<tr data-trade>") == 50 and "Page 1 of 3 · 150 rows" in body
    r = client.get(url, {"page": 3}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="bt-trades")
    frag = r.content.decode()
    assert "<html" not in frag and frag.count("<tr data-trade>") == 50 and "Page 3 of 3 · 150 rows" in frag
    last = guarded_run.trades.order_by("opened_at", "id").last()
    assert frag.rstrip().endswith("</section>") and last.exit_reason in frag
    eth = client.get(url, {"symbol": "ETH/USDT"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="bt-trades").content.decode()
    assert "Page 1 of 3 · 125 rows" in eth and "<td>BTC/USDT</td>" not in eth
    btc = client.get(url, {"symbol": "BTC/USDT", "page": 9}).content.decode()  # out of range: the last page
    assert btc.count("<tr data-trade>") == 25 and "<td>ETH/USDT</td><td><span" not in btc


@pytest.mark.parametrize("name", ["trades_csv", "report_json", "chart", "detail"])
def test_access(client, user, other_user, guarded_run, name):
    url = reverse(f"backtests:{name}", args=[guarded_run.pk])
    r = client.get(url)
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(user)
    assert client.get(url).status_code == 200
