"""Exposure limits, daily loss limit and drawdown protection of the risk layer (no DB)."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine.types import Outcome
from strategies.risk import EntryRequest, OpenPosition, RiskConfig, RiskManager
from strategies.risk.limits import capital_at_risk, entry_risk, position_risk
from strategies.risk.testing import ArrayMarketData, make_view

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
H = 3_600_000
# no symbols needed: the view only tells the manager the stepping timeframe (1h)
MD = ArrayMarketData({"BTC/USDT": (np.array([0]), np.array([1.0]))}, H)


def manager(**kw) -> RiskManager:
    kw.setdefault("regime_enabled", False)
    kw.setdefault("correlation_action", "off")
    return RiskManager(RiskConfig(**kw))


def req(amount=250.0, price=100.0, stop=None, symbol="BTC/USDT", t=T0, side="long"):
    return EntryRequest(t, symbol, side, amount, price, stop)


def reasons(decisions):
    return [(d.rule, d.outcome, d.reason) for d in decisions]


# -- max concurrent positions ---------------------------------------------------------------
def test_max_positions_blocks_at_the_limit_and_allows_below():
    rm = manager(max_positions=2)
    one = [OpenPosition("ETH/USDT", "long", 300.0, 3000.0)]
    two = one + [OpenPosition("SOL/USDT", "long", 300.0, 150.0)]
    rd = rm.check_entry(req(), make_view(positions=one))
    assert rd.approved and rd.quote_amount == 250.0 and rd.decisions == []
    rd = rm.check_entry(req(), make_view(positions=two))
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd.decisions) == [("max_positions", Outcome.BLOCK, "2 open positions >= max 2")]


# -- capital at risk --------------------------------------------------------------------------
POSITIONS = [
    OpenPosition("ETH/USDT", "long", 5000.0, 100.0, 90.0),  # 10 % stop -> 500 at risk
    OpenPosition("SOL/USDT", "long", 200.0, 150.0, None),  # no stop -> the whole 200 at risk
]


def test_capital_at_risk_sums():
    assert position_risk(POSITIONS[0]) == 500.0
    assert position_risk(POSITIONS[1]) == 200.0
    assert position_risk(OpenPosition("X/USDT", "short", 1000.0, 100.0, 110.0)) == 100.0
    assert capital_at_risk(POSITIONS) == 700.0
    assert entry_risk(1000.0, None) == 1000.0 and entry_risk(1000.0, 0.02) == 20.0


def test_capital_at_risk_allows_within_cap():
    rm = manager(max_capital_at_risk_pct=10.0)  # cap 1000 on 10 000 equity
    rd = rm.check_entry(req(2000.0, price=50.0, stop=45.0), make_view(positions=POSITIONS))  # +200 -> 900
    assert rd.approved and rd.quote_amount == 2000.0 and rd.decisions == []


def test_capital_at_risk_resizes_to_the_headroom():
    rm = manager(max_capital_at_risk_pct=10.0)
    # 700 + 5000 x 0.1 = 1200 > 1000: headroom 300 / 0.1 = 3000 USDT
    rd = rm.check_entry(req(5000.0, price=50.0, stop=45.0), make_view(positions=POSITIONS))
    assert rd.approved and rd.quote_amount == pytest.approx(3000.0, rel=1e-12)
    assert reasons(rd.decisions) == [
        (
            "capital_at_risk",
            Outcome.RESIZE,
            "capital at risk would be 1200.00 USDT > cap 1000.00 (10.00% of equity 10000.00): size 5000.00 -> 3000.00 USDT",
        )
    ]
    # without a stop the whole entry is at risk: 700 + 500 > 1000 -> 300 USDT
    rd = rm.check_entry(req(500.0), make_view(positions=POSITIONS))
    assert rd.quote_amount == pytest.approx(300.0, rel=1e-12)


def test_capital_at_risk_blocks_when_full():
    rm = manager(max_capital_at_risk_pct=10.0)
    full = [OpenPosition("ETH/USDT", "long", 1000.0, 100.0)]
    rd = rm.check_entry(req(100.0, price=50.0, stop=49.0), make_view(positions=full))
    assert not rd.approved
    assert reasons(rd.decisions) == [
        (
            "capital_at_risk",
            Outcome.BLOCK,
            "capital at risk 1000.00 USDT already >= cap 1000.00 (10.00% of equity 10000.00)",
        )
    ]


# -- minimum size -----------------------------------------------------------------------------
def test_min_size_blocks_small_entries():
    rm = manager(min_quote=10.0, symbol_multipliers={"BTC/USDT": 0.01})
    rd = rm.check_entry(req(250.0), make_view())
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd.decisions)[-1] == ("min_size", Outcome.BLOCK, "size 2.50 USDT < minimum 10.00")
    assert manager(min_quote=10.0).check_entry(req(10.0), make_view()).approved
    rd = manager().check_entry(req(0.0), make_view())
    assert reasons(rd.decisions) == [("min_size", Outcome.BLOCK, "size 0.00 USDT < minimum 0.00")]


# -- daily loss limit -------------------------------------------------------------------------
def step(rm, t, equity, **kw):
    return rm.on_candle(t, make_view(equity, time_ms=t, market=MD, **kw))


def test_daily_loss_blocks_until_the_next_utc_day():
    rm = manager(daily_loss_limit_pct=5.0)
    # the candle opening 2024-02-29 23:00 closes at 2024-03-01 00:00: it starts the day
    assert step(rm, T0 - H, 10_000.0) == []
    assert rm.day_start_equity == 10_000.0
    assert step(rm, T0 + 5 * H, 9600.0) == []  # -4 %: fine
    assert rm.check_entry(req(t=T0 + 5 * H), make_view(9600.0, market=MD)).approved
    decs = step(rm, T0 + 6 * H, 9500.0)  # -5 %: limit reached
    assert reasons(decs) == [
        (
            "daily_loss_limit",
            Outcome.INFO,
            "day loss 5.00% (equity 9500.00 vs day start 10000.00) reached limit 5.00%; "
            "new entries blocked until 2024-03-02 00:00 UTC",
        )
    ]
    assert rm.daily_halted
    # a recovery the same day does not lift it
    step(rm, T0 + 7 * H, 9700.0)
    rd = rm.check_entry(req(t=T0 + 7 * H), make_view(9700.0, market=MD))
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd.decisions) == [
        (
            "daily_loss_limit",
            Outcome.BLOCK,
            "daily loss limit 5.00% reached (day start equity 10000.00, loss now 3.00%); "
            "no new entries until 2024-03-02 00:00 UTC",
        )
    ]
    # the last candle of the day (opens 22:00, closes 23:00) is still blocked
    assert step(rm, T0 + 22 * H, 9800.0) == []
    assert not rm.check_entry(req(t=T0 + 22 * H), make_view(9800.0, market=MD)).approved
    # the candle closing at 00:00 UTC starts the new day with its equity
    decs = step(rm, T0 + 23 * H, 9850.0)
    assert reasons(decs) == [
        (
            "daily_loss_limit",
            Outcome.INFO,
            "new UTC day 2024-03-02: new entries allowed again (day start equity 9850.00)",
        )
    ]
    assert rm.day_start_equity == 9850.0 and not rm.daily_halted
    rd = rm.check_entry(req(t=T0 + 23 * H), make_view(9850.0, market=MD))
    assert rd.approved and rd.decisions == []


def test_daily_loss_day_start_after_a_gap_is_the_last_equity_seen():
    rm = manager(daily_loss_limit_pct=5.0)
    step(rm, T0 + 20 * H, 10_000.0)
    step(rm, T0 + 21 * H, 9900.0)
    step(rm, T0 + 25 * H, 9000.0)  # candles 22:00 .. 00:00 missing
    # day start = 9900 (last equity before the day changed): 9000 is -9.09 % -> halted
    assert rm.day_start_equity == 9900.0 and rm.daily_halted


def test_daily_loss_is_checked_at_entry_time_too():
    rm = manager(daily_loss_limit_pct=2.0)
    step(rm, T0, 10_000.0)
    rd = rm.check_entry(req(t=T0 + H), make_view(9750.0, market=MD))
    assert not rd.approved
    assert [(d.rule, d.outcome) for d in rd.decisions] == [
        ("daily_loss_limit", Outcome.INFO),
        ("daily_loss_limit", Outcome.BLOCK),
    ]


# -- drawdown pause ---------------------------------------------------------------------------
def test_drawdown_pause_then_resume():
    rm = manager(drawdown_pause_pct=20.0)
    step(rm, T0, 10_000.0)
    assert step(rm, T0 + H, 8500.0) == []  # -15 %
    decs = step(rm, T0 + 2 * H, 8000.0)  # -20 %
    assert reasons(decs) == [
        (
            "drawdown_pause",
            Outcome.INFO,
            "drawdown 20.00% from peak 10000.00 reached pause level 20.00%; new entries paused until resumed",
        )
    ]
    assert rm.paused
    step(rm, T0 + 3 * H, 9000.0)  # recovering does not lift a pause without auto-resume
    rd = rm.check_entry(req(t=T0 + 3 * H), make_view(9000.0, peak_equity=10_000.0, market=MD))
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd.decisions) == [
        (
            "drawdown_pause",
            Outcome.BLOCK,
            "new entries paused: drawdown reached 20.00% (now 10.00% from peak 10000.00); resume to lift",
        )
    ]
    dec = rm.resume()
    assert (dec.rule, dec.outcome, dec.reason, dec.time) == (
        "drawdown_pause",
        Outcome.INFO,
        "resumed by user at drawdown 10.00% from peak 10000.00; pause re-arms at 20.00% below 9000.00 or a later high",
        T0 + 3 * H,
    )
    assert not rm.paused and rm.resume() is None
    # the resume decision is delivered once, by the next on_candle
    assert step(rm, T0 + 4 * H, 8000.0) == [dec]
    assert step(rm, T0 + 5 * H, 8000.0) == []
    rd = rm.check_entry(req(t=T0 + 5 * H), make_view(8000.0, peak_equity=10_000.0, market=MD))
    assert rd.approved and rd.decisions == []
    # a further 20 % fall from the equity at resume time (9000) pauses again
    decs = step(rm, T0 + 6 * H, 7200.0)
    assert reasons(decs) == [
        (
            "drawdown_pause",
            Outcome.INFO,
            "drawdown 20.00% from peak 9000.00 reached pause level 20.00%; new entries paused until resumed",
        )
    ]


def test_drawdown_auto_resume():
    rm = manager(drawdown_pause_pct=20.0, drawdown_auto_resume_pct=10.0)
    step(rm, T0, 10_000.0)
    decs = step(rm, T0 + H, 7900.0)
    assert decs[0].reason == (
        "drawdown 21.00% from peak 10000.00 reached pause level 20.00%; "
        "new entries paused until resumed or drawdown < 10.00%"
    )
    assert step(rm, T0 + 2 * H, 8900.0) == []  # 11 %: still paused
    assert rm.paused
    decs = step(rm, T0 + 3 * H, 9100.0)
    assert reasons(decs) == [
        (
            "drawdown_pause",
            Outcome.INFO,
            "drawdown 9.00% from peak 10000.00 back below 10.00%; new entries resumed automatically",
        )
    ]
    assert not rm.paused


def test_engine_peak_is_respected():
    rm = manager(drawdown_pause_pct=20.0)
    # the engine saw a peak of 12 000 before the manager existed: 9600 is a 20 % drawdown
    decs = step(rm, T0, 9600.0, peak_equity=12_000.0)
    assert decs[0].rule == "drawdown_pause" and rm.peak_equity == 12_000.0


def test_block_order_pause_before_daily_loss_before_sizing():
    rm = manager(drawdown_pause_pct=10.0, daily_loss_limit_pct=5.0, sizing_mode="kelly")
    step(rm, T0, 10_000.0)
    step(rm, T0 + H, 8000.0)
    assert rm.paused and rm.daily_halted
    rd = rm.check_entry(req(t=T0 + H), make_view(8000.0, peak_equity=10_000.0, market=MD))
    assert [d.rule for d in rd.decisions] == ["drawdown_pause"]
    rm.resume()
    rd = rm.check_entry(req(t=T0 + H), make_view(8000.0, peak_equity=10_000.0, market=MD))
    assert [(d.rule, d.outcome) for d in rd.decisions] == [
        ("drawdown_pause", Outcome.INFO),
        ("daily_loss_limit", Outcome.BLOCK),
    ]
