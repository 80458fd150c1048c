"""Strategy API: parameter schema and validation, registry, dotted-path loading, state JSON."""

from __future__ import annotations

import json

import pytest

from strategies.base import BaseStrategy, Param, ParamError
from strategies.engine import Engine, MarketSpec, OrderIntent
from strategies.engine.testing import make_feed
from strategies.library.smart_dca import DcaState, DcaSymbolState, SmartDCA
from strategies.registry import StrategyNotFound, create_strategy, get_strategy, list_strategies


def test_schema_is_json_and_lists_every_param_with_units():
    sch = SmartDCA.schema()
    json.dumps(sch)
    assert sch["name"] == "smart_dca" and sch["title"] == "Smart DCA"
    by = {p["name"]: p for p in sch["params"]}
    assert by["price_deviation"] == {
        "name": "price_deviation",
        "type": "float",
        "default": 1.0,
        "min": 0.01,
        "max": 100.0,
        "unit": "%",
        "help": "Distance of safety order 1 from the base order price.",
        "choices": [],
        "group": "safety orders",
        "label": "Price deviation",
    }
    assert by["tp_type"]["choices"] == ["total", "base"]
    for flag in (
        "confidence_dca_guard_enabled",
        "step_repeat_guard_enabled",
        "trailing_step_guard_enabled",
        "spend_guard_enabled",
        "zombie_tag_enabled",
        "btc_market_filter_enabled",
        "safu_exit_enabled",
    ):
        assert by[flag]["type"] == "bool" and by[flag]["default"] is False


def test_validate_params_coerces_fills_defaults_and_reports_per_field():
    p = SmartDCA.validate_params({"take_profit": "2.5", "max_safety_orders": 4.0, "trailing_enabled": "true"})
    assert (
        p["take_profit"] == 2.5
        and p["max_safety_orders"] == 4
        and p["trailing_enabled"] is True
        and p["step_scale"] == 1.0
    )
    with pytest.raises(ParamError) as e:
        SmartDCA.validate_params(
            {
                "take_profit": -1,
                "max_safety_orders": 2.5,
                "direction": "sideways",
                "bogus": 1,
                "trailing_enabled": "maybe",
            }
        )
    assert e.value.errors == {
        "take_profit": "must be >= 0.01%",
        "max_safety_orders": "must be a whole number",
        "direction": "must be one of long, short",
        "bogus": "unknown parameter",
        "trailing_enabled": "must be true or false",
    }
    with pytest.raises(ParamError) as e:
        SmartDCA({"start_condition": "strategy:nope"})
    assert "unknown strategy 'nope'" in e.value.errors["start_condition"]
    with pytest.raises(ParamError) as e:
        SmartDCA({"price_deviation": 30, "step_scale": 2, "max_safety_orders": 3})
    assert e.value.errors == {
        "max_safety_orders": "the last safety order would be 210.0% below the base order (>= 100%)"
    }


def test_registry_by_name_by_path_and_unknown():
    assert get_strategy("smart_dca") is SmartDCA
    names = [s["name"] for s in list_strategies()]
    assert "smart_dca" in names and "sma_cross" in names
    assert get_strategy("strategies.library.smart_dca:SmartDCA") is SmartDCA
    assert get_strategy("strategies.library.smart_dca.SmartDCA") is SmartDCA
    assert get_strategy("strategies.engine.testing:ScriptedStrategy").name == "scripted"
    with pytest.raises(StrategyNotFound, match="unknown strategy 'nope'; known strategies: .*smart_dca"):
        get_strategy("nope")
    with pytest.raises(KeyError):
        get_strategy("nope.mod:Thing")
    assert create_strategy("sma_cross", {"fast": 5}).params == {"fast": 5, "slow": 30, "quote_amount": 100.0}


def test_state_round_trips_json():
    st = DcaState(
        {"BTC/USDT": DcaSymbolState(deal_id="x-d1", phase="active", levels=[99.0, 97.0], so_filled=1)}, active_deals=1
    )
    d = json.loads(json.dumps(SmartDCA().state_to_dict(st)))
    assert SmartDCA().state_from_dict(d) == st


class Breakout(BaseStrategy):
    """A custom strategy written outside the library, as in docs/strategies.md."""

    name = "breakout_test"
    PARAMS = (Param("lookback", "int", 3, 1, 100, "candles"), Param("quote", "float", 50.0, 1.0, None, "quote"))

    def on_candle(self, ctx):
        i, n = ctx.i, self.params["lookback"]
        if (
            i >= n
            and ctx.position.amount == 0
            and not ctx.orders
            and ctx.candles.close[i] > ctx.candles.high[i - n : i].max()
        ):
            return [OrderIntent(ctx.symbol, "buy", "market", quote_amount=self.params["quote"])]
        return None


def test_a_custom_strategy_runs_in_the_engine():
    rows = [(10, 10.5, 9.5, 10)] * 4 + [(10, 12, 10, 11.5), (11.5, 12, 11, 11.8)]
    res = Engine(Breakout({"lookback": 3}), [MarketSpec("X/USDT", 0.001, 0.001, 0, 1)], capital=100).run(
        make_feed({"X/USDT": rows})
    )
    assert [(f.price, f.amount) for f in res.fills] == [(11.5, 4.347)]
