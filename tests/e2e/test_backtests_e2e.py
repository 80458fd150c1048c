"""Browser end-to-end for the backtest pages: the equity and drawdown charts open on the whole
run (fit content, thousands of bars), the drawdown axis is readable for small drawdowns, and
the compare page overlays the chosen runs' equity curves.

Runs are stored rows (the page reads only what a run saved); screenshots in test-artifacts/.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.services]

POINTS = 3000  # ~4 months of 1h candles: more bars than the default min bar spacing fits


def equity_curve(n: int = POINTS, depth: float = 0.016, capital: float = 10_000.0) -> list[dict]:
    """A rising curve with shallow dips: drawdowns between 0 and ``depth`` (a fraction)."""
    t0 = datetime(2025, 4, 1, 1, tzinfo=UTC)
    rows, peak = [], capital
    for i in range(n):
        dip = depth * (0.5 + 0.5 * math.sin(i / 40.0)) if i % 400 > 200 else 0.0
        peak = capital * (1 + 0.0001 * i)
        rows.append({"time": (t0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "equity": peak * (1 - dip)})
    return rows


def make_run(owner, name: str, curve: list[dict], **metrics):
    from strategies.models import BacktestRun

    return BacktestRun.objects.create(
        owner=owner,
        name=name,
        strategy="smart_dca",
        symbols=["BTC/USDT"],
        timeframe="1h",
        start=datetime(2025, 4, 1, tzinfo=UTC),
        end=datetime(2025, 8, 5, tzinfo=UTC),
        capital=Decimal("10000"),
        status="done",
        progress=1.0,
        metrics={"total_return_pct": 30.0, "trades": 12, "max_drawdown_pct": 1.6, **metrics},
        report={"equity_curve": curve, "metrics": {}},
    )


VISIBLE = """(sel) => {
  const el = document.querySelector(sel);
  const c = el && el._m7chart;
  if (!c) return null;
  const r = c.chart.timeScale().getVisibleLogicalRange();
  return {from: r.from, to: r.to, points: c.points};
}"""

AXIS_LABELS = """(sel) => {
  const c = document.querySelector(sel)._m7chart;
  const r = c.series.priceScale().getVisibleRange();
  const f = c.series.priceFormatter();
  const out = [];
  for (let k = 0; k <= 4; k++) out.push(f.format(r.from + (r.to - r.from) * k / 4));
  return out;
}"""


def test_backtest_charts_fit_whole_run_and_drawdown_axis_is_readable(
    transactional_db, make_user, page, live_server_url, login, artifact
):
    owner = make_user("tess", "trader")
    run = make_run(owner, "fit", equity_curve())
    login(page, "tess")
    page.goto(f"{live_server_url}/backtests/{run.pk}/")
    for sel in ("#equity-chart", "#drawdown-chart"):
        page.wait_for_function(f"() => document.querySelector('{sel}')._m7chart")
        rng = page.evaluate(VISIBLE, sel)
        assert rng["points"] == POINTS
        assert rng["from"] <= 0 and rng["to"] >= POINTS - 1, (sel, rng)
    labels = page.evaluate(AXIS_LABELS, "#drawdown-chart")
    assert len(set(labels)) == 5, labels
    assert not [x for x in labels[:-1] if x.strip("−-%0. ") == ""], labels  # only the top may be 0
    page.screenshot(path=artifact("backtest-charts.png"), full_page=True)
    assert page.m7_errors == []


def test_compare_from_the_list(transactional_db, make_user, page, live_server_url, login, artifact):
    owner = make_user("cora", "trader")
    other = make_user("otto", "trader")
    a = make_run(owner, "deep", equity_curve(depth=0.05))
    b = make_run(owner, "shallow", equity_curve(n=2000, depth=0.004), total_return_pct=12.5)
    theirs = make_run(other, "theirs", equity_curve(n=10))
    login(page, "cora")
    page.goto(f"{live_server_url}/backtests/")
    page.check(f"input[name=ids][value='{a.pk}']")
    page.check(f"input[name=ids][value='{b.pk}']")
    page.click("#compare-button")
    page.wait_for_url(lambda u: "/backtests/compare/" in u)
    page.wait_for_function("() => document.querySelector('#compare-chart')._m7chart")
    assert page.eval_on_selector("#compare-chart", "el => el.dataset.series") == "2"
    rng = page.evaluate(VISIBLE, "#compare-chart")
    assert rng["points"] == POINTS and rng["from"] <= 0 and rng["to"] >= POINTS - 1, rng
    row = page.inner_text("tr[data-compare-metric=total_return_pct]").split("\t")
    assert [c.strip() for c in row] == ["Total return", "12.50 %", "30.00 %"]  # list order: newest first
    page.screenshot(path=artifact("backtest-compare.png"), full_page=True)
    assert page.m7_errors == []
    response = page.goto(f"{live_server_url}/backtests/compare/?ids={a.pk}&ids={theirs.pk}")
    assert response.status == 404


def test_real_run_page_price_chart_with_markers(transactional_db, make_user, page, live_server_url, login, artifact):
    from tests.strategies.test_backtest_results import execute

    owner = make_user("rita", "trader")
    run = execute(owner, "summer")
    login(page, "rita")
    page.goto(f"{live_server_url}/backtests/{run.pk}/")
    page.wait_for_function("() => document.querySelector('#price-chart').dataset.loaded === 'true'")
    rng = page.evaluate(VISIBLE, "#price-chart")
    assert rng["points"] == 62 * 24 and rng["from"] <= 0 and rng["to"] >= 62 * 24 - 1, rng
    btc_fills = sum(len(t["orders"]) for t in run.report["trades"]) + len(run.report["open_deals"][0]["orders"])
    assert page.eval_on_selector("#price-chart", "el => el.dataset.markers") == str(btc_fills)
    page.select_option("[data-bt-symbol]", "ETH/USDT")
    page.wait_for_function("() => document.querySelector('#price-chart').dataset.symbol === 'ETH/USDT'")
    assert page.eval_on_selector("#price-chart", "el => el.dataset.markers") == "0"
    assert page.is_visible("[data-open-loss]")
    page.screenshot(path=artifact("backtest-run.png"), full_page=True)
    assert page.m7_errors == []
