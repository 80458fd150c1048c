"""Position sizing and size multipliers of the portfolio risk layer (no DB, no Django)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.engine.types import Outcome
from strategies.risk import EntryRequest, RiskConfig, RiskManager
from strategies.risk.sizing import (
    confidence_multiplier,
    kelly_stats,
    realized_vol_annual_pct,
    stop_distance_fraction,
    vol_multiplier,
)
from strategies.risk.testing import ArrayMarketData, make_view

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
H = 3_600_000


def manager(**kw) -> RiskManager:
    """Only the rules under test: no regime breaker, no correlation limit."""
    kw.setdefault("regime_enabled", False)
    kw.setdefault("correlation_action", "off")
    return RiskManager(RiskConfig(**kw))


def req(amount=250.0, price=100.0, stop=None, side="long", symbol="BTC/USDT", confidence=None, t=T0):
    return EntryRequest(t, symbol, side, amount, price, stop, confidence)


def reasons(rd):
    return [(d.rule, d.outcome, d.reason) for d in rd.decisions]


# -- sizing modes ---------------------------------------------------------------------------
def test_strategy_mode_keeps_the_requested_size_silently():
    rd = manager().check_entry(req(), make_view())
    assert rd.approved and rd.quote_amount == 250.0
    assert rd.decisions == []


def test_fixed_mode():
    rd = manager(sizing_mode="fixed", fixed_quote=100.0).check_entry(req(), make_view())
    assert rd.approved and rd.quote_amount == 100.0
    assert reasons(rd) == [("position_sizing", Outcome.RESIZE, "fixed size 100.00 USDT (requested 250.00)")]
    assert rd.decisions[0].symbol == "BTC/USDT" and rd.decisions[0].time == T0


def test_fixed_mode_equal_to_request_records_info_not_resize():
    rd = manager(sizing_mode="fixed", fixed_quote=250.0).check_entry(req(), make_view())
    assert rd.quote_amount == 250.0
    assert reasons(rd) == [("position_sizing", Outcome.INFO, "fixed size 250.00 USDT")]


def test_equity_pct_mode():
    rd = manager(sizing_mode="equity_pct", equity_pct=10.0).check_entry(req(), make_view(10_000.0))
    assert rd.quote_amount == 1000.0
    assert reasons(rd) == [
        ("position_sizing", Outcome.RESIZE, "10.00% of equity 10000.00 = 1000.00 USDT (requested 250.00)")
    ]


def test_risk_per_trade_long_and_short():
    rm = manager(sizing_mode="risk_per_trade", risk_per_trade_pct=1.0)
    # long: stop 2.5 % below -> risk 100 USDT / 0.025 = 4000 USDT
    rd = rm.check_entry(req(price=100.0, stop=97.5), make_view(10_000.0))
    assert rd.approved and rd.quote_amount == pytest.approx(4000.0, rel=1e-12)
    assert reasons(rd) == [
        (
            "position_sizing",
            Outcome.RESIZE,
            "risk 1.00% of equity 10000.00 over stop distance 2.50% = 4000.00 USDT (requested 250.00)",
        )
    ]
    # short: stop 4 % above -> 100 / 0.04 = 2500 USDT
    rd = rm.check_entry(req(price=100.0, stop=104.0, side="short"), make_view(10_000.0))
    assert rd.quote_amount == pytest.approx(2500.0, rel=1e-12)


def test_risk_per_trade_refuses_a_stop_on_the_wrong_side():
    rm = manager(sizing_mode="risk_per_trade")
    rd = rm.check_entry(req(price=100.0, stop=101.0), make_view())
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd) == [("position_sizing", Outcome.BLOCK, "stop 101 is not below entry 100 for a long")]
    rd = rm.check_entry(req(price=100.0, stop=99.0, side="short"), make_view())
    assert reasons(rd) == [("position_sizing", Outcome.BLOCK, "stop 99 is not above entry 100 for a short")]


def test_risk_per_trade_without_stop_falls_back():
    rd = manager(sizing_mode="risk_per_trade").check_entry(req(), make_view())
    assert rd.approved and rd.quote_amount == 250.0
    assert reasons(rd) == [
        (
            "position_sizing",
            Outcome.INFO,
            "no stop price for risk_per_trade sizing; fallback to the strategy's size 250.00 USDT",
        )
    ]
    rd = manager(sizing_mode="risk_per_trade", sizing_fallback="equity_pct", equity_pct=5.0).check_entry(
        req(), make_view()
    )
    assert rd.quote_amount == 500.0
    assert reasons(rd) == [
        (
            "position_sizing",
            Outcome.RESIZE,
            "no stop price for risk_per_trade sizing; fallback 5.00% of equity 10000.00 = 500.00 USDT (requested 250.00)",
        )
    ]


def test_non_positive_equity_blocks():
    rd = manager().check_entry(req(), make_view(0.0, peak_equity=1.0))
    assert reasons(rd) == [("position_sizing", Outcome.BLOCK, "equity 0.00 <= 0")]


def test_bad_side_raises():
    with pytest.raises(ValueError, match="side"):
        manager().check_entry(req(side="buy"), make_view())


# -- Kelly -----------------------------------------------------------------------------------
WINS6_LOSSES4 = [10.0, -5.0, 10.0, 10.0, -5.0, 10.0, -5.0, 10.0, 10.0, -5.0]


def test_kelly_stats_by_hand():
    # W = 0.6, avg win 10 %, avg loss 5 % -> R = 2, f* = 0.6 - 0.4 / 2 = 0.4
    ks = kelly_stats(WINS6_LOSSES4)
    assert ks.trades == 10 and ks.win_rate == 0.6
    assert ks.avg_win_pct == 10.0 and ks.avg_loss_pct == 5.0 and ks.payoff == 2.0
    assert ks.f_star == pytest.approx(0.4, abs=1e-15)
    # lookback keeps the last n trades: 1 win of 3 %, 1 loss of 1 % -> W 0.5, R 3, f* = 0.5 - 0.5/3
    ks = kelly_stats([-50.0] * 7 + [3.0, -1.0], lookback=2)
    assert ks.trades == 2 and ks.f_star == pytest.approx(0.5 - 0.5 / 3, abs=1e-15)
    # break-even trades count as non-wins: W = 1/4, R = 4/2 = 2, f* = 0.25 - 0.75/2 = -0.125
    assert kelly_stats([4.0, 0.0, -2.0, 0.0]).f_star == pytest.approx(-0.125, abs=1e-15)
    # no losers: R infinite, f* = W; no winners: f* = -1
    ks = kelly_stats([1.0, 2.0, 0.0])
    assert math.isinf(ks.payoff) and ks.f_star == pytest.approx(2 / 3)
    assert kelly_stats([-1.0, -2.0]).f_star == -1.0
    with pytest.raises(ValueError):
        kelly_stats([])


def test_kelly_mode_sizes_by_half_kelly():
    rm = manager(sizing_mode="kelly", kelly_fraction=0.5, kelly_min_trades=10, kelly_cap_pct=25.0)
    rd = rm.check_entry(req(), make_view(10_000.0, closed_pnl_pcts=WINS6_LOSSES4))
    # 0.5 x 0.4 = 20 % of 10 000 = 2000 USDT
    assert rd.approved and rd.quote_amount == pytest.approx(2000.0, rel=1e-12)
    assert reasons(rd) == [
        (
            "position_sizing",
            Outcome.RESIZE,
            "kelly f*=0.4000 (W=60.00%, R=2.00, 10 trades) x 0.5 = 20.00% of equity 10000.00 = 2000.00 USDT"
            " (requested 250.00)",
        )
    ]


def test_kelly_mode_is_capped():
    rm = manager(sizing_mode="kelly", kelly_fraction=1.0, kelly_min_trades=10, kelly_cap_pct=25.0)
    rd = rm.check_entry(req(), make_view(10_000.0, closed_pnl_pcts=WINS6_LOSSES4))
    assert rd.quote_amount == 2500.0
    assert rd.decisions[0].reason == (
        "kelly f*=0.4000 (W=60.00%, R=2.00, 10 trades) x 1, capped at 25.00% = 25.00% of equity 10000.00"
        " = 2500.00 USDT (requested 250.00)"
    )


def test_kelly_needs_enough_trades_else_falls_back():
    rm = manager(sizing_mode="kelly", kelly_min_trades=20, sizing_fallback="fixed", fixed_quote=50.0)
    rd = rm.check_entry(req(), make_view(closed_pnl_pcts=WINS6_LOSSES4))
    assert rd.quote_amount == 50.0
    assert reasons(rd) == [
        (
            "position_sizing",
            Outcome.RESIZE,
            "kelly needs 20 closed trades, have 10; fallback fixed size 50.00 USDT (requested 250.00)",
        )
    ]


def test_kelly_without_edge_blocks():
    pcts = [5.0] * 4 + [-5.0] * 6  # W 0.4, R 1 -> f* = 0.4 - 0.6 = -0.2
    rm = manager(sizing_mode="kelly", kelly_min_trades=10)
    rd = rm.check_entry(req(), make_view(closed_pnl_pcts=pcts))
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd) == [
        ("position_sizing", Outcome.BLOCK, "kelly sees no edge: f*=-0.2000 (W=40.00%, R=1.00, 10 trades)")
    ]


def test_kelly_lookback_uses_only_recent_trades():
    pcts = [-5.0] * 30 + WINS6_LOSSES4  # the old losers fall outside a 10-trade lookback
    rm = manager(sizing_mode="kelly", kelly_min_trades=10, kelly_lookback_trades=10)
    assert rm.check_entry(req(), make_view(closed_pnl_pcts=pcts)).quote_amount == pytest.approx(2000.0, rel=1e-12)


# -- multipliers -----------------------------------------------------------------------------
def test_confidence_scaling_linear():
    assert confidence_multiplier(None, 0.5, 1.5) == 1.0
    assert confidence_multiplier(0.0, 0.5, 1.5) == 0.5
    assert confidence_multiplier(1.0, 0.5, 1.5) == 1.5
    assert confidence_multiplier(7.0, 0.5, 1.5) == 1.5  # clipped
    rm = manager(confidence_scaling=True, confidence_min_mult=0.5, confidence_max_mult=1.5)
    rd = rm.check_entry(req(confidence=0.8), make_view())
    # 0.5 + 1.0 x 0.8 = 1.3 -> 250 x 1.3 = 325
    assert rd.quote_amount == pytest.approx(325.0, rel=1e-12)
    assert reasons(rd) == [("confidence_scaling", Outcome.RESIZE, "confidence 0.80: size x1.3, 250.00 -> 325.00 USDT")]
    # unknown confidence or a multiplier of exactly 1: nothing recorded
    assert rm.check_entry(req(confidence=None), make_view()).decisions == []
    assert rm.check_entry(req(confidence=0.5), make_view()).decisions == []
    # scaling off: confidence ignored
    assert manager().check_entry(req(confidence=0.0), make_view()).quote_amount == 250.0


def test_symbol_multiplier_resizes_and_zero_blocks():
    rm = manager(symbol_multipliers={"DOGE/USDT": 0.5, "PEPE/USDT": 0.0})
    rd = rm.check_entry(req(symbol="DOGE/USDT"), make_view())
    assert rd.quote_amount == 125.0
    assert reasons(rd) == [
        ("symbol_multiplier", Outcome.RESIZE, "DOGE/USDT multiplier: size x0.5, 250.00 -> 125.00 USDT")
    ]
    rd = rm.check_entry(req(symbol="PEPE/USDT"), make_view())
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd) == [("symbol_multiplier", Outcome.BLOCK, "PEPE/USDT multiplier: size x0, 250.00 -> 0.00 USDT")]
    assert rm.check_entry(req(symbol="BTC/USDT"), make_view()).decisions == []


def test_drawdown_size_multiplier():
    rm = manager(drawdown_reduce_pct=10.0, drawdown_size_mult=0.5)
    rd = rm.check_entry(req(), make_view(8800.0, peak_equity=10_000.0))
    assert rd.quote_amount == 125.0
    assert reasons(rd) == [
        (
            "drawdown_size",
            Outcome.RESIZE,
            "drawdown 12.00% from peak 10000.00 >= 10.00%: size x0.5, 250.00 -> 125.00 USDT",
        )
    ]
    # 5 % drawdown is below the level
    assert manager(drawdown_reduce_pct=10.0).check_entry(req(), make_view(9500.0, peak_equity=10_000.0)).decisions == []


def alternating(n_returns: int, a: float, start: float = 100.0) -> np.ndarray:
    """Closes whose log returns alternate +a, -a, ... (sample mean 0 for an even count)."""
    r = np.array([a if i % 2 == 0 else -a for i in range(n_returns)])
    return start * np.exp(np.concatenate(([0.0], np.cumsum(r))))


def test_realized_vol_by_hand():
    c = alternating(4, 0.01)
    # returns +-0.01, mean 0: sample var = 4 x 0.0001 / 3 -> std = 0.02 / sqrt(3); x sqrt(8760) per year
    expected = 0.02 / math.sqrt(3) * math.sqrt(8760) * 100
    assert realized_vol_annual_pct(c, H) == pytest.approx(expected, rel=1e-12)
    assert realized_vol_annual_pct(c[:2], H) is None
    assert vol_multiplier(80.0, 40.0, 2.0) == 0.5
    assert vol_multiplier(10.0, 40.0, 2.0) == 2.0
    assert vol_multiplier(0.0, 40.0, 2.0) == 2.0


def test_volatility_scaling_targets_vol_and_is_capped():
    closes = alternating(4, 0.01)
    md = ArrayMarketData.regular({"BTC/USDT": closes}, T0 - 4 * H, H)
    realized = 0.02 / math.sqrt(3) * math.sqrt(8760) * 100  # 108.07 %
    rm = manager(vol_target_pct=realized / 2, vol_window=4, vol_max_mult=2.0)
    rd = rm.check_entry(req(), make_view(market=md))
    assert rd.quote_amount == pytest.approx(125.0, rel=1e-12)
    assert reasons(rd) == [
        (
            "volatility_scaling",
            Outcome.RESIZE,
            "realized vol 108.07% vs target 54.04% (annualized, 4 candles): size x0.5, 250.00 -> 125.00 USDT",
        )
    ]
    # a calm market scales up, but never beyond vol_max_mult
    rd = manager(vol_target_pct=realized * 10, vol_window=4, vol_max_mult=2.0).check_entry(req(), make_view(market=md))
    assert rd.quote_amount == 500.0
    # too little history: no scaling, nothing recorded
    rd = manager(vol_target_pct=50.0, vol_window=10).check_entry(req(), make_view(market=md))
    assert rd.quote_amount == 250.0 and rd.decisions == []


def test_stop_distance_fraction():
    assert stop_distance_fraction(100.0, None, "long") is None
    assert stop_distance_fraction(200.0, 190.0, "long") == 0.05
    assert stop_distance_fraction(200.0, 210.0, "short") == 0.05
    with pytest.raises(ValueError, match="not below entry"):
        stop_distance_fraction(200.0, 200.0, "long")


def test_multipliers_apply_in_the_documented_order():
    closes = alternating(4, 0.01)
    md = ArrayMarketData.regular({"ETH/USDT": closes}, T0 - 4 * H, H)
    realized = 0.02 / math.sqrt(3) * math.sqrt(8760) * 100
    rm = manager(
        sizing_mode="fixed",
        fixed_quote=1000.0,
        drawdown_reduce_pct=10.0,
        drawdown_size_mult=0.5,
        symbol_multipliers={"ETH/USDT": 0.8},
        confidence_scaling=True,
        confidence_min_mult=0.0,
        confidence_max_mult=1.0,
        vol_target_pct=realized / 2,
        vol_window=4,
    )
    rd = rm.check_entry(req(symbol="ETH/USDT", confidence=0.5), make_view(8000.0, peak_equity=10_000.0, market=md))
    # 1000 -> x0.5 drawdown 500 -> x0.8 symbol 400 -> x0.5 confidence 200 -> x0.5 vol 100
    assert [d.rule for d in rd.decisions] == [
        "position_sizing",
        "drawdown_size",
        "symbol_multiplier",
        "confidence_scaling",
        "volatility_scaling",
    ]
    assert [d.payload.get("after") for d in rd.decisions[1:]] == pytest.approx([500.0, 400.0, 200.0, 100.0])
    assert rd.approved and rd.quote_amount == pytest.approx(100.0, rel=1e-12)
