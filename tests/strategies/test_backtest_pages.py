"""Backtest pages: list, form (validation: nothing saved on bad input), run page with the
progress fragment polling via HTMX, results (metrics, curves, trades); owner / other / anonymous.

``strategies.urls`` is included under ``backtests/`` here through this module's urlconf, in case
the project urls do not include it yet (the lead adds it to market7/urls.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import include, path, reverse

from market7 import urls as root_urls
from strategies.models import BacktestRun, BacktestTrade

urlpatterns = list(root_urls.urlpatterns)
if not any(getattr(p, "namespace", None) == "backtests" for p in urlpatterns):
    urlpatterns.insert(0, path("backtests/", include("strategies.urls")))
pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def btc(db):
    from trading.services.candles import candles_import

    candles_import(path=Path(settings.MARKET7_BUNDLED_DATA) / "BTCUSDT-1h.csv.gz")


def make_run(owner, **kw) -> BacktestRun:
    fields = {
        "name": "nightly",
        "strategy": "smart_dca",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "start": datetime(2025, 4, 1, tzinfo=UTC),
        "end": datetime(2025, 4, 30, 23, tzinfo=UTC),
        "capital": Decimal("10000"),
        "status": "done",
        "progress": 1.0,
        "metrics": {
            "total_return_pct": 3.25,
            "trades": 2,
            "win_rate_pct": 50.0,
            "max_drawdown_pct": 4.5,
            "profit_factor": None,
        },
        "report": {
            "equity_curve": [
                {"time": "2025-04-01T00:00:00+00:00", "equity": 10000.0},
                {"time": "2025-04-02T00:00:00+00:00", "equity": 10400.0},
                {"time": "2025-04-03T00:00:00+00:00", "equity": 9932.0},
                {"time": "2025-04-04T00:00:00+00:00", "equity": 10325.0},
            ]
        },
    } | kw
    run = BacktestRun.objects.create(owner=owner, **fields)
    BacktestTrade.objects.create(
        run=run,
        symbol="BTC/USDT",
        side="long",
        opened_at=datetime(2025, 4, 1, 5, tzinfo=UTC),
        closed_at=datetime(2025, 4, 2, tzinfo=UTC),
        entry_price=Decimal("82000"),
        exit_price=Decimal("83230"),
        amount=Decimal("0.1"),
        cost=Decimal("8200"),
        fees=Decimal("16.5"),
        pnl=Decimal("106.5"),
        pnl_pct=1.2988,
        exit_reason="take_profit: +1.5%",
        safety_orders_filled=2,
    )
    return run


def form_data(**kw):
    return {
        "name": "april",
        "strategy": "smart_dca",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "start": "2025-04-01",
        "end": "2025-04-10",
        "capital": "10000",
        "fee_bps": "10",
        "slippage_bps": "5",
        "p_take_profit": "2",
        "params_json": "",
    } | kw


@pytest.mark.django_db
def test_anonymous_redirects(client, user):
    run = make_run(user)
    for url in (
        reverse("backtests:list"),
        reverse("backtests:new"),
        reverse("backtests:detail", args=[run.pk]),
        reverse("backtests:progress", args=[run.pk]),
    ):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url


@pytest.mark.django_db
def test_other_user_404(client, user, other_user):
    run = make_run(user)
    client.force_login(other_user)
    assert client.get(reverse("backtests:detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("backtests:progress", args=[run.pk])).status_code == 404
    body = client.get(reverse("backtests:list")).content.decode()
    assert "nightly" not in body and "No backtests yet." in body


@pytest.mark.django_db
def test_owner_list_and_run_page(client, user):
    run = make_run(user)
    client.force_login(user)
    body = client.get(reverse("backtests:list")).content.decode()
    assert f"#{run.pk}</strong> nightly" in body and "+3.25 %" in body and "4.50 %" in body
    r = client.get(reverse("backtests:detail", args=[run.pk]))
    body = r.content.decode()
    assert r.status_code == 200
    assert 'data-metric="total_return_pct"' in body and "3.25" in body and "4.5" in body
    assert 'data-metric="profit_factor"><dt>Profit factor</dt><dd class="">—' in body
    assert "take_profit: +1.5%" in body and "106.50" in body
    t0 = int(datetime(2025, 4, 1, tzinfo=UTC).timestamp())
    assert r.context["equity"][0] == {"time": t0, "value": 10000.0}
    # drawdown: 9932 / 10400 - 1 = -4.5 %
    assert [p["value"] for p in r.context["drawdown"]] == [0.0, 0.0, -4.5, -0.7212]
    assert 'id="equity-data"' in body and 'id="drawdown-data"' in body
    assert 'hx-trigger="every 1s"' not in body  # finished: no polling


@pytest.mark.django_db
def test_progress_polls_while_running_then_refreshes(client, user):
    run = make_run(user, status="running", progress=0.42, metrics={}, report={})
    client.force_login(user)
    body = client.get(reverse("backtests:detail", args=[run.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in body and "42%" in body and 'aria-valuenow="42"' in body
    url = reverse("backtests:progress", args=[run.pk]) + "?poll=1"
    r = client.get(url, HTTP_HX_REQUEST="true")
    assert "<html" not in r.content.decode() and 'hx-trigger="every 1s"' in r.content.decode() and "HX-Refresh" not in r
    BacktestRun.objects.filter(pk=run.pk).update(status="done", progress=1.0)
    r = client.get(url, HTTP_HX_REQUEST="true")
    assert (
        r["HX-Refresh"] == "true" and 'hx-trigger="every 1s"' not in r.content.decode() and "100%" in r.content.decode()
    )


@pytest.mark.django_db
def test_failed_run_shows_error(client, user):
    run = make_run(user, status="failed", error="no 1h candles for BTC/USDT", metrics={}, report={})
    client.force_login(user)
    body = client.get(reverse("backtests:detail", args=[run.pk])).content.decode()
    assert "no 1h candles for BTC/USDT" in body and "data-metric" not in body


@pytest.mark.django_db
class TestForm:
    def test_renders_schema_fields(self, client, user, btc):
        client.force_login(user)
        body = client.get(reverse("backtests:new")).content.decode()
        assert 'name="symbols"' in body and 'value="BTC/USDT"' in body
        frag = client.get(
            reverse("backtests:params"), {"strategy": "smart_dca"}, HTTP_HX_REQUEST="true"
        ).content.decode()
        assert 'name="p_take_profit"' in frag and "<html" not in frag

    @pytest.mark.parametrize(
        "change,field",
        [
            ({"p_price_deviation": "500"}, "p_price_deviation"),
            ({"params_json": '{"take_profit": -3}'}, "params_json"),
            ({"params_json": "{not json"}, "params_json"),
            ({"params_json": "[1, 2]"}, "params_json"),
            ({"end": "2025-03-01"}, "end"),
            ({"capital": "0"}, "capital"),
            ({"symbols": ["NOPE/USDT"]}, "symbols"),
            ({"strategy": "nope"}, "strategy"),
        ],
    )
    def test_invalid_saves_nothing(self, client, user, btc, change, field):
        client.force_login(user)
        r = client.post(reverse("backtests:new"), form_data(**change))
        assert r.status_code == 200
        assert field in r.context["form"].errors
        assert BacktestRun.objects.count() == 0

    def test_no_candles_in_range_saves_nothing(self, client, user, btc):
        client.force_login(user)
        r = client.post(reverse("backtests:new"), form_data(start="2020-01-01", end="2020-01-31"))
        assert "no 1h candles for BTC/USDT" in str(r.context["form"].non_field_errors())
        assert BacktestRun.objects.count() == 0

    def test_viewer_403(self, client, viewer, btc):
        client.force_login(viewer)
        assert client.get(reverse("backtests:new")).status_code == 403
        assert client.post(reverse("backtests:new"), form_data()).status_code == 403
        assert BacktestRun.objects.count() == 0

    def test_valid_creates_and_redirects(self, client, user, btc, django_capture_on_commit_callbacks):
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            r = client.post(reverse("backtests:new"), form_data(params_json=json.dumps({"max_safety_orders": 3})))
        run = BacktestRun.objects.get()
        assert r.status_code == 302 and r["Location"] == reverse("backtests:detail", args=[run.pk])
        assert len(callbacks) == 1  # the Celery enqueue, after commit
        assert (run.owner, run.name, run.strategy, run.symbols, run.timeframe, run.status) == (
            user,
            "april",
            "smart_dca",
            ["BTC/USDT"],
            "1h",
            "queued",
        )
        assert run.start == datetime(2025, 4, 1, tzinfo=UTC) and run.end == datetime(2025, 4, 10, 23, 59, tzinfo=UTC)
        assert (run.capital, run.fee_bps, run.slippage_bps) == (Decimal("10000"), Decimal("10"), Decimal("5"))
        assert run.params["take_profit"] == 2.0 and run.params["max_safety_orders"] == 3

    def test_executed_run_page_shows_results(self, client, user, btc):
        from strategies.services.backtests import backtest_execute

        client.force_login(user)
        client.post(reverse("backtests:new"), form_data())
        run = BacktestRun.objects.get()
        backtest_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == "done", run.error
        r = client.get(reverse("backtests:detail", args=[run.pk]))
        assert len(r.context["equity"]) > 100
        assert r.context["trades"].paginator.count == run.trades.count()
        assert "data-metric=" in r.content.decode()


@pytest.mark.django_db
def test_run_page_labels_and_units(client, user):
    run = make_run(
        user,
        symbols=["ETH/USDC"],
        metrics={
            "total_return_pct": 3.25,
            "cagr_pct": 12.3456,
            "final_equity": 10325.0,
            "fees_paid": 4.5,
            "sharpe": 1.234,
            "trades": 2,
            "max_drawdown_pct": 4.5,
        },
        params={
            "take_profit": 1.5,
            "trailing_enabled": False,
            "btc_market_filter_enabled": True,
            "risk": {"max_positions": 3},
        },
    )
    client.force_login(user)
    body = client.get(reverse("backtests:detail", args=[run.pk])).content.decode()
    assert 'data-metric="cagr_pct"><dt>CAGR</dt><dd class="up">12.35 %</dd>' in body
    assert 'data-metric="final_equity"><dt>Final equity</dt><dd class="">10,325.00 USDC</dd>' in body
    assert 'data-metric="fees_paid"><dt>Fees paid</dt><dd class="">4.50 USDC</dd>' in body
    assert 'data-metric="max_drawdown_pct"><dt>Max drawdown</dt><dd class="down">4.50 %</dd>' in body
    assert 'data-metric="sharpe"><dt>Sharpe</dt><dd class="up">1.23</dd>' in body
    assert 'data-metric="trades"><dt>Trades</dt><dd class="">2</dd>' in body
    assert "capital 10,000.00 USDC" in body and "+106.50 USDC" in body and "16.50 USDC" in body
    assert 'data-param="trailing_enabled"><dt>Trailing</dt><dd>off</dd>' in body
    assert 'data-param="btc_market_filter_enabled"><dt>BTC market filter</dt><dd>on</dd>' in body
    assert 'data-param="risk.max_positions"><dt>Risk · Max positions</dt><dd>3</dd>' in body
    for raw in ("Cagr pct", "True", "False", " quote<"):
        assert raw not in body, raw


def test_manager_run_page_shows_per_strategy_performance(client, user):
    """Issue 11 §3: a manager run's report["strategies"] (strategy_report) on the run page."""
    equity = make_run(user)
    run = make_run(
        user,
        strategy="manager",
        report=equity.report
        | {
            "strategies": {
                "swing": {"allocation_pct": 30.0, "trades": 4, "wins": 1, "win_rate_pct": 25.0, "pnl": -12.5,
                          "pnl_pct": -0.4166, "sharpe": -0.31, "max_drawdown_pct": 0.62},
                "channel": {"allocation_pct": 30.0, "trades": 2, "wins": 2, "win_rate_pct": 100.0, "pnl": 8.25,
                            "pnl_pct": 0.275, "sharpe": None, "max_drawdown_pct": 0.0},
            }
        },
    )  # fmt: skip
    client.force_login(user)
    html = client.get(reverse("backtests:detail", args=[run.pk])).content.decode()
    section = html[html.index('id="bt-strategies"') :]
    section = section[: section.index("</section>")]
    assert [c.split('"')[0] for c in section.split('data-strategy="')[1:]] == ["channel", "swing"]
    assert (
        '<tr data-strategy="swing"><td class="cell-title"><code>swing</code></td>'
        '<td data-label="Allocation" class="num">30.00 %</td><td data-label="Trades" class="num">4</td>'
        '<td data-label="Win rate" class="num">25.00 %</td>'
        '<td data-label="P&amp;L" class="num down">-12.50 USDT</td>'
        '<td data-label="Of its share" class="num">-0.42 %</td><td data-label="Sharpe" class="num">-0.31</td>'
        '<td data-label="Max drawdown" class="num">0.62 %</td></tr>'
    ) in section
    plain = client.get(reverse("backtests:detail", args=[equity.pk])).content.decode()
    assert 'id="bt-strategies"' not in plain
