"""``manage.py scan``: run strategy detectors on the newest closed candle of each market.

Example::

    python manage.py scan --strategies fork_score,scalping,dca_detector,swing,channel \\
        --symbols BTC/USDT,ETH/USDT --timeframe 1h [--at 2025-06-01T12:00] [--json out.json] \\
        [--all] [--no-save]

Scans as of the close of the newest stored candle, or as of ``--at`` (UTC; only candles closed
by then are read), prints one row per signal (symbol, strategy, side, score, entry, SL, TP,
RRR, reason) and saves a ``MarketScan`` (a system scan unless ``--owner``). ``--json`` writes
``{"at", "signals": [...]}`` (see :func:`strategies.services.scans.scan_json`); ``--all``
lists every evaluated (symbol, strategy), passing or not, with ``passed``. Bad arguments
(unknown strategy, symbol or timeframe, no candles before ``--at``) exit non-zero with a
one-line reason and save nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from strategies.services.scans import ScanError, parse_at, scan_detect, scan_json, scan_plan, scan_save


class Command(BaseCommand):
    help = "Scan markets with strategy detectors on closed candles; prints and saves the signals."

    def add_arguments(self, parser):
        parser.add_argument("--strategies", required=True, help="comma-separated detector names, e.g. fork_score,swing")
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe (default 1h)")
        parser.add_argument(
            "--at", help="scan as of this UTC time (ISO, e.g. 2025-06-01T12:00); default: newest candle"
        )
        parser.add_argument("--json", type=Path, dest="json_path", help="write the signals as JSON to this file")
        parser.add_argument("--all", action="store_true", dest="all_", help="list non-passing candidates too")
        parser.add_argument("--no-save", action="store_true", help="do not store the scan")
        parser.add_argument("--params", type=Path, help='JSON file {"strategy": {"param": value}}')
        parser.add_argument("--exchange", default="binance", help="exchange id of the stored markets (default binance)")
        parser.add_argument("--owner", help="username owning the saved scan (default: a system scan)")

    def handle(self, *args, **opts):
        params = {}
        if opts["params"]:
            try:
                params = json.loads(opts["params"].read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CommandError(f"cannot read --params {opts['params']}: {exc}") from None
            if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
                raise CommandError(f"--params {opts['params']} must hold a JSON object of objects")
        owner = None
        if opts["owner"]:
            try:
                owner = get_user_model().objects.get(username=opts["owner"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user {opts['owner']!r}") from None
        try:
            plan = scan_plan(
                symbols=opts["symbols"].split(","),
                timeframe=opts["timeframe"],
                strategies=opts["strategies"].split(","),
                at=parse_at(opts["at"]) if opts["at"] else None,
                params=params,
                exchange=opts["exchange"],
            )
            signals = scan_detect(plan, all_=opts["all_"])
        except ScanError as exc:
            raise CommandError(str(exc)) from None
        scan = None if opts["no_save"] else scan_save(plan, signals, owner=owner)
        doc = scan_json(plan.at_ms, signals, all_=opts["all_"])
        if opts["json_path"]:
            opts["json_path"].write_text(json.dumps(doc, indent=2) + "\n")
        self._table(plan, scan, doc, opts["all_"])
        if opts["json_path"]:
            self.stdout.write(f"signals written to {opts['json_path']}")

    def _table(self, plan, scan, doc, all_):
        label = f"scan #{scan.pk}" if scan else "scan (not saved)"
        kinds = "candidates" if all_ else "signals"
        self.stdout.write(
            f"{label} as of {doc['at']}: {len(doc['signals'])} {kinds} from {len(plan.markets)} symbol(s) × "
            f"{len(plan.detectors)} strateg{'y' if len(plan.detectors) == 1 else 'ies'} on {plan.timeframe}"
        )
        if not doc["signals"]:
            return
        head = ["symbol", "strategy", "side", "score", "entry", "SL", "TP", "RRR"] + (["passed"] if all_ else [])
        rows = [
            [
                s["symbol"],
                s["strategy"],
                s["side"],
                f"{s['score']:.2f}",
                _num(s["entry"]),
                _num(s["stop_loss"]),
                _num(s["take_profit"]),
                "n/a" if s["rrr"] is None else f"{s['rrr']:.2f}",
            ]
            + (["yes" if s["passed"] else "no"] if all_ else [])
            + [s["reason"]]
            for s in doc["signals"]
        ]
        head.append("reason")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
        for r in [head, *rows]:
            self.stdout.write("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def _num(v):
    return "n/a" if v is None else f"{v:.8g}"
