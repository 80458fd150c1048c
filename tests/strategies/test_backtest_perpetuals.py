"""``manage.py backtest --market-type swap``: perpetual backtests from the database.

Real data: the bundled BTCUSDT USDT-M subset (``trading/data/bundled/futures``, 2024-07-22 ..
08-18, with the 2024-08-05 crash) imported as last-price candles, mark candles and funding
rates. Expected values are recomputed here from the files and Binance's formulas
(``strategies/engine/perps.py``), not read back from the engine.
"""

from __future__ import annotations

import gzip
import json
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from strategies.models import BacktestRun, BacktestTrade
from strategies.services.backtests import BacktestError, backtest_create, parse_day_range
from trading.models import Exchange, Market
from trading.models.market import FundingRate
from trading.services.candles import candles_import

S = "BTC/USDT:USDT"
FILES = ("BTCUSDT-1h.csv.gz", "BTCUSDT-1h-mark.csv.gz", "BTCUSDT-funding.csv.gz")


@pytest.fixture
def futures(db, bundled_data_dir, make_user):
    make_user("quant", "trader", is_superuser=True)
    for name in FILES:
        candles_import(path=bundled_data_dir / "futures" / name, exchange="binance", market_type="swap")
    return bundled_data_dir / "futures"


def frame(path):
    return pd.read_csv(gzip.open(path))


def backtest(tmp_path, params, *args):
    (tmp_path / "params.json").write_text(json.dumps(params))
    out = StringIO()
    call_command(
        "backtest",
        "--strategy",
        "smart_dca",
        "--market-type",
        "swap",
        "--symbols",
        S,
        "--capital",
        "1000",
        "--params",
        str(tmp_path / "params.json"),
        "--json",
        str(tmp_path / "report.json"),
        *args,
        stdout=out,
    )
    return json.loads((tmp_path / "report.json").read_text()), out.getvalue()


def ms(iso: str) -> int:
    return int(pd.Timestamp(iso).value // 1_000_000)


SHORT_DCA = {"direction": "short", "base_order_size": 200, "safety_order_size": 200, "max_safety_orders": 3}


def test_short_smart_dca_run_funding_equals_rates_times_notional_from_the_files(futures, tmp_path):
    report, out = backtest(
        tmp_path, {**SHORT_DCA, "price_deviation": 2}, "--leverage", "5", "--start", "2024-07-23", "--end", "2024-08-17"
    )
    m, trades = report["metrics"], report["trades"]
    assert (m["trades"], m["liquidations"], m["open_deals"]) == (34, 1, 1)
    assert report["run"]["perpetual"] == {"leverage": 5, "margin_mode": "isolated", "liquidation_buffer_pct": 0.0}
    # every fill of every deal from the report; funding at each event of the file =
    # position held (fills before the event) x mark open at the event x rate
    fr = frame(futures / "BTCUSDT-funding.csv.gz")
    fr = fr[fr.time < ms("2024-08-18T00:00:00Z")]  # the run's last candle opens 2024-08-17 23:00
    mark = frame(futures / "BTCUSDT-1h-mark.csv.gz").set_index("open_time")["open"]
    deals = [*trades, *report["open_deals"]]
    total = 0.0
    for d in deals:
        fills = [(ms(o["time"]), o["amount"] if o["side"] == "buy" else -o["amount"]) for o in d["orders"]]
        expected = 0.0
        for t, rate in zip(fr.time, fr.funding_rate, strict=True):
            pos = sum(a for ft, a in fills if ft < t)
            if abs(pos) > 1e-12:
                expected += pos * mark[t] * rate
        assert d["side"] == "short" and d["leverage"] == 5.0
        assert d["funding_paid"] == pytest.approx(expected, abs=1e-8)
        total += expected
    assert m["funding_paid"] == pytest.approx(total, abs=1e-8)
    assert round(m["funding_paid"], 6) == -1.218215  # shorts received the (mostly positive) rates
    # margin = cost / leverage on every deal; each liquidation price is above the entry (short)
    for t in trades:
        assert t["margin"] == pytest.approx(t["cost"] / 5, abs=1e-9)
        assert t["liquidation_price"] > t["entry_price"]
    (liq,) = [t for t in trades if t["exit_reason"] == "liquidation"]
    assert (liq["closed_at"], liq["safety_orders_filled"]) == ("2024-08-08T22:00:00Z", 3)
    # Binance isolated, one-way short, tier 1 (notional < 50,000: MMR 0.4 %, cum 0):
    # LP = (WB + amount x entry) / (amount x MMR + amount), WB = margin - funding paid
    a, e = liq["amount"], liq["entry_price"]
    lp = (a * e / 5 - liq["funding_paid"] + a * e) / (a * 0.004 + a)
    assert liq["liquidation_price"] == pytest.approx(lp, abs=1e-6)
    assert liq["exit_price"] == round(lp, 8) == 61645.43453096  # the market's 1e-8 tick (no precision stored)
    assert "  perpetual          5x isolated\n" in out and "  liquidations       1\n" in out
    assert "  funding paid       -1.22\n" in out
    run = BacktestRun.objects.get()
    assert run.params["perpetual"] == report["run"]["perpetual"] and run.report == report
    assert BacktestTrade.objects.filter(run=run, exit_reason="liquidation").count() == 1


LONG_10X = {"base_order_size": 5000, "max_safety_orders": 0, "take_profit": 30, "btc_market_filter_enabled": False}


def test_10x_long_is_liquidated_in_the_2024_08_05_crash_isolated_before_cross(futures, tmp_path):
    window = ("--leverage", "10", "--start", "2024-08-03", "--end", "2024-08-06")
    iso, out = backtest(tmp_path, LONG_10X, *window, "--margin-mode", "isolated")
    (t,) = iso["trades"]
    c = frame(futures / "BTCUSDT-1h.csv.gz").set_index("open_time")
    # base order at market: next open (2024-08-03 01:00) + 5 bps slippage; 5,000 quote of it
    assert t["entry_price"] == pytest.approx(c.open[ms("2024-08-03T01:00:00Z")] * 1.0005, abs=1e-9)
    a, e, f = t["amount"], t["entry_price"], t["funding_paid"]
    assert (t["opened_at"], t["leverage"], t["margin"]) == ("2024-08-03T01:00:00Z", 10.0, pytest.approx(a * e / 10))
    # isolated long, tier 1: LP = (WB - amount x entry) / (amount x 0.004 - amount), WB = margin - funding
    lp = (a * e / 10 - f - a * e) / (a * 0.004 - a)
    assert (t["exit_reason"], t["closed_at"], t["exit_price"]) == ("liquidation", "2024-08-05T01:00:00Z", round(lp, 8))
    assert round(lp, 2) == 55284.02 and t["min_liquidation_distance_pct"] == 0.0
    # the whole margin is lost (the liquidation fee is capped at the margin left) + the opening fee
    assert t["pnl"] == pytest.approx(-(a * e / 10 + a * e * 1e-3), abs=1e-8)
    assert iso["metrics"]["liquidations"] == 1 and iso["metrics"]["funding_paid"] == f == pytest.approx(2.4240793228)
    assert iso["decision_log"][0] == {
        "time": "2024-08-05T01:00:00Z",
        "rule": "liquidation",
        "outcome": "exit",
        "reason": "mark low 52386.111 crossed the liquidation price 55284.02",
        "symbol": S,
    }
    assert "  liquidated BTC/USDT:USDT long 2024-08-05T01:00:00Z at 55284 (margin 500.25, funding 2.42)\n" in out

    # cross margin: the whole wallet backs it (WB = 1,000 - opening fee - funding), liquidated
    # later and lower, in the same crash; the fee eats what is left, never below zero
    cross, out = backtest(tmp_path, LONG_10X, *window, "--margin-mode", "cross")
    (x,) = cross["trades"]
    wb = 1000 - a * e * 1e-3 - f
    lp_cross = (wb - a * e) / (a * 0.004 - a)
    assert (x["exit_reason"], x["closed_at"], x["exit_price"]) == (
        "liquidation",
        "2024-08-05T06:00:00Z",
        round(lp_cross, 8),
    )
    assert round(lp_cross, 2) == 49212.18
    assert cross["metrics"]["final_equity"] == 0.0 and cross["run"]["perpetual"]["margin_mode"] == "cross"


def create(**kw):
    from django.contrib.auth import get_user_model

    start, end = parse_day_range("2024-07-23", "2024-08-10")
    args = dict(strategy="smart_dca", symbols=[S], timeframe="1h", start=start, end=end, capital=1000)
    args.update(kw)
    return backtest_create(user=get_user_model().objects.get(), enqueue=False, **args)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"market_type": "swap", "leverage": 126}, "leverage must be a whole number 1..125, got 126"),
        ({"market_type": "swap", "leverage": 0}, "leverage must be a whole number 1..125, got 0"),
        ({"market_type": "swap", "leverage": 2.5}, "leverage must be a whole number 1..125, got 2.5"),
        ({"market_type": "swap", "leverage": "x"}, "leverage 'x' is not a number"),
        (
            {"market_type": "swap", "leverage": 5, "margin_mode": "hedge"},
            "margin mode must be isolated or cross, got 'hedge'",
        ),
        (
            {"market_type": "swap", "leverage": 5, "liquidation_buffer_pct": 100},
            "liquidation buffer must be 0..100 %, got 100",
        ),
        ({"market_type": "futures"}, "market type must be spot or swap, got 'futures'"),
        ({}, "BTC/USDT:USDT: perpetual market(s); run them with market type swap"),
        ({"leverage": 5}, "leverage, margin mode and liquidation buffer need market type swap"),
    ],
)
def test_bad_perpetual_settings_are_refused_and_nothing_is_saved(futures, kw, message):
    with pytest.raises(BacktestError) as exc:
        create(**kw)
    assert str(exc.value) == message
    assert BacktestRun.objects.count() == 0


def test_spot_symbols_untiered_markets_and_missing_funding_are_refused(futures, bundled_data_dir):
    candles_import(path=bundled_data_dir / "BTCUSDT-1h.csv.gz", exchange="binance", market_type="spot")
    with pytest.raises(
        BacktestError, match=r"^BTC/USDT is not a USDT-M perpetual \(a swap market named like BTC/USDT:USDT\)$"
    ):
        create(symbols=["BTC/USDT"], market_type="swap", leverage=3)
    ex = Exchange.objects.get(code="binance")
    Market.objects.create(exchange=ex, symbol="PEPE/USDT:USDT", base="PEPE", quote="USDT", settle="USDT", type="swap")
    with pytest.raises(BacktestError) as exc:
        create(symbols=["PEPE/USDT:USDT"], market_type="swap", leverage=3)
    assert str(exc.value) == (
        "PEPE/USDT:USDT: no leverage tier table is bundled (strategies/engine/data/leverage_tiers.json); "
        "refused rather than guessing maintenance margin rates"
    )
    # funding stored only up to 2024-08-05 00:00: a run to 2024-08-10 would pay none after it
    FundingRate.objects.filter(time__gt=pd.Timestamp("2024-08-05", tz="UTC")).delete()
    with pytest.raises(BacktestError) as exc:
        create(market_type="swap", leverage=3)
    assert str(exc.value) == (
        "funding rates of BTC/USDT:USDT are stored for 2024-07-22 00:00 .. 2024-08-05 00:00 UTC only; "
        "the window 2024-07-23 00:00 .. 2024-08-10 23:59 reaches outside"
    )
    FundingRate.objects.all().delete()
    with pytest.raises(
        BacktestError, match=r"^no funding rates stored for BTC/USDT:USDT: import BTCUSDT-funding.csv.gz$"
    ):
        create(market_type="swap", leverage=3)
    assert BacktestRun.objects.count() == 0


def test_command_reports_argument_errors_without_saving(futures, tmp_path):
    with pytest.raises(CommandError, match=r"^leverage must be a whole number 1\.\.125, got 200$"):
        backtest(tmp_path, SHORT_DCA, "--leverage", "200", "--start", "2024-07-23", "--end", "2024-07-30")
    assert BacktestRun.objects.count() == 0
