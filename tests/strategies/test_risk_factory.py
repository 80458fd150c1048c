"""The one risk factory shared by backtests and bots, the market-minimum refusal and the
user resume of a pause or a daily halt (no DB)."""

from __future__ import annotations

import json

import pytest

from strategies.engine import MarketSpec
from strategies.engine.types import Outcome
from strategies.risk import RiskConfig, RiskManager, risk_config_validate, risk_manager_from_config
from strategies.risk.testing import make_view
from tests.strategies.test_risk_limits import MD, T0, H, manager, reasons, req, step


def test_factory_none_is_no_manager_and_a_block_is_validated_by_the_config_schema():
    assert risk_manager_from_config(None) is None
    rm = risk_manager_from_config({"daily_loss_limit_pct": 3}, markets=[MarketSpec("BTC/USDT", min_cost=5.0)])
    assert isinstance(rm, RiskManager)
    assert rm.config == RiskConfig(daily_loss_limit_pct=3.0)
    assert rm.market_minimums == {"BTC/USDT": (5.0, 0.0)}
    with pytest.raises(ValueError, match="^daily_loss_limit_pct: must be <= 100, got 300$"):
        risk_manager_from_config({"daily_loss_limit_pct": 300})
    with pytest.raises(ValueError, match="^nope: unknown RiskConfig field$"):
        risk_config_validate({"nope": 1})
    full = risk_config_validate({"max_positions": 2})
    assert full == RiskConfig(max_positions=2).to_dict() and json.loads(json.dumps(full)) == full


def test_entry_shrunk_below_the_market_minimum_is_refused_with_a_reason():
    rm = RiskManager(
        RiskConfig(regime_enabled=False, correlation_action="off", symbol_multipliers={"BTC/USDT": 0.01}),
        market_minimums={"BTC/USDT": (5.0, 0.0)},
    )
    rd = rm.check_entry(req(amount=250.0), make_view())  # 250 x 0.01 = 2.50 < 5
    assert not rd.approved and rd.quote_amount == 0.0
    assert reasons(rd.decisions)[-1] == (
        "min_size",
        Outcome.BLOCK,
        "size 2.50 USDT < market minimum 5.00 USDT (BTC/USDT min cost)",
    )
    # the min amount (base units) at the entry price counts too: 0.1 x 100 = 10 USDT
    rm = RiskManager(RiskConfig(regime_enabled=False, correlation_action="off"), market_minimums={"BTC/USDT": (5, 0.1)})
    rd = rm.check_entry(req(amount=8.0, price=100.0), make_view())
    assert reasons(rd.decisions) == [
        ("min_size", Outcome.BLOCK, "size 8.00 USDT < market minimum 10.00 USDT (BTC/USDT min amount 0.1)")
    ]
    assert rm.check_entry(req(amount=10.0, price=100.0), make_view()).approved


def test_resume_names_who_and_lifts_a_daily_halt_only_when_asked():
    rm = manager(daily_loss_limit_pct=5.0)
    step(rm, T0, 10_000.0)
    step(rm, T0 + H, 9400.0)  # -6 % today
    assert rm.daily_halted and rm.blocked
    assert rm.resume(by="alice") is None  # a daily halt needs daily=True
    dec = rm.resume(by="alice", daily=True)
    assert (dec.rule, dec.outcome, dec.reason) == (
        "daily_loss_limit",
        Outcome.INFO,
        "daily loss halt lifted by alice; the limit 5.00% re-arms from equity 9400.00 for the rest of the UTC day",
    )
    assert not rm.blocked and rm.day_start_equity == 9400.0
    rd = rm.check_entry(req(t=T0 + 2 * H), make_view(9300.0, peak_equity=10_000.0, market=MD))
    assert rd.approved and reasons(rd.decisions) == [(dec.rule, dec.outcome, dec.reason)]

    rm = manager(drawdown_pause_pct=10.0)
    step(rm, T0, 10_000.0)
    step(rm, T0 + H, 8800.0)
    dec = rm.resume(by="bob")
    assert dec.reason.startswith("resumed by bob at drawdown 12.00% from peak 10000.00")
    assert dec.payload["by"] == "bob"
