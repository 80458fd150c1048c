"""``python manage.py ml_train --model confidence --strategy smart_dca --symbols BTC/USDT,ETH/USDT
--start 2024-01-01 --end 2025-06-30 [--timeframe 1h] [--folds 4] [--owner NAME] [--json report.json]``

Trains one model now (in this process, not on a worker): the strategy is backtested by the
engine over the window, its deals become labels, an XGBoost model is validated by purged
walk-forward and registered as a candidate version of the owner, and the promotion rule
decides whether it becomes active. Prints progress and the result; ``--json`` writes the
version's metrics, promotion decision and artifact. Exit code 1 with a one-line reason when
the inputs are bad or the data cannot make a model (nothing is registered then).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.commands import command_owner
from mlops.models import ModelKind, TrainingJob
from mlops.services.training import TrainingError, training_job_create, training_job_execute
from strategies.services.backtests import BacktestError, parse_day_range


class Command(BaseCommand):
    help = "Train and register an XGBoost model from a strategy's simulated outcomes (purged walk-forward)."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, choices=ModelKind.values, help="model kind")
        parser.add_argument("--strategy", required=True, help="smart_dca for DCA kinds; a detector strategy otherwise")
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--start", required=True, help="first day (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--end", required=True, help="last day included (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe (default 1h)")
        parser.add_argument("--folds", type=int, default=4, help="walk-forward folds, 2-10 (default 4)")
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets (default binance)")
        parser.add_argument("--owner", help="username owning the model (default: first superuser, else first user)")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the training report to this file")

    def handle(self, *args, **opts):
        owner = command_owner(opts["owner"])
        try:
            start, end = parse_day_range(opts["start"], opts["end"])
            job = training_job_create(
                user=owner,
                kind=opts["model"],
                strategy=opts["strategy"],
                symbols=opts["symbols"].split(","),
                timeframe=opts["timeframe"],
                start=start,
                end=end,
                exchange=opts["exchange"],
                options={"folds": opts["folds"]},
                source=TrainingJob.Source.COMMAND,
                enqueue=False,
            )
        except (TrainingError, BacktestError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"training job #{job.pk}: {job.kind} for {job.strategy} on {', '.join(job.symbols)} ...")
        job = training_job_execute(job_id=job.pk)
        if job.status != TrainingJob.Status.DONE:
            raise CommandError(f"training job #{job.pk} failed: {job.error}")
        v = job.version
        name, value = v.headline_metric
        out = {
            "job": job.pk,
            "version": v.version,
            "kind": v.kind,
            "strategy": v.strategy,
            "status": v.status,
            "rows": v.n_rows,
            "metrics": v.metrics,
            "promotion": v.promotion,
            "artifact": {"path": v.artifact_path, "sha256": v.artifact_sha256},
            "top_features": sorted(v.importance.items(), key=lambda kv: -kv[1])[:10],
        }
        self.stdout.write(
            f"version {v.version} ({v.status}): {v.n_rows} rows, walk-forward {name.upper()} "
            f"{'n/a' if value is None else f'{value:.4f}'}"
        )
        self.stdout.write(f"promotion: {v.promotion.get('reason', '')}")
        trading = v.metrics.get("trading")
        if trading:
            for side in ("ungated", "gated"):
                t = trading[side]
                self.stdout.write(
                    f"  {side:8s} deals {t['trades']:4d}  win rate {_f(t['win_rate_pct'])} %  "
                    f"profit factor {_f(t['profit_factor'])}  P&L {_f(t['pnl'])}  max DD {_f(t['max_drawdown_pct'])} %"
                )
        if opts["json_path"]:
            opts["json_path"].write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
            self.stdout.write(f"report written to {opts['json_path']}")


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"
