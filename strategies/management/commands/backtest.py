"""``manage.py backtest``: run a strategy over stored candles, save the run, print a summary.

Example::

    python manage.py backtest --strategy smart_dca --symbols BTC/USDT,ETH/USDT --timeframe 1h \\
        --start 2025-03-10 --end 2025-08-31 --capital 1000 --params params.json \\
        --fee-bps 10 --slippage-bps 5 --json report.json

Perpetuals (USDT-M, ``docs/perps.md``)::

    python manage.py backtest --strategy smart_dca --market-type swap --symbols BTC/USDT:USDT \
        --leverage 5 --margin-mode isolated --liquidation-buffer 10 --start 2024-07-23 --end 2024-08-17

Mark candles and funding rates stored for the markets are used (import the ``-mark`` and
``-funding`` files); the summary adds leverage, funding paid and liquidations.

Bad arguments (unknown strategy or symbol, no candles in the range, invalid params) exit
non-zero with a one-line reason and save nothing. ``--params`` is a JSON object of the
strategy's parameters, optionally with a ``"risk"`` section (``strategies.risk.RiskConfig``).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.commands import command_owner
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
        parser.add_argument(
            "--market-type", default="spot", choices=("spot", "swap"), help="spot (default) or swap (USDT-M perpetual)"
        )
        parser.add_argument("--leverage", help="swap: leverage 1..125, capped by the market's first tier (default 1)")
        parser.add_argument("--margin-mode", choices=("isolated", "cross"), help="swap: isolated (default) or cross")
        parser.add_argument(
            "--liquidation-buffer", help="swap: refuse entries/safety orders closer than this %% to liquidation"
        )
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
        owner = command_owner(opts["owner"])
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
                **self._perpetual(opts),
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

    @staticmethod
    def _perpetual(opts) -> dict:
        out = {"market_type": opts["market_type"]}
        for key, opt in (
            ("leverage", "leverage"),
            ("margin_mode", "margin_mode"),
            ("liquidation_buffer_pct", "liquidation_buffer"),
        ):
            if opts.get(opt) is not None:
                out[key] = opts[opt]
        return out

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
            *self._perpetual_rows(run.report),
            ("candles / time", f"{r['candles']} in {run.elapsed_s:.2f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            self.stdout.write(f"  {k:<{width}}  {v}")
        for t in run.report["trades"] if "perpetual" in r else ():
            if t["exit_reason"] == "liquidation":
                self.stdout.write(
                    f"  liquidated {t['symbol']} {t['side']} {t['closed_at']} at {t['exit_price']:g} "
                    f"(margin {t['margin']:.2f}, funding {t['funding_paid']:.2f})"
                )
        decisions = run.report["decisions"]
        if decisions:
            self.stdout.write("  decisions:")
            for key, count in decisions.items():
                self.stdout.write(f"    {key:<40} {count}")

    @staticmethod
    def _perpetual_rows(report) -> list[tuple[str, str]]:
        p = report["run"].get("perpetual")
        if p is None:
            return []
        m = report["metrics"]
        buffer = f", buffer {p['liquidation_buffer_pct']:g} %" if p["liquidation_buffer_pct"] else ""
        return [
            ("perpetual", f"{p['leverage']}x {p['margin_mode']}{buffer}"),
            ("funding paid", f"{m['funding_paid']:.2f}"),
            ("liquidations", str(m["liquidations"])),
        ]


def _num(v):
    return "n/a" if v is None else f"{v:.2f}"


def _pct(v):
    return "n/a" if v is None else f"{v:.2f} %"
