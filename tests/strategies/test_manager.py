"""The strategy ``manager`` (issue 11 §3): the plan of one candle on hand-made signals
(min confidence, conflicts, deal open, EV ranking, allocation, max deals, quotes), and backtests
on real bundled candles with exact trades per strategy, a real two-detector conflict and the
report's per-strategy figures recomputed here."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strategies.backtest import BacktestConfig, run_backtest
from strategies.base import ParamError
from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed, load_csv
from strategies.library.manager import MANAGED, ManagedDeal, ManagerState, expected_value
from strategies.library.signal_strategy import passing_signals
from strategies.registry import create_strategy
from strategies.signals import Signal

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
SYMS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
N = 1500  # candles: 2025-03-05 00:00 .. 2025-05-06 11:00 UTC
ALL5 = {f"alloc_{n}": 20.0 for n in ("fork_score", "scalping", "dca_detector", "swing", "channel")}


def sig(strategy, symbol, score, tp=110.0, sl=95.0, entry=100.0):
    return Signal(symbol, "1h", 0, strategy, "long", score, {}, entry, sl, tp, None, f"{strategy} setup")


def test_expected_value_formula():
    assert expected_value(sig("swing", "A", 0.7)) == pytest.approx(0.7 * 10 - 0.3 * 5)
    assert expected_value(sig("swing", "A", 0.6, tp=None)) == pytest.approx(0.6 * 5 - 0.4 * 5)


def test_plan_conflicts_ranking_allocation_and_max_deals():
    m = create_strategy("manager", {"deal_fraction": 0.5, "max_active_deals": 3, "capital": 10_000.0})
    assert m.per_strategy_max == 2 and m.alloc == {"dca_detector": 40.0, "swing": 30.0, "channel": 30.0}
    state = ManagerState({"EEE": ManagedDeal(phase="open", deal_id="d1", strategy="swing")})
    cands = {
        # higher confidence wins although its EV (0.6%) is lower than swing's (5.5%)
        "AAA": [("swing", sig("swing", "AAA", 0.7)), ("dca_detector", sig("dca_detector", "AAA", 0.8, tp=102.0))],
        # equal confidence: the higher EV wins (swing 5.5% vs channel 0.7·4 − 0.3·2 = 2.2%)
        "BBB": [("channel", sig("channel", "BBB", 0.7, tp=104.0, sl=98.0)), ("swing", sig("swing", "BBB", 0.7))],
        "CCC": [("channel", sig("channel", "CCC", 0.5, tp=106.0, sl=97.0))],  # EV 1.5%
        "DDD": [("swing", sig("swing", "DDD", 0.6))],  # below swing's own 0.65
        "EEE": [("channel", sig("channel", "EEE", 0.9))],  # a swing deal is open there
        "FFF": [("swing", sig("swing", "FFF", 0.9, tp=120.0))],  # EV 17.5%
    }
    plan = m.plan(state, cands, 10_000.0)
    # ranked by EV: FFF swing 17.5 > BBB swing 5.5 > CCC channel 1.5 > AAA dca 0.6
    assert plan["FFF"]["enter"] == ["swing", 1500.0, 1, pytest.approx(17.5)]  # 10 000 × 30 % × 0.5
    assert plan["FFF"]["refusals"] == []
    assert plan["BBB"]["enter"] is None
    assert plan["BBB"]["refusals"] == [
        ["channel", "lost conflict on BBB to swing: score 0.70 vs 0.70, EV 2.20% vs 5.50%"],
        ["swing", "allocation full: swing holds 2 deals of its 30%; EV 5.50% ranked 2 of 4"],
    ]
    assert plan["CCC"]["enter"] == ["channel", 1500.0, 3, pytest.approx(1.5)]
    assert plan["AAA"]["enter"] is None
    assert plan["AAA"]["refusals"] == [
        ["swing", "lost conflict on AAA to dca_detector: score 0.70 vs 0.80, EV 5.50% vs 0.60%"],
        ["dca_detector", "3 deals active (max); EV 0.60% ranked 4 of 4"],
    ]
    assert plan["DDD"] == {"enter": None, "refusals": [["swing", "below min confidence: score 0.60 < 0.65"]]}
    assert plan["EEE"] == {"enter": None, "refusals": [["channel", "a deal is open on EEE (swing)"]]}
    # a raised min confidence filters a signal its detector passed
    m2 = create_strategy("manager", {"min_conf_channel": 0.6, "capital": 1000.0})
    p2 = m2.plan(ManagerState(), {"CCC": cands["CCC"]}, 1000.0)
    assert p2["CCC"]["refusals"] == [["channel", "below min confidence: score 0.50 < 0.60"]]


def test_params_checked():
    with pytest.raises(ParamError, match="max 100"):
        create_strategy("manager", {"alloc_scalping": 10.0})  # 40 + 30 + 30 + 10
    with pytest.raises(ParamError, match="at least one"):
        create_strategy("manager", {"alloc_dca_detector": 0, "alloc_swing": 0, "alloc_channel": 0})


@pytest.fixture(scope="module")
def feed() -> Feed:
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.replace('/', '')}-1h.csv.gz")[:N] for s in SYMS})


def _backtest(feed, params, skip=True):
    c = feed.candles("SOL/USDT")
    cfg = BacktestConfig("manager", params, SYMS, "1h", int(c.time[200]), int(c.time[-1]), 10_000.0)
    markets = [MarketSpec.binance_like(s, float(feed.candles(s).close[-1])) for s in SYMS]
    return run_backtest(cfg, feed, markets, skip=skip)


def _by_strategy(trades):
    return Counter(t.tags[0].removeprefix("strategy:") for t in trades)


def _one_position_per_symbol(trades):
    for s in SYMS:
        spans = sorted((t.opened_at, t.closed_at) for t in trades if t.symbol == s)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"channel": 40, "swing": 13, "dca_detector": 3}),
        (
            {**ALL5, "deal_fraction": 0.5, "max_active_deals": 2},
            {"scalping": 123, "channel": 13, "fork_score": 12, "swing": 1},
        ),
    ],
)
def test_backtest_trades_per_strategy(feed, params, expected):
    result, report = _backtest(feed, params)
    assert all(len(t.tags) == 1 for t in result.trades)
    assert dict(_by_strategy(result.trades)) == expected
    _one_position_per_symbol(result.trades)
    again, _ = _backtest(feed, params, skip=False)
    assert [t.to_dict() for t in again.trades] == [t.to_dict() for t in result.trades]
    # report["strategies"] recomputed from the closed trades
    m = create_strategy("manager", params)
    assert sorted(report["strategies"]) == sorted(m.alloc)
    for n, row in report["strategies"].items():
        mine = sorted((t for t in result.trades if t.tags == [f"strategy:{n}"]), key=lambda t: t.closed_at)
        pnls = [t.pnl for t in mine]
        share = 10_000.0 * m.alloc[n] / 100.0
        eq = np.concatenate(([share], share + np.cumsum(pnls)))
        r = np.array([t.pnl / t.cost for t in mine])
        assert row["trades"] == len(mine)
        assert row["wins"] == sum(p > 0 for p in pnls)
        assert row["pnl"] == pytest.approx(math.fsum(pnls), abs=1e-9)
        assert row["pnl_pct"] == pytest.approx(math.fsum(pnls) / share * 100, abs=1e-9)
        assert row["max_drawdown_pct"] == pytest.approx(float(np.max(1 - eq / np.maximum.accumulate(eq))) * 100)
        if len(r) >= 2:
            assert row["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))
            assert row["win_rate_pct"] == pytest.approx(100 * row["wins"] / len(mine))


def test_real_conflicts_and_ranking_on_one_candle(feed):
    """2025-03-16 14:00 UTC: on ETH/USDT fork_score (0.80) and scalping (0.65) both pass, on
    SOL/USDT fork_score (0.80) and scalping (0.90): the higher confidence wins each symbol; with
    one slot left (max 2 deals) the higher EV (SOL 2.97% > ETH 2.23%) takes it."""
    t = 1742133600000
    scores = {}
    for s in ("ETH/USDT", "SOL/USDT"):
        i = int(np.searchsorted(feed.candles(s).time, t))
        scores[s] = tuple(round(passing_signals(n, {}, feed, s)[i].score, 2) for n in ("fork_score", "scalping"))
    assert scores == {"ETH/USDT": (0.8, 0.65), "SOL/USDT": (0.8, 0.9)}
    result, _ = _backtest(feed, {**ALL5, "deal_fraction": 0.5, "max_active_deals": 2})
    at = [(d.symbol, d.rule, d.reason) for d in result.decisions if d.time == t]
    assert at[:4] == [
        (
            "ETH/USDT",
            "manager",
            "scalping signal refused: lost conflict on ETH/USDT to fork_score: score 0.65 vs 0.80, EV 1.06% vs 2.23%",
        ),
        ("ETH/USDT", "manager", "fork_score signal refused: 2 deals active (max); EV 2.23% ranked 2 of 2"),
        (
            "SOL/USDT",
            "manager",
            "fork_score signal refused: lost conflict on SOL/USDT to scalping: score 0.80 vs 0.90, EV 4.19% vs 2.97%",
        ),
        ("SOL/USDT", "manager", "scalping chosen: EV 2.97% ranked 1"),
    ]
    # quote = equity at the candle (9913.93) × 20 % × 0.5, through the engine's entry check
    assert at[4][1] == "scalping" and at[4][2].startswith("short entry (market sell, 991.393 quote, score 0.90)")
    opened = [(tr.symbol, tr.tags) for tr in result.trades if tr.opened_at == t + 3_600_000]
    assert opened == [("SOL/USDT", ["strategy:scalping"])]
    assert "strategies" not in _run_plain(feed)


def _run_plain(feed):
    c = feed.candles("SOL/USDT")
    cfg = BacktestConfig("swing", {}, ("SOL/USDT",), "1h", int(c.time[200]), int(c.time[-1]), 10_000.0)
    return run_backtest(cfg, feed, [MarketSpec.binance_like("SOL/USDT", float(c.close[-1]))])[1]


def _engine_run(feed, params, state=None, end_ms=None):
    markets = [MarketSpec.binance_like(s, float(feed.candles(s).close[-1])) for s in SYMS]
    eng = Engine(create_strategy("manager", params), markets, SimulatedBroker(), capital=10_000.0)
    return eng.run(feed, end_ms=end_ms, state=state)


def test_state_round_trip_changes_nothing(feed):
    params = {**ALL5, "deal_fraction": 0.5, "max_active_deals": 2}
    whole = _engine_run(feed, params)
    first = _engine_run(feed, params, end_ms=int(feed.candles("SOL/USDT").time[N // 2]))
    state = type(first.state).from_dict(json.loads(json.dumps(first.state.to_dict())))
    second = _engine_run(feed, params, state=state)
    assert [t.to_dict() for t in first.trades + second.trades] == [t.to_dict() for t in whole.trades]


def test_entries_go_through_the_portfolio_risk_check(feed):
    """With the bot's risk block ``max_positions: 1`` the risk manager refuses the manager's
    chosen entries while a position is open: never two deals at once; the regime circuit
    breaker (on by default) refuses through the same check."""
    c = feed.candles("SOL/USDT")
    cfg = BacktestConfig(
        "manager", {}, SYMS, "1h", int(c.time[200]), int(c.time[-1]), 10_000.0, risk={"max_positions": 1}
    )
    markets = [MarketSpec.binance_like(s, float(feed.candles(s).close[-1])) for s in SYMS]
    result, report = run_backtest(cfg, feed, markets)
    spans = sorted((t.opened_at, t.closed_at) for t in result.trades)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    refused = [d for d in result.decisions if d.rule not in ("manager", *MANAGED) and d.outcome == "block"]
    assert dict(_by_strategy(result.trades)) == {"channel": 16, "swing": 2, "dca_detector": 1}
    # the regime circuit breaker (on by default) runs on the same path
    assert Counter(d.rule for d in refused) == {"max_positions": 392, "circuit_breaker": 2}
    assert (refused[0].symbol, refused[0].reason) == ("BTC/USDT", "1 open positions >= max 1")
