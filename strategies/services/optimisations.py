"""Hyperopt services: create an :class:`~strategies.models.Optimisation`, run its trials, read results.

``optimisation_create`` validates everything (the backtest inputs through
:func:`~strategies.services.backtests.backtest_validate`, the search space, sampler, objective
and constraints through :mod:`strategies.optimise`) and saves a queued run; nothing is saved
when one input is bad (:class:`OptimisationError`, one line for users).

Trials are Optuna trials in its RDB storage on *our* database (:func:`optuna_storage`: the same
SQLite file, or the same Postgres database), one study per run (``study_name``). One trial =
:func:`optimisation_trial_run`: claim a slot with a conditional ``UPDATE`` (never more than
``n_trials`` are asked, a duplicate task does nothing), ask the study with the sampler seeded
``seed + slot``, backtest on candles cached per process (:func:`_context`), tell the value.
A trial that raises is told ``FAIL`` with its error in the user attribute ``error``; one
breaking a constraint is ``COMPLETE`` with ``infeasible`` reasons and never the best.

Where trials run: in-process one after another (:func:`optimisation_run_inline`, the command's
default; seeded runs are then reproducible), or as Celery tasks on the ``research`` queue
(``strategies.tasks.optimisation_trial``): ``parallel`` tasks are enqueued on commit and each
finished trial enqueues the next while slots remain, so at most ``parallel`` are in flight.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from market7.timeframes import dt_to_ms
from strategies import optimise
from strategies.backtest import BacktestConfig, run_backtest
from strategies.models import Optimisation
from strategies.services.backtests import BacktestError, BacktestInputs, _feed, backtest_specs, backtest_validate

log = logging.getLogger(__name__)

__all__ = [
    "OptimisationError",
    "optimisation_create",
    "optimisation_results",
    "optimisation_run_inline",
    "optimisation_trial_run",
    "optuna_storage",
]

MAX_TRIALS = 100_000
MAX_PARALLEL = 64


class OptimisationError(ValueError):
    """Bad optimisation inputs; the message is one line, for users."""


def optimisation_create(
    *,
    user,
    strategy: str,
    symbols: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    space: dict[str, Any],
    n_trials: int,
    objective: str = "sharpe",
    sampler: str = "tpe",
    constraints: dict[str, Any] | None = None,
    seed: int | None = None,
    parallel: int = 2,
    params: dict[str, Any] | None = None,
    capital: Decimal | float | str = 1000,
    fee_bps: Decimal | float | str = 10,
    slippage_bps: Decimal | float | str = 5,
    exchange: str = "binance",
    enqueue: bool = False,
) -> Optimisation:
    """Validate and save a queued optimisation owned by ``user``.

    ``start``/``end``: aware datetimes (open times of the first and last candle); ``params``:
    fixed strategy parameters (+ ``"risk"`` section) the searched ones override; ``space``: see
    :mod:`strategies.optimise` (keys: the strategy's parameters or ``risk.<field>``, ranges
    inside the schema's min/max); ``objective`` in :data:`~strategies.optimise.OBJECTIVES`;
    ``sampler`` ``tpe|random|cmaes`` (cmaes needs ≥ 2 numeric ranges); ``constraints``
    ``{"max_drawdown_pct", "min_trades"}``; ``n_trials`` 1..100000; ``parallel`` 1..64 trial
    tasks in flight. With ``enqueue``, the first ``parallel`` trial tasks go to the ``research``
    queue after commit. Raises :class:`OptimisationError`; nothing is saved then.
    """
    from strategies.registry import get_strategy

    if objective not in optimise.OBJECTIVES:
        raise OptimisationError(f"objective must be one of {', '.join(optimise.OBJECTIVES)}, got {objective!r}")
    if sampler not in optimise.SAMPLERS:
        raise OptimisationError(f"sampler must be one of {', '.join(optimise.SAMPLERS)}, got {sampler!r}")
    for name, value, hi in (("n_trials", n_trials, MAX_TRIALS), ("parallel", parallel, MAX_PARALLEL)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise OptimisationError(f"{name} must be a whole number from 1 to {hi}, got {value!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31):
        raise OptimisationError(f"seed must be a whole number from 0 to 2^31-1, got {seed!r}")
    try:
        v = backtest_validate(
            strategy=strategy,
            symbols=symbols,
            timeframe=timeframe,
            start=start,
            end=end,
            capital=capital,
            params=params,
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            exchange=exchange,
        )
        norm = optimise.space_validate(space, get_strategy(strategy).param_specs())
    except BacktestError as exc:
        raise OptimisationError(str(exc)) from None
    except optimise.SpaceError as exc:
        raise OptimisationError(f"invalid search space: {exc}") from None
    try:
        limits = optimise.constraints_validate(constraints)
    except optimise.SpaceError as exc:
        raise OptimisationError(f"invalid constraints: {exc}") from None
    if sampler == "cmaes" and sum(e["type"] != "choice" for e in norm.values()) < 2:
        raise OptimisationError("sampler cmaes needs at least 2 numeric ranges in the space; use tpe or random")
    with transaction.atomic():
        opt = Optimisation.objects.create(
            owner=user,
            strategy=v.strategy,
            params={**v.params, **({"risk": v.risk} if v.risk is not None else {})},
            symbols=[m.symbol for m in v.markets],
            exchange=v.exchange,
            timeframe=v.timeframe,
            start=v.start,
            end=v.end,
            capital=v.capital,
            fee_bps=v.fee_bps,
            slippage_bps=v.slippage_bps,
            space=norm,
            sampler=sampler,
            objective=objective,
            constraints=limits,
            n_trials=n_trials,
            parallel=parallel,
            seed=seed,
            study_name=f"market7-opt-{uuid.uuid4().hex}",
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(opt.pk, min(parallel, n_trials)))
    return opt


def _enqueue(optimisation_id: int, count: int) -> None:
    from strategies.tasks import optimisation_trial

    for _ in range(count):
        optimisation_trial.apply_async(args=[optimisation_id], queue="research")


# -- Optuna storage on our database ---------------------------------------------------------------

_STORAGES: dict[str, Any] = {}


def optuna_url() -> str:
    """SQLAlchemy URL of the database Django uses right now (the test database under tests):
    ``sqlite:///<file>`` or ``postgresql+psycopg://user:pw@host:port/name``."""
    from sqlalchemy.engine import URL

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor == "postgresql":
        return URL.create(
            "postgresql+psycopg",
            username=s.get("USER") or None,
            password=s.get("PASSWORD") or None,
            host=s.get("HOST") or None,
            port=int(s["PORT"]) if s.get("PORT") else None,
            database=s["NAME"],
        ).render_as_string(hide_password=False)
    raise OptimisationError(f"optimisations need SQLite or Postgres, not {connection.vendor}")


def optuna_storage():
    """Optuna's ``RDBStorage`` on our database (one per process and URL). No connection pool
    (``NullPool``): nothing stays open between trials, so forks and test teardown are clean."""
    import optuna
    from sqlalchemy.pool import NullPool

    url = optuna_url()
    if url not in _STORAGES:
        kwargs: dict[str, Any] = {"poolclass": NullPool}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    return _STORAGES[url]


def _study(opt: Optimisation, sampler=None):
    import optuna

    return optuna.create_study(
        study_name=opt.study_name, storage=optuna_storage(), sampler=sampler, direction="maximize", load_if_exists=True
    )


# -- one trial --------------------------------------------------------------------------------------

# (exchange, symbols, timeframe, start, end, capital, fees, slippage, btc) -> (inputs, feed, specs):
# candles are read once per worker process and shared read-only by every trial of the run.
_CONTEXTS: dict[tuple, tuple[BacktestInputs, Any, list]] = {}
_CONTEXTS_MAX = 8


def _context(opt: Optimisation, params: dict[str, Any]) -> tuple[BacktestInputs, Any, list]:
    btc = (params.get("btc_symbol") or "BTC/USDT") if params.get("btc_market_filter_enabled") else None
    key = (opt.exchange, tuple(opt.symbols), opt.timeframe, opt.start, opt.end, opt.capital, opt.fee_bps)
    key += (opt.slippage_bps, btc)
    if key not in _CONTEXTS:
        base = {k: v for k, v in opt.params.items() if k != "risk"}
        inputs = backtest_validate(
            strategy=opt.strategy,
            symbols=list(opt.symbols),
            timeframe=opt.timeframe,
            start=opt.start,
            end=opt.end,
            capital=opt.capital,
            params=base,
            fee_bps=opt.fee_bps,
            slippage_bps=opt.slippage_bps,
            exchange=opt.exchange,
        )
        feed = _feed(
            replace(inputs, params={**inputs.params, "btc_market_filter_enabled": bool(btc), "btc_symbol": btc})
        )
        if len(_CONTEXTS) >= _CONTEXTS_MAX:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = (inputs, feed, backtest_specs(inputs))
    return _CONTEXTS[key]


def trial_backtest(opt: Optimisation, values: dict[str, Any]) -> dict[str, Any]:
    """Backtest ``values`` (a trial's ``{key: value}``, ``risk.`` keys included) on top of the
    run's fixed params; returns the report's metrics. Raises whatever the backtest raises
    (``BacktestInputError`` for a combination the strategy refuses)."""
    searched, risk_values = optimise.space_split(values)
    params = {**{k: v for k, v in opt.params.items() if k != "risk"}, **searched}
    risk = opt.params.get("risk")
    if risk_values:
        risk = {**(risk or {}), **risk_values}
    inputs, feed, specs = _context(opt, params)
    config = BacktestConfig(
        strategy=opt.strategy,
        params=params,
        symbols=tuple(m.symbol for m in inputs.markets),
        timeframe=opt.timeframe,
        start_ms=dt_to_ms(opt.start),
        end_ms=dt_to_ms(opt.end),
        capital=float(opt.capital),
        fee_bps=float(opt.fee_bps),
        slippage_bps=float(opt.slippage_bps),
        risk=risk,
    )
    _, report = run_backtest(config, feed, specs, decision_log_cap=0)
    return report["metrics"]


def _claim_slot(optimisation_id: int) -> int | None:
    """Hand out the next trial slot (0-based), or None when all are handed out or the run ended."""
    with transaction.atomic():
        opt = Optimisation.objects.select_for_update().get(pk=optimisation_id)
        if opt.status in (Optimisation.Status.DONE, Optimisation.Status.FAILED) or opt.trials_asked >= opt.n_trials:
            return None
        slot = opt.trials_asked
        updated = Optimisation.objects.filter(pk=opt.pk, trials_asked=slot).update(
            trials_asked=slot + 1, status=Optimisation.Status.RUNNING, started_at=opt.started_at or timezone.now()
        )
        return slot if updated else None


def optimisation_trial_run(*, optimisation_id: int, chain: bool = False) -> int | None:
    """Run one trial of optimisation ``optimisation_id``; returns its Optuna trial number, or
    None when no slot was left (nothing done). With ``chain`` (Celery), enqueue the next trial
    task on commit while slots remain. Never raises for a trial's own error: it is recorded."""
    from optuna.trial import TrialState

    slot = _claim_slot(optimisation_id)
    if slot is None:
        return None
    opt = Optimisation.objects.get(pk=optimisation_id)
    try:
        seed = None if opt.seed is None else opt.seed + slot
        study = _study(opt, optimise.make_sampler(opt.sampler, seed, constrained=bool(opt.constraints)))
        trial = study.ask()
    except Exception as exc:  # storage down or a bug: the run fails visibly, not stuck "running"
        log.exception("optimisation %s: cannot ask a trial", optimisation_id)
        Optimisation.objects.filter(pk=optimisation_id).update(
            status=Optimisation.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        return None
    trial.set_user_attr("slot", slot)
    n_constraints = len(opt.constraints)
    value, metrics, reasons = None, None, []
    try:
        values = optimise.space_suggest(trial, opt.space)
        metrics = trial_backtest(opt, values)
        value = optimise.objective_value(metrics, opt.objective)
        if value is None:
            raise ValueError(f"objective {opt.objective} is undefined for this run ({metrics['trades']} trades)")
    except Exception as exc:  # a trial that raises is recorded as failed with its error
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
        if metrics is not None:
            trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("constraints", [0.0] * n_constraints)
        study.tell(trial, state=TrialState.FAIL)
        state = TrialState.FAIL
    else:
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("constraints", optimise.constraints_check(metrics, opt.constraints))
        reasons = optimise.constraint_reasons(metrics, opt.constraints)
        if reasons:
            trial.set_user_attr("infeasible", reasons)
        study.tell(trial, value)
        state = TrialState.COMPLETE
    _record(opt.pk, trial.number, state == TrialState.COMPLETE and not reasons, value, trial.params, metrics, chain)
    return trial.number


def _record(opt_id: int, number: int, feasible: bool, value, params, metrics, chain: bool) -> None:
    """Count a told trial, keep the best feasible one (ties: the earlier trial), end the run."""
    with transaction.atomic():
        opt = Optimisation.objects.select_for_update().get(pk=opt_id)
        opt.trials_done += 1
        opt.progress = round(opt.trials_done / opt.n_trials, 4)
        if feasible and (
            opt.best_value is None
            or value > opt.best_value
            or (value == opt.best_value and number < (opt.best_trial or 0))
        ):
            opt.best_trial, opt.best_value, opt.best_params, opt.best_metrics = number, value, params, metrics
        if opt.trials_done >= opt.n_trials and opt.status == Optimisation.Status.RUNNING:
            opt.status = Optimisation.Status.DONE
            opt.finished_at = timezone.now()
        opt.save()
        if chain and opt.trials_asked < opt.n_trials and opt.status == Optimisation.Status.RUNNING:
            transaction.on_commit(lambda: _enqueue(opt_id, 1))


def optimisation_run_inline(*, optimisation_id: int, on_trial=None) -> Optimisation:
    """Run every remaining trial in this process, one after another; ``on_trial(opt)`` is called
    after each (progress lines). Returns the refreshed run."""
    while optimisation_trial_run(optimisation_id=optimisation_id) is not None:
        if on_trial is not None:
            on_trial(Optimisation.objects.get(pk=optimisation_id))
    return Optimisation.objects.get(pk=optimisation_id)


def optimisation_results(*, optimisation: Optimisation) -> dict[str, Any]:
    """The run as JSON (what ``manage.py optimise --json`` writes)::

    {"optimisation": {id, strategy, symbols, timeframe, start, end, objective, sampler,
                      constraints, n_trials, seed, space, params, status, study_name},
     "best_trial": int|None, "best_value": float|None, "best_params": {key: value},
     "best_metrics": {...report metrics},
     "trials": [{number, params, value (None unless complete), state (COMPLETE|FAIL|...),
                 metrics|None, error|None, infeasible: [reasons]}]}   # by number
    """
    opt = optimisation
    trials = []
    if opt.trials_asked:
        for t in _study(opt).get_trials(deepcopy=False):
            trials.append(
                {
                    "number": t.number,
                    "params": t.params,
                    "value": t.value if t.state.name == "COMPLETE" else None,
                    "state": t.state.name,
                    "metrics": t.user_attrs.get("metrics"),
                    "error": t.user_attrs.get("error"),
                    "infeasible": t.user_attrs.get("infeasible", []),
                }
            )
    return {
        "optimisation": {
            "id": opt.pk,
            "strategy": opt.strategy,
            "symbols": list(opt.symbols),
            "timeframe": opt.timeframe,
            "start": opt.start.isoformat(),
            "end": opt.end.isoformat(),
            "objective": opt.objective,
            "sampler": opt.sampler,
            "constraints": opt.constraints,
            "n_trials": opt.n_trials,
            "seed": opt.seed,
            "space": opt.space,
            "params": opt.params,
            "status": opt.status,
            "study_name": opt.study_name,
        },
        "best_trial": opt.best_trial,
        "best_value": opt.best_value,
        "best_params": opt.best_params,
        "best_metrics": opt.best_metrics,
        "trials": sorted(trials, key=lambda t: t["number"]),
    }
