"""``manage.py backtest``: run a strategy over stored candles, save the run, print a summary.

Example::

    python manage.py backtest --strategy smart_dca --symbols BTC/USDT,ETH/USDT --timeframe 1h \\
        --start 2025-03-10 --end 2025-08-31 --capital 1000 --params params.json \\
        --fee-bps 10 --slippage-bps 5 --json report.json

Bad arguments (unknown strategy or symbol, no candles in the range, invalid params) exit
non-zero with a one-line reason and save nothing. ``--params`` is a JSON object of the
strategy's parameters, optionally with a ``"risk"`` section (``strategies.risk.RiskConfig``).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from strategies.services.backtests import BacktestError, backtest_create, backtest_execute, parse_day_range


class Command(BaseCommand):
    help = "Backtest a strategy on stored candles; saves a BacktestRun and prints its metrics."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="registered name (smart_dca) or dotted path")
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe of the stepping candles (default 1h)")
        parser.add_argument("--start", required=True, help="first day (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--end", required=True, help="last day included (YYYY-MM-DD, UTC) or ISO time")
        parser.add_argument("--capital", default="1000", help="starting capital in quote currency (default 1000)")
        parser.add_argument("--params", type=Path, help="JSON file with strategy parameters (+ optional 'risk')")
        parser.add_argument("--fee-bps", default="10", help="maker and taker fee in basis points (default 10)")
        parser.add_argument("--slippage-bps", default="5", help="slippage on market and stop fills, bps (default 5)")
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets (default binance)")
        parser.add_argument("--owner", help="username owning the saved run (default: first superuser, else first user)")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the JSON report to this file")

    def handle(self, *args, **opts):
        params = {}
        if opts["params"]:
            try:
                params = json.loads(opts["params"].read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CommandError(f"cannot read --params {opts['params']}: {exc}") from None
            if not isinstance(params, dict):
                raise CommandError(f"--params {opts['params']} must hold a JSON object")
        owner = self._owner(opts["owner"])
        try:
            start, end = parse_day_range(opts["start"], opts["end"])
            run = backtest_create(
                user=owner,
                enqueue=False,
                strategy=opts["strategy"],
                symbols=opts["symbols"].split(","),
                timeframe=opts["timeframe"],
                start=start,
                end=end,
                capital=opts["capital"],
                params=params,
                fee_bps=opts["fee_bps"],
                slippage_bps=opts["slippage_bps"],
                exchange=opts["exchange"],
            )
        except BacktestError as exc:
            raise CommandError(str(exc)) from None
        run = backtest_execute(run_id=run.pk)
        if run.status != run.Status.DONE:
            raise CommandError(f"backtest #{run.pk} failed: {run.error}")
        if opts["json_path"]:
            opts["json_path"].write_text(json.dumps(run.report, indent=2, sort_keys=True) + "\n")
        self._summary(run)
        if opts["json_path"]:
            self.stdout.write(f"report written to {opts['json_path']}")

    def _owner(self, username):
        User = get_user_model()
        if username:
            try:
                return User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"no user {username!r}") from None
        user = User.objects.filter(is_superuser=True).order_by("pk").first() or User.objects.order_by("pk").first()
        if user is None:
            raise CommandError("no users yet: create one (createsuperuser) or pass --owner")
        return user

    def _summary(self, run):
        m = run.metrics
        r = run.report["run"]
        self.stdout.write(
            f"backtest #{run.pk}: {run.strategy} on {', '.join(run.symbols)} {run.timeframe} "
            f"{r['start']} → {r['end']}, capital {r['capital']:g} (fees {r['fee_bps']:g} bps, slippage {r['slippage_bps']:g} bps)"
        )
        rows = [
            ("final equity", f"{m['final_equity']:.2f}"),
            ("total return", f"{m['total_return_pct']:.2f} %"),
            ("CAGR", _pct(m["cagr_pct"])),
            ("Sharpe", _num(m["sharpe"])),
            ("Sortino", _num(m["sortino"])),
            ("max drawdown", f"{m['max_drawdown_pct']:.2f} %"),
            ("trades", str(m["trades"])),
            ("win rate", _pct(m["win_rate_pct"])),
            ("profit factor", _num(m["profit_factor"])),
            ("exposure", f"{m['exposure_pct']:.2f} %"),
            ("fees paid", f"{m['fees_paid']:.2f}"),
            ("open deals at end", str(len(run.report["open_deals"]))),
            ("candles / time", f"{r['candles']} in {run.elapsed_s:.2f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            self.stdout.write(f"  {k:<{width}}  {v}")
        decisions = run.report["decisions"]
        if decisions:
            self.stdout.write("  decisions:")
            for key, count in decisions.items():
                self.stdout.write(f"    {key:<40} {count}")


def _num(v):
    return "n/a" if v is None else f"{v:.2f}"


def _pct(v):
    return "n/a" if v is None else f"{v:.2f} %"
