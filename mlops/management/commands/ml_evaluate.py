"""``python manage.py ml_evaluate --strategy smart_dca --symbols BTC/USDT,ETH/USDT --start 2025-07-01
--end 2025-08-31 [--model-version N] [--threshold 0.5] [--owner NAME] [--json report.json]``

Evaluates a model on a window it never saw: the same backtest gated by the model and ungated,
side by side, with the model's AUC / Brier / log-loss on that window's deals
(:func:`mlops.services.evaluation.model_evaluate`). The default model is the owner's active
version of the strategy's gate kind (``confidence`` for smart_dca, ``success`` for a detector
strategy). Refuses — exit code 1, nothing run — a version whose training window plus its label
horizon (the embargo) overlaps the evaluation window, and says which dates would do.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.commands import command_owner
from mlops.services.evaluation import SIDE_METRICS, EvaluationError, model_evaluate
from strategies.services.backtests import BacktestError, parse_day_range


class Command(BaseCommand):
    help = "Backtest a strategy gated and ungated by a model on an unseen window, side by side."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="smart_dca or a detector strategy")
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols")
        parser.add_argument("--start", required=True, help="first day (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--end", required=True, help="last day included (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe (default 1h)")
        parser.add_argument(
            "--model-version", type=int, dest="version", help="version number (default: the active one)"
        )
        parser.add_argument("--threshold", type=float, help="gate threshold 0..1 (Smart DCA: confidence_threshold)")
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets (default binance)")
        parser.add_argument("--owner", help="username owning the model (default: first superuser, else first user)")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the evaluation to this file")

    def handle(self, *args, **opts):
        owner = command_owner(opts["owner"])
        if opts["threshold"] is not None and not 0.0 <= opts["threshold"] <= 1.0:
            raise CommandError("--threshold must be between 0 and 1")
        try:
            start, end = parse_day_range(opts["start"], opts["end"])
            out = model_evaluate(
                owner=owner,
                strategy=opts["strategy"],
                symbols=opts["symbols"].split(","),
                start=start,
                end=end,
                timeframe=opts["timeframe"],
                exchange=opts["exchange"],
                version=opts["version"],
                threshold=opts["threshold"],
            )
        except (EvaluationError, BacktestError) as exc:
            raise CommandError(str(exc)) from None
        m, w = out["model"], out["window"]
        self.stdout.write(
            f"{m['kind']} v{m['version']} for {m['strategy']} (trained {m['train_start'][:10]} → {m['train_end'][:10]}) "
            f"on {', '.join(w['symbols'])} {w['timeframe']} {w['start']} → {w['end']}, threshold {out['threshold']}"
        )
        self.stdout.write(f"{'metric':20s} {'ungated':>12s} {'gated':>12s} {'difference':>12s}")
        for k in SIDE_METRICS:
            self.stdout.write(
                f"{k:20s} {_f(out['ungated'][k]):>12s} {_f(out['gated'][k]):>12s} {_f(out['difference'][k]):>12s}"
            )
        c = out["classification"]
        if c.get("rows"):
            self.stdout.write(
                f"model on this window: {c['rows']} deals, AUC {_f(c.get('auc'))}, Brier {_f(c.get('brier'))}, "
                f"log-loss {_f(c.get('log_loss'))}"
            )
        else:
            self.stdout.write("model on this window: no closed deal to score")
        if out["fallback"]:
            self.stdout.write(f"warning: {out['fallback']}")
        if opts["json_path"]:
            opts["json_path"].write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
            self.stdout.write(f"report written to {opts['json_path']}")


def _f(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:.4f}" if isinstance(x, float) else str(x)
