"""``manage.py backtest`` and the backtest services on real bundled candles in the database.

Cross-checks: the run read from the database equals the same engine run fed straight from the
bundled CSV files; the report's metrics agree with independent calculations on its own
equity curve and trades; bad arguments save nothing; the Celery task runs on the real broker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from strategies.backtest import BacktestConfig, run_backtest
from strategies.engine import Feed, load_csv
from strategies.models import BacktestRun, BacktestTrade
from trading.brokers import market_spec
from trading.models import Market
from trading.services.candles import candles_import

SYMBOLS = ("BTC/USDT", "ETH/USDT")
ARGS = [
    "--strategy",
    "smart_dca",
    "--symbols",
    "BTC/USDT,ETH/USDT",
    "--timeframe",
    "1h",
    "--start",
    "2025-04-01",
    "--end",
    "2025-08-31",
    "--capital",
    "1000",
]
REPORT_KEYS = {
    "metrics",
    "trades",
    "equity_curve",
    "pairs",
    "decisions",
    "decision_log",
    "decision_log_dropped",
    "open_deals",
    "run",
}
METRIC_KEYS = {
    "open_deals",
    "open_pnl",
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "win_rate_pct",
    "profit_factor",
    "trades",
    "exposure_pct",
    "fees_paid",
    "final_equity",
}
TRADE_KEYS = {
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
    "tags",
    "orders",
}


@pytest.fixture
def candles(db, bundled_data_dir, make_user):
    make_user("quant", "trader", is_superuser=True)
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    return bundled_data_dir


def run_command(*extra):
    out = StringIO()
    call_command("backtest", *ARGS, *extra, stdout=out)
    return out.getvalue()


def test_backtest_command_saves_run_trades_and_writes_report(candles, tmp_path):
    path = tmp_path / "report.json"
    out = run_command("--json", str(path))
    report = json.loads(path.read_text())

    assert set(report) == REPORT_KEYS
    assert set(report["metrics"]) == METRIC_KEYS
    run = BacktestRun.objects.get()
    assert run.status == "done" and run.progress == 1.0 and run.error == ""
    assert run.report == report
    assert run.symbols == ["BTC/USDT", "ETH/USDT"]
    # 2025-04-01 00:00 .. 2025-08-31 23:00 UTC = 153 days of 1h candles: one equity point each.
    assert len(report["equity_curve"]) == 153 * 24
    assert report["equity_curve"][0]["time"] == "2025-04-01T01:00:00Z"  # close of the first candle
    assert report["equity_curve"][-1]["time"] == "2025-09-01T00:00:00Z"
    assert report["metrics"]["trades"] == len(report["trades"]) == BacktestTrade.objects.filter(run=run).count() > 0
    for trade in report["trades"]:
        assert set(trade) == TRADE_KEYS
        assert trade["symbol"] in SYMBOLS and trade["side"] in {"long", "short"}
        assert trade["opened_at"] < trade["closed_at"]
        assert trade["orders"], "every deal lists its orders"
        assert sum(o["fee"] for o in trade["orders"]) == pytest.approx(trade["fees"], abs=1e-9)  # each rounded to 1e-10
        first = trade["orders"][0]
        assert set(first) == {"id", "time", "side", "type", "tag", "price", "amount", "fee"}
    assert "final equity" in out and f"backtest #{run.pk}: smart_dca on BTC/USDT, ETH/USDT 1h" in out


def test_report_metrics_agree_with_independent_calculations(candles, tmp_path):
    path = tmp_path / "r.json"
    run_command("--json", str(path))
    report = json.loads(path.read_text())
    m = report["metrics"]
    equity = np.array([p["equity"] for p in report["equity_curve"]])
    assert m["final_equity"] == pytest.approx(equity[-1], abs=1e-4)
    assert m["total_return_pct"] == pytest.approx((equity[-1] / 1000 - 1) * 100, abs=1e-4)
    with_start = np.concatenate([[1000.0], equity])
    peak = np.maximum.accumulate(with_start)
    assert m["max_drawdown_pct"] == pytest.approx(((peak - with_start) / peak).max() * 100, abs=1e-4)
    pnls = [t["pnl"] for t in report["trades"]]
    wins = sum(1 for p in pnls if p > 0)
    assert m["win_rate_pct"] == pytest.approx(100 * wins / len(pnls), abs=1e-4)
    gross_win = sum(p for p in pnls if p > 0)
    gross_loss = -sum(p for p in pnls if p < 0)
    expected_pf = None if gross_loss == 0 else gross_win / gross_loss
    assert m["profit_factor"] == (None if expected_pf is None else pytest.approx(expected_pf, abs=1e-4))


def test_database_run_equals_engine_fed_from_the_csv_files(candles, tmp_path):
    path = tmp_path / "db.json"
    run_command("--json", str(path))
    from_db = json.loads(path.read_text())

    feed = Feed("1h", {s: load_csv(candles / f"{s.replace('/', '')}-1h.csv.gz") for s in SYMBOLS})
    config = BacktestConfig(
        strategy="smart_dca",
        params=BacktestRun.objects.get().params,
        symbols=SYMBOLS,
        timeframe="1h",
        start_ms=int(datetime(2025, 4, 1, tzinfo=UTC).timestamp() * 1000),
        end_ms=int(datetime(2025, 9, 1, tzinfo=UTC).timestamp() * 1000) - 1,
        capital=1000.0,
        fee_bps=10.0,
        slippage_bps=5.0,
    )
    # The bundled files start 2025-03-05, i.e. 648 candles before the start: the database
    # run uses 500 warm-up candles, so trim the file feed to the same first candle.
    origin = config.start_ms - 500 * 3_600_000
    feed = Feed("1h", {s: feed.candles(s)[int(np.searchsorted(feed.candles(s).time, origin)) :] for s in SYMBOLS})
    specs = [market_spec(m) for m in Market.objects.filter(symbol__in=SYMBOLS).order_by("symbol")]
    _, from_files = run_backtest(config, feed, specs)
    assert json.dumps(from_files, sort_keys=True) == json.dumps(from_db, sort_keys=True)


def test_repeated_runs_give_byte_identical_reports(candles, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_command("--json", str(a))
    run_command("--json", str(b))
    assert a.read_bytes() == b.read_bytes()
    assert BacktestRun.objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "no_such"], "unknown strategy 'no_such'; known strategies:"),
        (["--symbols", "BTC/USDT,PEPE/USDT"], "unknown symbol(s) on binance: PEPE/USDT"),
        (
            ["--start", "2023-01-01", "--end", "2023-02-01"],
            "no 1h candles for BTC/USDT between 2023-01-01 00:00 and 2023-02-01 23:59 UTC",
        ),
        (["--start", "2025-05-01", "--end", "2025-04-01"], "end 2025-04-01 23:59 is before start 2025-05-01 00:00"),
        (["--capital", "-5"], "capital must be positive, got -5"),
        (["--start", "yesterday"], "--start 'yesterday' is not a date (YYYY-MM-DD)"),
    ],
)
def test_bad_arguments_exit_with_one_line_reason_and_save_nothing(candles, args, message):
    argv = list(ARGS)
    for i in range(0, len(args), 2):
        argv[argv.index(args[i]) + 1] = args[i + 1]
    with pytest.raises(CommandError) as exc:
        call_command("backtest", *argv, stdout=StringIO())
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)
    assert BacktestRun.objects.count() == 0 and BacktestTrade.objects.count() == 0


def test_invalid_params_file_saves_nothing(candles, tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"base_order_size": -10}))
    with pytest.raises(CommandError) as exc:
        run_command("--params", str(params))
    assert str(exc.value).startswith("invalid params: base_order_size:")
    params.write_text("{not json")
    with pytest.raises(CommandError, match=r"cannot read --params"):
        run_command("--params", str(params))
    assert BacktestRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_backtest_task_runs_on_research_queue_through_real_broker(
    bundled_data_dir, make_user, celery_session_worker_real
):
    from strategies.services.backtests import backtest_create, parse_day_range

    user = make_user("celeryq", "trader")
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    start, end = parse_day_range("2025-06-01", "2025-06-30")
    run = backtest_create(
        user=user, strategy="smart_dca", symbols=list(SYMBOLS), timeframe="1h", start=start, end=end, capital=500
    )
    assert run.status == "queued"
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in {"done", "failed"}:
            break
        time.sleep(0.2)
    assert run.status == "done", run.error
    assert run.progress == 1.0
    assert len(run.report["equity_curve"]) == 30 * 24
    assert run.owner == user


def test_real_risk_manager_limits_concurrent_deals(candles, tmp_path):
    """The real strategies.risk.RiskManager through the engine: with max_positions 1 no two
    deals overlap, and every refused entry is counted under its rule."""
    params, path = tmp_path / "p.json", tmp_path / "r.json"
    params.write_text(
        json.dumps(
            {"max_active_deals": 2, "risk": {"max_positions": 1, "regime_enabled": False, "correlation_action": "off"}}
        )
    )
    run_command("--params", str(params), "--json", str(path))
    report = json.loads(path.read_text())
    assert report["decisions"].get("max_positions:block", 0) > 0
    spans = sorted((t["opened_at"], t["closed_at"]) for t in report["trades"])
    assert spans and all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
    assert BacktestRun.objects.get().params["risk"]["max_positions"] == 1
