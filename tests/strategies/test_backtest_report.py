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
    btc_trades = btc[btc.index('id="bt-trades"') :]
    btc_trades = btc_trades[: btc_trades.index("</section>")]
    assert btc.count("<tr data-trade>") == 25 and "ETH/USDT</td>" not in btc_trades


@pytest.mark.parametrize("name", ["trades_csv", "report_json", "chart", "detail"])
def test_access(client, user, other_user, guarded_run, name):
    url = reverse(f"backtests:{name}", args=[guarded_run.pk])
    r = client.get(url)
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(user)
    assert client.get(url).status_code == 200


class TestCompare:
    @pytest.fixture
    def runs(self, db, user):
        from tests.strategies.test_backtest_pages import make_run

        a = make_run(user, name="a")
        b = make_run(
            user,
            name="b",
            metrics={
                "total_return_pct": -1.5,
                "trades": 7,
                "win_rate_pct": 100.0,
                "open_pnl": -20.81,
                "cagr_pct": None,
            },
            report={
                "equity_curve": [
                    {"time": "2025-04-01T00:00:00Z", "equity": 10000.0},
                    {"time": "2025-04-02T00:00:00Z", "equity": 9850.0},
                ]
            },
        )
        return a, b

    def test_list_offers_the_selection(self, client, user, runs):
        client.force_login(user)
        body = client.get(reverse("backtests:list")).content.decode()
        assert f'action="{reverse("backtests:compare")}"' in body
        for run in runs:
            assert f'<input type="checkbox" name="ids" value="{run.pk}" aria-label="Compare run #{run.pk}">' in body

    def test_metrics_side_by_side_and_curves(self, client, user, runs):
        a, b = runs
        client.force_login(user)
        r = client.get(reverse("backtests:compare"), {"ids": [b.pk, a.pk]})
        assert r.status_code == 200
        body = r.content.decode()
        assert [s["label"] for s in r.context["series"]] == [f"#{b.pk} b", f"#{a.pk} a"]
        assert r.context["series"][0]["points"] == [
            {"time": 1743465600, "value": 10000.0},
            {"time": 1743552000, "value": 9850.0},
        ]
        assert len(r.context["series"][1]["points"]) == 4 and r.context["precision"] == 2
        assert (
            '<tr data-compare-metric="total_return_pct"><td>Total return</td>'
            '<td class="num down">-1.50 %</td><td class="num up">3.25 %</td></tr>'
        ) in body
        assert (
            '<tr data-compare-metric="trades"><td>Trades</td><td class="num ">7</td><td class="num ">2</td></tr>'
            in body
        )
        assert (
            '<tr data-compare-metric="open_pnl"><td>Open P&amp;L</td><td class="num down">-20.81 USDT</td>'
            '<td class="num ">—</td></tr>'
        ) in body
        assert (
            '<tr data-compare-metric="cagr_pct"><td>CAGR</td><td class="num ">—</td><td class="num ">—</td></tr>'
            in body
        )
        assert 'id="compare-data"' in body and "data-bt-compare" in body

    @pytest.mark.parametrize(
        "ids,message",
        [
            (["1"], "select 2 to 8 runs to compare (got 1)"),
            ([], "select 2 to 8 runs to compare (got 0)"),
            (["1", "x"], "run ids must be integers"),
            ([str(i) for i in range(1, 10)], "select 2 to 8 runs to compare (got 9)"),
        ],
    )
    def test_bad_selection_is_400_with_the_reason(self, client, user, runs, ids, message):
        client.force_login(user)
        r = client.get(reverse("backtests:compare"), {"ids": ids})
        assert r.status_code == 400 and r.context["error"] == message
        assert "Select 2 to 8 runs" in r.content.decode() or "Run ids must be integers" in r.content.decode()

    def test_access(self, client, user, other_user, runs):
        from tests.strategies.test_backtest_pages import make_run

        a, b = runs
        url = reverse("backtests:compare")
        r = client.get(url, {"ids": [a.pk, b.pk]})
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
        theirs = make_run(other_user, name="theirs")
        client.force_login(user)
        assert client.get(url, {"ids": [a.pk, theirs.pk]}).status_code == 404
        assert client.get(url, {"ids": [a.pk, 999_999]}).status_code == 404
        client.force_login(other_user)
        assert client.get(url, {"ids": [a.pk, b.pk]}).status_code == 404
