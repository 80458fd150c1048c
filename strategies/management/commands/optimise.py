"""``manage.py optimise``: hyperopt a strategy's parameters with Optuna over stored candles.

Example::

    python manage.py optimise --strategy smart_dca --symbols BTC/USDT,ETH/USDT --timeframe 1h \\
        --start 2025-04-01 --end 2025-05-31 --trials 200 --objective sharpe --space space.json \\
        --sampler tpe --seed 7 --max-drawdown 25 --min-trades 10 --json out.json

Trials run in this process one after another (seeded runs reproduce exactly), or with
``--workers N`` as Celery tasks on the ``research`` queue, N in flight, while this command
waits and prints progress. ``--space`` is a JSON search space (``strategies.optimise``);
``--space-template`` prints the schema's proposal instead and exits. ``--params`` holds fixed
parameters (+ ``"risk"``). Bad arguments exit non-zero with a one-line reason, saving nothing.
The ``--json`` file: ``optimisation_results`` (best params, best value, every trial).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.commands import command_owner
from strategies import optimise
from strategies.models import Optimisation
from strategies.services.backtests import BacktestError, parse_day_range
from strategies.services.optimisations import (
    OptimisationError,
    optimisation_create,
    optimisation_results,
    optimisation_run_inline,
)


def _json_file(path: Path | None, what: str) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"{what} {path} must hold a JSON object")
    return data


class Command(BaseCommand):
    help = "Optimise a strategy's parameters with Optuna (trials are backtests); prints the best trial."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="registered name (smart_dca) or dotted path")
        parser.add_argument("--symbols", help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe (default 1h)")
        parser.add_argument("--start", help="first day (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--end", help="last day included (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--space", type=Path, help="JSON search space file")
        parser.add_argument("--space-template", action="store_true", help="print the schema's proposed space")
        parser.add_argument("--trials", type=int, default=100, help="number of trials (default 100)")
        parser.add_argument("--objective", default="sharpe", choices=optimise.OBJECTIVES)
        parser.add_argument("--sampler", default="tpe", choices=optimise.SAMPLERS)
        parser.add_argument("--seed", type=int, help="sampler seed (trial k uses seed + k)")
        parser.add_argument("--max-drawdown", type=float, help="constraint: max drawdown, percent")
        parser.add_argument("--min-trades", type=int, help="constraint: at least this many closed trades")
        parser.add_argument("--params", type=Path, help="JSON file with fixed parameters (+ optional 'risk')")
        parser.add_argument("--capital", default="1000", help="starting capital, quote (default 1000)")
        parser.add_argument("--fee-bps", default="10", help="fee in basis points (default 10)")
        parser.add_argument("--slippage-bps", default="5", help="slippage in basis points (default 5)")
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets")
        parser.add_argument("--workers", type=int, help="run on Celery (queue research), this many trials in flight")
        parser.add_argument("--timeout", type=float, default=3600, help="--workers: seconds to wait (default 3600)")
        parser.add_argument("--owner", help="username owning the run (default: first superuser, else first user)")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the results JSON to this file")

    def handle(self, *args, **opts):
        if opts["space_template"]:
            from strategies.registry import StrategyNotFound, get_strategy

            try:
                specs = get_strategy(opts["strategy"]).param_specs()
            except StrategyNotFound as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps(optimise.space_defaults(specs), indent=2))
            return
        missing = [f"--{k}" for k in ("symbols", "start", "end", "space") if not opts[k]]
        if missing:
            raise CommandError(f"missing {', '.join(missing)}")
        constraints = {}
        if opts["max_drawdown"] is not None:
            constraints["max_drawdown_pct"] = opts["max_drawdown"]
        if opts["min_trades"] is not None:
            constraints["min_trades"] = opts["min_trades"]
        try:
            start, end = parse_day_range(opts["start"], opts["end"])
            opt = optimisation_create(
                user=command_owner(opts["owner"]),
                strategy=opts["strategy"],
                symbols=opts["symbols"].split(","),
                timeframe=opts["timeframe"],
                start=start,
                end=end,
                space=_json_file(opts["space"], "--space"),
                n_trials=opts["trials"],
                objective=opts["objective"],
                sampler=opts["sampler"],
                constraints=constraints,
                seed=opts["seed"],
                parallel=opts["workers"] or 1,
                params=_json_file(opts["params"], "--params"),
                capital=opts["capital"],
                fee_bps=opts["fee_bps"],
                slippage_bps=opts["slippage_bps"],
                exchange=opts["exchange"],
                enqueue=bool(opts["workers"]),
            )
        except (BacktestError, OptimisationError) as exc:
            raise CommandError(str(exc)) from None
        started = time.monotonic()
        if opts["workers"]:
            opt = self._wait(opt, opts["timeout"])
        else:
            opt = optimisation_run_inline(optimisation_id=opt.pk, on_trial=self._progress)
        if opt.status != Optimisation.Status.DONE:
            raise CommandError(f"optimisation #{opt.pk} {opt.status}: {opt.error or 'not finished'}")
        results = optimisation_results(optimisation=opt)
        if opts["json_path"]:
            opts["json_path"].write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        self._summary(opt, results, time.monotonic() - started)
        if opts["json_path"]:
            self.stdout.write(f"results written to {opts['json_path']}")

    def _progress(self, opt) -> None:
        best = "—" if opt.best_value is None else f"{opt.best_value:.4f}"
        self.stdout.write(f"  trial {opt.trials_done}/{opt.n_trials}  best {opt.objective} {best}")

    def _wait(self, opt, timeout: float):
        deadline, seen = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            opt.refresh_from_db()
            if opt.trials_done != seen:
                seen = opt.trials_done
                self._progress(opt)
            if opt.status in (Optimisation.Status.DONE, Optimisation.Status.FAILED):
                return opt
            time.sleep(0.5)
        raise CommandError(f"optimisation #{opt.pk}: {opt.trials_done}/{opt.n_trials} trials after {timeout:g} s")

    def _summary(self, opt, results, elapsed: float) -> None:
        states = {}
        for t in results["trials"]:
            key = "infeasible" if t["infeasible"] else t["state"].lower()
            states[key] = states.get(key, 0) + 1
        self.stdout.write(
            f"optimisation #{opt.pk}: {opt.strategy} on {', '.join(opt.symbols)} {opt.timeframe}, "
            f"{opt.n_trials} trials ({', '.join(f'{v} {k}' for k, v in sorted(states.items()))}) in {elapsed:.1f} s"
        )
        if opt.best_trial is None:
            self.stdout.write("  no feasible trial")
            return
        m = opt.best_metrics
        self.stdout.write(f"  best trial #{opt.best_trial}: {opt.objective} {opt.best_value:.4f}")
        self.stdout.write(
            f"  return {m['total_return_pct']:.2f} %, max drawdown {m['max_drawdown_pct']:.2f} %, trades {m['trades']}"
        )
        for k, v in sorted(opt.best_params.items()):
            self.stdout.write(f"    {k} = {v}")
