"""``manage.py bots``: list, create and operate bots from the shell (operator tool).

Examples::

    manage.py bots list
    manage.py bots list --json
    manage.py bots create --owner demo --name "BTC DCA" --strategy smart_dca \\
        --markets BTC/USDT,ETH/USDT --timeframe 1h --mode paper --capital 1000 \\
        [--params params.json] [--feed replay --replay-start 2025-04-01 --replay-speed 3600]
    manage.py bots start 3          # also: pause, resume, stop, restart
    manage.py bots close-all 3 [--stop]
    manage.py bots step 3           # run one step now, in this process
    manage.py bots emergency-stop [--close-positions]

Commands act as the operator (``trading.services.bots.SYSTEM``): every bot, audit entries
without a user. Any error exits non-zero with a one-line reason and saves nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from trading.models import Bot
from trading.services import bot_closing
from trading.services import bots as svc
from trading.services.emergency import emergency_stop

LIST_FIELDS = [
    "id", "name", "owner", "status", "strategy", "markets", "timeframe", "mode", "feed", "capital", "equity",
    "realized_pnl", "unrealized_pnl", "open_trades", "closed_trades", "last_candle_at",
]  # fmt: skip


def _dec(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _parse_time(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--replay-start {text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "List, create and operate trading bots (see docs/bots.md)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser("list", help="list bots with status, equity and P&L")
        p.add_argument("--json", action="store_true", help="print a JSON array")
        p.add_argument("--owner", help="only this user's bots")

        p = sub.add_parser("create", help="create a bot (status created)")
        p.add_argument("--owner", required=True, help="username")
        p.add_argument("--name", required=True)
        p.add_argument("--strategy", required=True, help="e.g. smart_dca")
        p.add_argument("--markets", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        p.add_argument("--timeframe", default="1h")
        p.add_argument("--mode", default="paper", choices=["paper", "live"])
        p.add_argument("--capital", required=True, help="quote currency, e.g. 1000")
        p.add_argument("--params", help="JSON file (or inline JSON object) of strategy parameters")
        p.add_argument("--exchange", default="binance")
        p.add_argument("--feed", default="live", choices=["live", "replay"])
        p.add_argument("--replay-start", help="UTC date/time the replay starts at, e.g. 2025-04-01")
        p.add_argument(
            "--replay-speed", type=float, default=3600.0, help="market seconds per wall second (3600: 1 h/s)"
        )
        p.add_argument("--start", action="store_true", help="start it right away")

        for action in ("start", "pause", "resume", "stop", "restart", "step"):
            p = sub.add_parser(action, help=f"{action} a bot")
            p.add_argument("bot_id", type=int)
        p = sub.add_parser("close-all", help="close every open deal of a bot at market on its next step")
        p.add_argument("bot_id", type=int)
        p.add_argument("--stop", action="store_true", help="stop the bot once they are closed")
        p = sub.add_parser("emergency-stop", help="stop every running/paused bot now")
        p.add_argument("--close-positions", action="store_true", help="close open deals first, then stop")

    def handle(self, *args, **opts):
        action = opts["action"]
        try:
            if action == "list":
                return self.do_list(opts)
            if action == "create":
                return self.do_create(opts)
            if action == "close-all":
                n = bot_closing.bot_close_all(user=svc.SYSTEM, bot=self.bot(opts), stop=opts["stop"])
                self.stdout.write(f"bot #{opts['bot_id']}: closing {n} open deal(s) on its next step")
                return
            if action == "emergency-stop":
                report = emergency_stop(user=svc.SYSTEM, close_positions=opts["close_positions"])
                ids = sorted(report.paper_bot_ids + report.live_bot_ids)
                self.stdout.write(f"emergency stop: {len(ids)} bot(s): {', '.join(map(str, ids)) or '-'}")
                for r in report.results:
                    self.stdout.write(
                        f"  bot #{r['bot_id']} {r['action']} {r['client_order_id'] or r['deal_id']} {r['symbol']}: "
                        f"{r['outcome']}" + (f" ({r['reason']})" if r["reason"] else "")
                    )
                return
            if action == "step":
                from trading.services.runner import bot_step

                report = bot_step(bot_id=self.bot(opts).pk)
                self.stdout.write(json.dumps(report.as_dict(), default=str))
                if report.outcome == "error":
                    raise CommandError(report.message)
                return
            bot = svc.BOT_ACTIONS[action](user=svc.SYSTEM, bot=self.bot(opts))
            self.stdout.write(f"bot #{bot.pk} {bot.name}: {bot.status}")
        except svc.BotValidationError as exc:
            raise CommandError("invalid bot: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        except svc.BotError as exc:
            raise CommandError(str(exc)) from None

    def bot(self, opts) -> Bot:
        try:
            return Bot.objects.get(pk=opts["bot_id"])
        except Bot.DoesNotExist:
            raise CommandError(f"no bot with id {opts['bot_id']}") from None

    # -- list -------------------------------------------------------------------------------
    def do_list(self, opts):
        qs = (
            Bot.objects.select_related("owner")
            .prefetch_related("markets")
            .annotate(
                open_trades=Count("trades", filter=Q(trades__status="open"), distinct=True),
                closed_trades=Count("trades", filter=Q(trades__status="closed"), distinct=True),
            )
            .order_by("pk")
        )
        if opts.get("owner"):
            qs = qs.filter(owner__username=opts["owner"])
        rows = [
            {
                "id": b.pk,
                "name": b.name,
                "owner": b.owner.username,
                "status": b.status,
                "strategy": b.strategy,
                "markets": sorted(m.symbol for m in b.markets.all()),
                "timeframe": b.timeframe,
                "mode": b.mode,
                "feed": b.feed,
                "capital": _dec(b.capital),
                "equity": _dec(b.equity if b.equity is not None else b.capital),
                "realized_pnl": _dec(b.realized_pnl),
                "unrealized_pnl": _dec(b.unrealized_pnl),
                "open_trades": b.open_trades,
                "closed_trades": b.closed_trades,
                "last_candle_at": b.last_candle_at.isoformat() if b.last_candle_at else None,
            }
            for b in qs
        ]
        if opts["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("no bots")
            return
        cols = [
            "id",
            "name",
            "owner",
            "status",
            "strategy",
            "markets",
            "equity",
            "realized_pnl",
            "unrealized_pnl",
            "open_trades",
            "closed_trades",
        ]
        heads = [
            "ID",
            "NAME",
            "OWNER",
            "STATUS",
            "STRATEGY",
            "MARKETS",
            "EQUITY",
            "REALIZED",
            "UNREALIZED",
            "OPEN",
            "CLOSED",
        ]
        table = [[",".join(r[c]) if isinstance(r[c], list) else str(r[c]) for c in cols] for r in rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(heads)]
        self.stdout.write("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
        for row in table:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))

    # -- create -----------------------------------------------------------------------------
    def do_create(self, opts):
        User = get_user_model()
        owner = User.objects.filter(username=opts["owner"]).first()
        if owner is None:
            raise CommandError(f"no user {opts['owner']!r}")
        params = {}
        if opts.get("params"):
            raw = opts["params"]
            try:
                text = raw if raw.lstrip().startswith(("{", "[")) else Path(raw).read_text()
                params = json.loads(text)
            except FileNotFoundError:
                raise CommandError(f"--params: no such file {raw}") from None
            except json.JSONDecodeError as exc:
                raise CommandError(f"--params: not valid JSON ({exc})") from None
            if not isinstance(params, dict):
                raise CommandError("--params: must be a JSON object")
        bot = svc.bot_create(
            user=svc.SYSTEM,
            owner=owner,
            name=opts["name"],
            strategy=opts["strategy"],
            markets=[s.strip() for s in opts["markets"].split(",") if s.strip()],
            timeframe=opts["timeframe"],
            mode=opts["mode"],
            capital=opts["capital"],
            params=params,
            exchange=opts["exchange"],
            feed=opts["feed"],
            replay_start=_parse_time(opts["replay_start"]) if opts.get("replay_start") else None,
            replay_speed=opts["replay_speed"],
        )
        if opts["start"]:
            bot = svc.bot_start(user=svc.SYSTEM, bot=bot)
        self.stdout.write(f"created bot #{bot.pk} {bot.name} ({bot.status})")
