"""Performance metrics against hand-computed values and independent pandas calculations."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from strategies.metrics import (
    METRIC_KEYS,
    YEAR_MS,
    cagr_pct,
    compute_metrics,
    drawdown_curve,
    max_drawdown_pct,
    periods_per_year,
    profit_factor,
    sharpe,
    simple_returns,
    sortino,
    win_rate_pct,
)

HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _times(n: int, tf: int = HOUR) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * tf


def test_periods_per_year_uses_a_365_day_24_7_year():
    assert periods_per_year(HOUR) == 8760.0
    assert periods_per_year(60_000) == 525_600.0
    assert periods_per_year(DAY) == 365.0
    assert periods_per_year(5 * 60_000) == 105_120.0
    assert YEAR_MS == 31_536_000_000
    for bad in (0, -HOUR):
        with pytest.raises(ValueError):
            periods_per_year(bad)


# --- a tiny run computed by hand -------------------------------------------------------------


def test_hand_computed_run():
    # initial 100 -> 110 -> 99 -> 121 on daily candles
    trades = [
        {"pnl": 10.0, "pnl_pct": 10.0, "fees": 0.1, "opened_at": T0, "closed_at": T0 + DAY, "cost": 100.0},
        {"pnl": -11.0, "pnl_pct": -10.0, "fees": 0.11, "opened_at": T0 + DAY, "closed_at": T0 + 2 * DAY, "cost": 110.0},
        {
            "pnl": 22.0,
            "pnl_pct": 22.2,
            "fees": 0.09,
            "opened_at": T0 + 2 * DAY,
            "closed_at": T0 + 3 * DAY,
            "cost": 99.0,
        },
    ]
    m = compute_metrics(
        equity_times_ms=_times(3, DAY),
        equity=np.array([110.0, 99.0, 121.0]),
        trades=trades,
        initial_capital=100.0,
        timeframe_ms=DAY,
        exposed_candles=2,
    )
    assert tuple(m) == METRIC_KEYS
    # returns +1/10, -1/10, +2/9 exactly
    r = [Fraction(1, 10), Fraction(-1, 10), Fraction(2, 9)]
    mean = sum(r) / 3  # 2/27
    var = sum((x - mean) ** 2 for x in r) / 2
    assert m["total_return_pct"] == pytest.approx(21.0, rel=1e-14)
    assert m["sharpe"] == pytest.approx(float(mean) / math.sqrt(var) * math.sqrt(365), rel=1e-13)
    assert m["sortino"] == pytest.approx(float(mean) / math.sqrt(1 / 300) * math.sqrt(365), rel=1e-13)
    assert m["max_drawdown_pct"] == pytest.approx(10.0, rel=1e-13)  # 110 -> 99
    assert m["win_rate_pct"] == pytest.approx(200 / 3, rel=1e-15)
    assert m["profit_factor"] == 32 / 11
    assert m["trades"] == 3
    assert m["exposure_pct"] == pytest.approx(200 / 3, rel=1e-15)
    assert m["fees_paid"] == pytest.approx(0.30, rel=1e-15)  # default: sum of trade fees
    assert m["final_equity"] == 121.0
    # span = 3 days (first open to last close): 1.21 ** (365/3) - 1
    assert m["cagr_pct"] == pytest.approx((1.21 ** (365 / 3) - 1) * 100, rel=1e-12)
    json.dumps(m, allow_nan=False)


def test_cagr_examples():
    assert cagr_pct(100.0, 121.0, 2 * YEAR_MS) == pytest.approx(10.0, rel=1e-12)
    assert cagr_pct(100.0, 150.0, YEAR_MS) == pytest.approx(50.0, rel=1e-14)
    assert cagr_pct(100.0, 100.0, 5 * DAY) == 0.0
    assert cagr_pct(100.0, 0.0, YEAR_MS) == -100.0
    assert cagr_pct(100.0, -5.0, YEAR_MS) == -100.0
    assert cagr_pct(100.0, 1e6, HOUR) is None  # overflows a float
    for args in ((0.0, 1.0, YEAR_MS), (100.0, 1.0, 0), (100.0, float("nan"), YEAR_MS)):
        with pytest.raises(ValueError):
            cagr_pct(*args)


def test_trade_statistics_examples():
    assert profit_factor([10.0, -5.0, 20.0, -10.0]) == 2.0
    assert profit_factor([-1.0, -2.0]) == 0.0
    assert profit_factor([5.0, 0.0]) is None  # no loss: infinite -> None
    assert profit_factor([]) is None
    assert win_rate_pct([10.0, -5.0, 0.0, 3.0]) == 50.0  # break-even is not a win
    assert win_rate_pct([]) is None
    with pytest.raises(ValueError):
        profit_factor([1.0, float("nan")])


def test_drawdown_curve_sign_alignment_and_initial_capital():
    eq = np.array([90.0, 100.0, 120.0, 90.0, 130.0])
    np.testing.assert_allclose(drawdown_curve(eq), [0.0, 0.0, 0.0, -25.0, 0.0], atol=1e-13)
    np.testing.assert_allclose(drawdown_curve(eq, initial_capital=100.0), [-10.0, 0.0, 0.0, -25.0, 0.0], atol=1e-13)
    assert max_drawdown_pct(eq) == pytest.approx(25.0, rel=1e-14)
    assert max_drawdown_pct(np.array([100.0, 100.0])) == 0.0
    assert math.copysign(1.0, max_drawdown_pct(np.array([100.0, 101.0]))) == 1.0  # not -0.0
    assert max_drawdown_pct(np.array([95.0]), initial_capital=100.0) == pytest.approx(5.0, rel=1e-13)
    with pytest.raises(ValueError):
        drawdown_curve(np.array([]))
    with pytest.raises(ValueError):
        drawdown_curve(np.array([0.0, 1.0]))


def test_simple_returns_with_a_wiped_out_account():
    np.testing.assert_allclose(simple_returns([50.0, 0.0, 0.0], initial_capital=100.0), [-0.5, -1.0, 0.0])
    np.testing.assert_allclose(simple_returns([100.0, 110.0]), [0.1], rtol=1e-15)


def test_ratio_edge_cases_are_none():
    assert sharpe([0.0, 0.0, 0.0], 8760) is None  # zero std
    assert sharpe([0.01], 8760) is None  # one return
    assert sortino([0.01, 0.02], 8760) is None  # no downside
    assert sortino([0.01], 8760) is None
    assert sharpe([], 8760) is None
    with pytest.raises(ValueError):
        sharpe([0.1, 0.2], 0)
    with pytest.raises(ValueError):
        sortino([0.1, float("inf")], 8760)


# --- independent calculation on a long curve ------------------------------------------------


def test_matches_independent_pandas_calculation():
    rng = np.random.default_rng(42)
    n = 5000
    equity = 1000.0 * np.exp(np.cumsum(rng.normal(0.0001, 0.01, n)))
    times = _times(n, HOUR)
    in_pos = rng.random(n) < 0.37
    m = compute_metrics(
        equity_times_ms=times,
        equity=equity,
        trades=[],
        initial_capital=1000.0,
        timeframe_ms=HOUR,
        exposure_mask=in_pos,
        fees_paid=12.5,
    )
    s = pd.Series(np.r_[1000.0, equity])
    r = s.pct_change().dropna()
    assert m["sharpe"] == pytest.approx(r.mean() / r.std() * math.sqrt(24 * 365), rel=1e-10)
    downside = np.sqrt((r.where(r < 0, 0.0) ** 2).sum() / len(r))
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(24 * 365), rel=1e-10)
    assert m["max_drawdown_pct"] == pytest.approx(-((s / s.cummax()) - 1).min() * 100, rel=1e-12)
    underwater = (s / s.cummax() - 1).to_numpy()[1:] * 100
    np.testing.assert_allclose(drawdown_curve(equity, initial_capital=1000.0), underwater, rtol=1e-12, atol=1e-12)
    years = (n * HOUR) / (365 * DAY)
    assert m["cagr_pct"] == pytest.approx(((equity[-1] / 1000.0) ** (1 / years) - 1) * 100, rel=1e-10)
    assert m["total_return_pct"] == pytest.approx((equity[-1] / 1000.0 - 1) * 100, rel=1e-12)
    assert m["exposure_pct"] == pytest.approx(in_pos.mean() * 100, rel=1e-15)
    assert m["trades"] == 0 and m["win_rate_pct"] is None and m["profit_factor"] is None
    assert m["fees_paid"] == 12.5
    assert all(type(m[k]) in (float, int) for k in METRIC_KEYS if m[k] is not None)


def test_flat_equity_without_trades():
    m = compute_metrics(
        equity_times_ms=_times(10),
        equity=np.full(10, 500.0),
        trades=[],
        initial_capital=500.0,
        timeframe_ms=HOUR,
        exposed_candles=0,
    )
    assert m == {
        "total_return_pct": 0.0,
        "cagr_pct": 0.0,
        "sharpe": None,
        "sortino": None,
        "max_drawdown_pct": 0.0,
        "win_rate_pct": None,
        "profit_factor": None,
        "trades": 0,
        "exposure_pct": 0.0,
        "fees_paid": 0.0,
        "final_equity": 500.0,
    }
    assert json.loads(json.dumps(m, allow_nan=False)) == m


@dataclass
class _Trade:
    pnl: Decimal
    fees: Decimal
    closed_at: int | None


def test_trades_as_objects_with_decimals_and_open_trades_left_out():
    trades = [
        _Trade(Decimal("5.5"), Decimal("0.25"), T0 + HOUR),
        _Trade(Decimal("0"), Decimal("0.25"), T0 + 2 * HOUR),  # break-even: a closed non-win
        _Trade(Decimal("-2.75"), Decimal("0.5"), T0 + 3 * HOUR),
        _Trade(Decimal("100"), Decimal("1"), None),  # still open: no trade statistic
    ]
    m = compute_metrics(
        equity_times_ms=_times(4),
        equity=[100.0, 105.0, 103.0, 104.0],
        trades=trades,
        initial_capital=100.0,
        timeframe_ms=HOUR,
        exposure_mask=[True, True, False, True],
    )
    assert m["trades"] == 3
    assert m["win_rate_pct"] == pytest.approx(100 / 3, rel=1e-15)
    assert m["profit_factor"] == 2.0
    assert m["fees_paid"] == 2.0  # fees of every trade, open ones included
    assert m["exposure_pct"] == 75.0


def test_only_winning_trades():
    m = compute_metrics(
        equity_times_ms=_times(3),
        equity=[101.0, 102.0, 103.0],
        trades=[{"pnl": 1.0, "closed_at": T0}, {"pnl": 2.0, "closed_at": T0 + HOUR}],
        initial_capital=100.0,
        timeframe_ms=HOUR,
        exposed_candles=3,
        fees_paid=0.0,
    )
    assert m["win_rate_pct"] == 100.0
    assert m["profit_factor"] is None
    assert m["sortino"] is None  # never a down candle
    assert m["sharpe"] is not None and m["sharpe"] > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"equity": []},
        {"equity_times_ms": _times(3)[::-1]},
        {"equity_times_ms": _times(2)},
        {"equity_times_ms": _times(3).astype(float)},
        {"equity": [100.0, float("nan"), 100.0]},
        {"initial_capital": 0.0},
        {"timeframe_ms": 0},
        {"exposed_candles": None},
        {"exposure_mask": [True, False, True]},
        {"exposed_candles": 4},
        {"exposed_candles": None, "exposure_mask": [True, False]},
        {"trades": [{"pnl": float("inf"), "closed_at": T0}]},
    ],
)
def test_compute_metrics_rejects_bad_input(kwargs):
    args = {
        "equity_times_ms": _times(3),
        "equity": [100.0, 101.0, 102.0],
        "trades": [],
        "initial_capital": 100.0,
        "timeframe_ms": HOUR,
        "exposed_candles": 1,
    }
    args.update(kwargs)
    if args.get("equity") == [] and "equity_times_ms" not in kwargs:
        args["equity_times_ms"] = _times(0)
    with pytest.raises(ValueError):
        compute_metrics(**args)
