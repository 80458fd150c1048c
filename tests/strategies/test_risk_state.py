"""RiskConfig validation and RiskManager state round-trips through JSON (no DB)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from strategies.risk import EntryRequest, OpenPosition, RiskConfig, RiskManager
from strategies.risk.testing import ArrayMarketData, make_view

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
H = 3_600_000


# -- config -----------------------------------------------------------------------------------
def test_config_defaults_round_trip_through_json():
    cfg = RiskConfig()
    d = json.loads(json.dumps(cfg.to_dict()))
    assert RiskConfig.from_dict(d) == cfg
    assert d["sizing_mode"] == "strategy" and d["correlation_max"] == 0.7
    assert d["regime_long_multipliers"] == {"panic": 0.0, "caution": 0.5, "normal": 1.0, "euphoria": 0.75}
    assert d["regime_universe"][0] == "BTC/USDT"


def test_config_from_dict_overrides_and_partial_regime_dicts():
    cfg = RiskConfig.from_dict({"daily_loss_limit_pct": 5, "regime_long_multipliers": {"euphoria": 1}})
    assert cfg.daily_loss_limit_pct == 5.0 and isinstance(cfg.daily_loss_limit_pct, float)
    assert cfg.regime_long_multipliers == {"panic": 0.0, "caution": 0.5, "normal": 1.0, "euphoria": 1.0}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"sizing_mode": "yolo"}, "sizing_mode"),
        ({"sizing_fallback": "kelly"}, "sizing_fallback"),
        ({"correlation_action": "warn"}, "correlation_action"),
        ({"fixed_quote": 0}, "fixed_quote"),
        ({"equity_pct": -1}, "equity_pct"),
        ({"risk_per_trade_pct": "1"}, "risk_per_trade_pct"),
        ({"kelly_fraction": 0}, "kelly_fraction"),
        ({"kelly_fraction": 1.5}, "kelly_fraction"),
        ({"kelly_min_trades": 0}, "kelly_min_trades"),
        ({"kelly_lookback_trades": 2.5}, "kelly_lookback_trades"),
        ({"confidence_scaling": "yes"}, "confidence_scaling"),
        ({"confidence_min_mult": 2.0, "confidence_max_mult": 1.0}, "confidence_max_mult"),
        ({"vol_target_pct": 0}, "vol_target_pct"),
        ({"vol_window": 1}, "vol_window"),
        ({"symbol_multipliers": {"BTC/USDT": -1}}, "symbol_multipliers"),
        ({"symbol_multipliers": ["BTC/USDT"]}, "symbol_multipliers"),
        ({"min_quote": -5}, "min_quote"),
        ({"max_positions": -1}, "max_positions"),
        ({"max_positions": True}, "max_positions"),
        ({"max_capital_at_risk_pct": 0}, "max_capital_at_risk_pct"),
        ({"daily_loss_limit_pct": 0}, "daily_loss_limit_pct"),
        ({"daily_loss_limit_pct": float("nan")}, "daily_loss_limit_pct"),
        ({"drawdown_reduce_pct": 101}, "drawdown_reduce_pct"),
        ({"drawdown_pause_pct": 20, "drawdown_auto_resume_pct": 20}, "drawdown_auto_resume_pct"),
        ({"drawdown_auto_resume_pct": 5}, "drawdown_auto_resume_pct"),
        ({"correlation_max": 1.5}, "correlation_max"),
        ({"correlation_window": 1}, "correlation_window"),
        ({"correlation_shrink_mult": 2}, "correlation_shrink_mult"),
        ({"regime_symbol": ""}, "regime_symbol"),
        ({"regime_universe": "BTC/USDT"}, "regime_universe"),
        ({"regime_update_minutes": 0}, "regime_update_minutes"),
        ({"regime_vol_long_hours": 24}, "regime_vol_long_hours"),
        ({"panic_btc_return_pct": 1}, "panic_btc_return_pct"),
        ({"panic_btc_return_pct": -3}, "panic_btc_return_pct"),
        ({"euphoria_market_return_pct": -1}, "euphoria_market_return_pct"),
        ({"caution_vol_ratio": 0}, "caution_vol_ratio"),
        ({"regime_long_multipliers": {"panic": -0.1}}, "regime_long_multipliers"),
        ({"regime_short_multipliers": {"crash": 0.0}}, "regime_short_multipliers"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(data, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        RiskConfig.from_dict(data)


def test_direct_construction_validates_too():
    with pytest.raises(ValueError, match="^daily_loss_limit_pct:"):
        RiskConfig(daily_loss_limit_pct=-2.0)


# -- state round trip -------------------------------------------------------------------------
def scenario_market(n=400) -> ArrayMarketData:
    """BTC/ETH/SOL 1h random walks (seeded) with a market-wide crash and rebound mid-way."""
    rng = np.random.default_rng(7)
    common = rng.normal(0.0, 0.006, n)
    common[200:210] -= 0.015  # crash: about -14 % over ten hours
    common[260:270] += 0.015  # rebound
    out = {}
    for k, sym in enumerate(["BTC/USDT", "ETH/USDT", "SOL/USDT"]):
        r = common + rng.normal(0.0, 0.003 * (k + 1), n)
        out[sym] = 100.0 * (k + 1) * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    return ArrayMarketData.regular(out, T0, H)


def scenario_config() -> RiskConfig:
    return RiskConfig(
        sizing_mode="kelly",
        kelly_min_trades=5,
        sizing_fallback="equity_pct",
        daily_loss_limit_pct=3.0,
        drawdown_reduce_pct=5.0,
        drawdown_pause_pct=12.0,
        drawdown_auto_resume_pct=6.0,
        max_positions=2,
        max_capital_at_risk_pct=15.0,
        confidence_scaling=True,
        vol_target_pct=40.0,
        correlation_window=24,
        regime_vol_short_hours=12,
        regime_vol_long_hours=120,
        regime_return_hours=12,
        regime_min_universe=2,
        regime_universe=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
    )


def run(rm: RiskManager, md: ArrayMarketData, start: int, stop: int, log: list) -> None:
    """Drive the manager over candles ``[start, stop)`` with an equity path that follows BTC."""
    btc = md.closes("BTC/USDT", T0 + 400 * H, 401)
    for i in range(start, stop):
        t = T0 + i * H
        equity = 10_000.0 * btc[i] / btc[0]
        positions = [OpenPosition("ETH/USDT", "long", 1500.0, 200.0, 190.0)] if i % 3 else []
        pcts = [-1.5 if k % 3 == 0 else k % 4 + 1.0 for k in range(i // 10)]
        view = make_view(equity, time_ms=t, peak_equity=10_000.0, positions=positions, closed_pnl_pcts=pcts, market=md)
        log.extend(d.to_dict() for d in rm.on_candle(t, view))
        if i % 4 == 0:
            rd = rm.check_entry(
                EntryRequest(t, "SOL/USDT", "long" if i % 8 else "short", 300.0, 300.0, 291.0, 0.6), view
            )
            log.append({"approved": rd.approved, "amount": rd.quote_amount})
            log.extend(d.to_dict() for d in rd.decisions)
        if i == 250 and rm.paused:
            rm.resume()  # its decision arrives with the next on_candle


def test_state_round_trip_gives_identical_decisions():
    md = scenario_market()
    full: list = []
    run(RiskManager(scenario_config()), md, 0, 400, full)
    rules = {d["rule"] for d in full if "rule" in d}
    # the scenario exercises the stateful rules
    assert {
        "circuit_breaker",
        "daily_loss_limit",
        "drawdown_pause",
        "drawdown_size",
        "position_sizing",
        "confidence_scaling",
        "volatility_scaling",
        "correlation_limit",
    } <= rules
    assert any(d.get("reason", "").startswith("resumed by user") for d in full)
    assert any(d.get("approved") for d in full) and not all(d.get("approved", False) for d in full)

    for split in (37, 205, 251, 333):
        first = RiskManager(scenario_config())
        log: list = []
        run(first, md, 0, split, log)
        state = first.state_dict()
        wire = json.loads(json.dumps(state, allow_nan=False))
        assert wire == state
        second = RiskManager(RiskConfig.from_dict(json.loads(json.dumps(scenario_config().to_dict()))))
        second.load_state(wire)
        assert second.state_dict() == state
        run(second, md, split, 400, log)
        assert log == full


def test_pending_resume_survives_a_round_trip():
    rm = RiskManager(RiskConfig(drawdown_pause_pct=10.0, regime_enabled=False))
    rm.on_candle(T0, make_view(10_000.0, time_ms=T0))
    rm.on_candle(T0 + H, make_view(8000.0, time_ms=T0 + H))
    dec = rm.resume()
    other = RiskManager(rm.config)
    other.load_state(json.loads(json.dumps(rm.state_dict())))
    assert other.on_candle(T0 + 2 * H, make_view(8000.0, time_ms=T0 + 2 * H)) == [dec]


def test_load_state_rejects_garbage():
    rm = RiskManager()
    state = rm.state_dict()
    with pytest.raises(ValueError, match="missing"):
        rm.load_state({})
    with pytest.raises(ValueError, match="version"):
        rm.load_state({**state, "version": 99})
    with pytest.raises(ValueError, match="regime"):
        rm.load_state({**state, "regime": "mania"})


def test_on_candle_is_idempotent_for_a_repeated_time():
    md = scenario_market()
    rm = RiskManager(scenario_config())
    for i in range(205):
        t = T0 + i * H
        rm.on_candle(t, make_view(9000.0 if i > 100 else 10_000.0, time_ms=t, market=md))
    before = rm.state_dict()
    assert rm.on_candle(T0 + 204 * H, make_view(9000.0, time_ms=T0 + 204 * H, market=md)) == []
    assert rm.state_dict() == before
    assert math.isfinite(rm.peak_equity)
