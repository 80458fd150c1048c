"""Hyperopt (issue 16 §1): search-space validation, seeded Optuna runs on bundled candles whose
best value a direct backtest reproduces, failed and infeasible trials, the ``optimise`` command.

Optuna's RDB storage is a second connection to the same database, so the tests that run trials
use ``transaction=True`` (on SQLite a test transaction would hold the write lock)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from strategies import optimise
from strategies.models import BacktestRun, Optimisation
from strategies.registry import get_strategy
from strategies.services.backtests import backtest_create, backtest_execute, parse_day_range
from strategies.services.optimisations import (
    OptimisationError,
    optimisation_create,
    optimisation_results,
    optimisation_run_inline,
)
from trading.services.candles import candles_import

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
SPACE = {
    "take_profit": {"low": 0.5, "high": 3.0, "step": 0.25},
    "max_safety_orders": {"low": 0, "high": 4},
    "price_deviation": {"low": 0.5, "high": 4.0, "log": True},
    "tp_type": {"choices": ["total", "base"]},
}
SPECS = get_strategy("smart_dca").param_specs()


def _import(bundled_data_dir):
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")


@pytest.fixture
def candles(db, bundled_data_dir, make_user):
    _import(bundled_data_dir)
    return make_user("quant", "trader", is_superuser=True)


def _create(user, **kw):
    start, end = parse_day_range("2025-06-01", "2025-07-31")
    args = dict(user=user, strategy="smart_dca", symbols=SYMBOLS, timeframe="1h", start=start, end=end)
    args.update(space=SPACE, n_trials=12, seed=7)
    args.update(kw)
    return optimisation_create(**args)


def test_space_validate_normalises_and_names_every_bad_key():
    assert optimise.space_validate(SPACE, SPECS) == {
        "max_safety_orders": {"type": "int", "low": 0, "high": 4, "step": 1, "log": False},
        "price_deviation": {"type": "float", "low": 0.5, "high": 4.0, "step": None, "log": True},
        "take_profit": {"type": "float", "low": 0.5, "high": 3.0, "step": 0.25, "log": False},
        "tp_type": {"type": "choice", "choices": ["total", "base"]},
    }
    with pytest.raises(optimise.SpaceError) as exc:
        optimise.space_validate(
            {
                "nope": {"low": 1, "high": 2},
                "take_profit": {"low": 0.001, "high": 2},  # schema min 0.01
                "max_safety_orders": {"low": 3, "high": 300},  # schema max 200
                "step_scale": {"low": 2, "high": 1},
                "volume_scale": {"low": 1, "high": 2, "step": 0.5, "log": True},
                "tp_type": {"choices": ["total", "quote"]},
                "rsi_period": {"low": 2.5, "high": 9},
                "risk.max_positions": {"low": -1, "high": 3},
                "risk.regime_universe": {"choices": ["BTC/USDT"]},
            },
            SPECS,
        )
    assert exc.value.errors == {
        "nope": "unknown parameter of the strategy (or risk.<field>)",
        "take_profit": "low 0.001 is below the schema's min 0.01",
        "max_safety_orders": "high 300 is above the schema's max 200",
        "step_scale": "low 2 must be below high 1",
        "volume_scale": "step and log cannot be combined",
        "tp_type": "'quote' not among 'total', 'base'",
        "rsi_period": "an int parameter needs whole low, high and step",
        "risk.max_positions": "-1 refused by the risk block: max_positions: must be >= 0, got -1",
        "risk.regime_universe": "not a searchable field of the risk block (RiskConfig)",
    }


def test_space_defaults_come_from_the_schema_and_validate():
    proposal = optimise.space_defaults(SPECS)
    assert proposal["take_profit"] == {"low": 0.75, "high": 3.0}  # 0.01..1000 is > 20x the default 1.5
    assert proposal["max_safety_orders"] == {"low": 3, "high": 10}  # 5 / 2 .. 5 x 2, whole
    assert proposal["tp_type"] == {"choices": ["total", "base"]}
    assert proposal["trailing_enabled"] == {"choices": [True, False]}
    assert "start_condition" not in proposal  # str: left out
    assert set(optimise.space_validate(proposal, SPECS)) == set(proposal)


def test_create_refuses_bad_inputs_and_saves_nothing(candles):
    cases = [
        ({"space": {"take_profit": {"low": 5, "high": 1}}}, "invalid search space: take_profit: low 5 must be below high 1"),
        ({"objective": "alpha"}, "objective must be one of sharpe, sortino, calmar, profit, profit_factor, got 'alpha'"),
        ({"sampler": "grid"}, "sampler must be one of tpe, random, cmaes, got 'grid'"),
        ({"n_trials": 0}, "n_trials must be a whole number from 1 to 100000, got 0"),
        ({"constraints": {"max_drawdown_pct": -3}}, "invalid constraints: max_drawdown_pct: must be a number >= 0"),
        ({"symbols": ["DOGE/USDT"]}, "unknown symbol(s) on binance: DOGE/USDT"),
        (
            {"sampler": "cmaes", "space": {"tp_type": {"choices": ["total", "base"]}, "take_profit": SPACE["take_profit"]}},
            "sampler cmaes needs at least 2 numeric ranges in the space; use tpe or random",
        ),
    ]
    for kw, message in cases:
        with pytest.raises(OptimisationError) as exc:
            _create(candles, **kw)
        assert str(exc.value) == message
    assert Optimisation.objects.count() == 0
