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
        (
            {"space": {"take_profit": {"low": 5, "high": 1}}},
            "invalid search space: take_profit: low 5 must be below high 1",
        ),
        (
            {"objective": "alpha"},
            "objective must be one of sharpe, sortino, calmar, profit, profit_factor, got 'alpha'",
        ),
        ({"sampler": "grid"}, "sampler must be one of tpe, random, cmaes, got 'grid'"),
        ({"n_trials": 0}, "n_trials must be a whole number from 1 to 100000, got 0"),
        ({"constraints": {"max_drawdown_pct": -3}}, "invalid constraints: max_drawdown_pct: must be a number >= 0"),
        ({"symbols": ["DOGE/USDT"]}, "unknown symbol(s) on binance: DOGE/USDT"),
        (
            {
                "sampler": "cmaes",
                "space": {"tp_type": {"choices": ["total", "base"]}, "take_profit": SPACE["take_profit"]},
            },
            "sampler cmaes needs at least 2 numeric ranges in the space; use tpe or random",
        ),
    ]
    for kw, message in cases:
        with pytest.raises(OptimisationError) as exc:
            _create(candles, **kw)
        assert str(exc.value) == message
    assert Optimisation.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_seeded_run_finds_a_best_value_a_direct_backtest_reproduces(bundled_data_dir, make_user):
    _import(bundled_data_dir)
    user = make_user("quant", "trader")
    opt = optimisation_run_inline(optimisation_id=_create(user).pk)

    assert (opt.status, opt.trials_asked, opt.trials_done, opt.progress) == ("done", 12, 12, 1.0)
    results = optimisation_results(optimisation=opt)
    trials = results["trials"]
    assert [t["number"] for t in trials] == list(range(12))
    assert {t["state"] for t in trials} == {"COMPLETE"}
    best = max(trials, key=lambda t: (t["value"], -t["number"]))
    assert (opt.best_trial, opt.best_value, opt.best_params) == (best["number"], best["value"], best["params"])
    assert results["best_metrics"] == best["metrics"]
    # every searched value lies in the space
    for t in trials:
        assert 0.5 <= t["params"]["take_profit"] <= 3.0 and (t["params"]["take_profit"] / 0.25).is_integer()
        assert t["params"]["max_safety_orders"] in range(5) and t["params"]["tp_type"] in ("total", "base")

    # the same best params through the ordinary backtest path give exactly the same Sharpe
    start, end = parse_day_range("2025-06-01", "2025-07-31")
    run = backtest_create(
        user=user,
        enqueue=False,
        strategy="smart_dca",
        symbols=SYMBOLS,
        timeframe="1h",
        start=start,
        end=end,
        capital=1000,
        params=opt.best_params,
    )
    run = backtest_execute(run_id=run.pk)
    assert run.status == BacktestRun.Status.DONE
    assert run.metrics["sharpe"] == opt.best_value
    assert run.metrics == opt.best_metrics

    # the same seed asks the same trials and gets the same values
    again = optimisation_run_inline(optimisation_id=_create(user).pk)
    assert again.study_name != opt.study_name
    assert [(t["params"], t["value"]) for t in optimisation_results(optimisation=again)["trials"]] == [
        (t["params"], t["value"]) for t in trials
    ]


@pytest.mark.django_db(transaction=True)
def test_a_trial_that_raises_is_recorded_failed_and_infeasible_ones_are_never_best(bundled_data_dir, make_user):
    _import(bundled_data_dir)
    user = make_user("quant", "trader")
    # a long deal's last safety order must sit < 100 % below the entry: 30 % x 4 orders cannot
    space = {"price_deviation": {"low": 5.0, "high": 40.0}, "max_safety_orders": {"low": 1, "high": 4}}
    opt = _create(user, space=space, n_trials=10, sampler="random", constraints={"min_trades": 3})
    opt = optimisation_run_inline(optimisation_id=opt.pk)

    assert (opt.status, opt.trials_done) == ("done", 10)
    trials = optimisation_results(optimisation=opt)["trials"]
    failed = [t for t in trials if t["state"] == "FAIL"]
    assert failed, "the space reaches combinations the strategy refuses"
    for t in failed:
        assert t["params"]["price_deviation"] * t["params"]["max_safety_orders"] >= 100
        assert t["error"].startswith("BacktestInputError: invalid params: ")
        assert t["value"] is None and t["metrics"] is None
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(failed) + len(complete) == 10
    for t in complete:
        assert t["error"] is None
        assert t["infeasible"] == ([f"trades {t['metrics']['trades']} < 3"] if t["metrics"]["trades"] < 3 else [])
    feasible = [t for t in complete if not t["infeasible"]]
    if feasible:
        assert opt.best_value == max(t["value"] for t in feasible)
    else:
        assert opt.best_trial is None and opt.best_value is None


@pytest.mark.django_db(transaction=True)
def test_optimise_command_prints_the_best_trial_and_writes_json(bundled_data_dir, make_user, tmp_path):
    _import(bundled_data_dir)
    make_user("quant", "trader", is_superuser=True)
    space, out_path = tmp_path / "space.json", tmp_path / "out.json"
    space.write_text(json.dumps(SPACE))
    out = StringIO()
    call_command(
        "optimise",
        "--strategy",
        "smart_dca",
        "--symbols",
        "BTC/USDT,ETH/USDT",
        "--start",
        "2025-06-01",
        "--end",
        "2025-07-31",
        "--trials",
        "8",
        "--objective",
        "sortino",
        "--space",
        str(space),
        "--seed",
        "3",
        "--json",
        str(out_path),
        stdout=out,
    )
    data = json.loads(out_path.read_text())
    assert set(data) == {"optimisation", "best_trial", "best_value", "best_params", "best_metrics", "trials"}
    assert len(data["trials"]) == 8
    for t in data["trials"]:
        assert set(t) == {"number", "params", "value", "state", "metrics", "error", "infeasible"}
    assert data["optimisation"]["objective"] == "sortino" and data["optimisation"]["n_trials"] == 8
    opt = Optimisation.objects.get()
    assert data["best_value"] == opt.best_value == data["trials"][opt.best_trial]["value"]
    text = out.getvalue()
    assert f"best trial #{opt.best_trial}: sortino {opt.best_value:.4f}" in text
    assert "trial 8/8" in text and f"results written to {out_path}" in text

    with pytest.raises(CommandError, match="unknown parameter of the strategy"):
        space.write_text(json.dumps({"nope": {"low": 1, "high": 2}}))
        call_command(
            "optimise",
            "--strategy",
            "smart_dca",
            "--symbols",
            "BTC/USDT",
            "--start",
            "2025-06-01",
            "--end",
            "2025-06-30",
            "--space",
            str(space),
            stdout=StringIO(),
        )
    assert Optimisation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_trials_run_as_celery_tasks_on_the_research_queue(bundled_data_dir, make_user, celery_session_worker_real):
    import time

    _import(bundled_data_dir)
    user = make_user("celeryopt", "trader")
    opt = _create(user, n_trials=6, parallel=2, enqueue=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        opt.refresh_from_db()
        if opt.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert (opt.status, opt.error, opt.trials_asked, opt.trials_done) == ("done", "", 6, 6)
    trials = optimisation_results(optimisation=opt)["trials"]
    assert [t["number"] for t in trials] == list(range(6))  # never more than n_trials asked
    assert {t["state"] for t in trials} == {"COMPLETE"}
    assert opt.best_value == max(t["value"] for t in trials)
