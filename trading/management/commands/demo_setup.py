"""``manage.py demo_setup``: the demo user and two running paper bots replaying the bundled data.

``make run`` calls it on every start, so it is idempotent: it creates what is missing and
changes nothing else.

- user ``demo`` with the ``trader`` role. Password: ``MARKET7_DEMO_PASSWORD`` when set (also
  applied to an existing user); otherwise a new user gets a generated one, printed and kept in
  ``var/demo_password`` (mode 0600); an existing user keeps theirs.
- two paper bots on a **replay** of the bundled candles (no network), started at once:
  :data:`DEMO_BOTS` — Smart DCA on BTC/USDT + ETH/USDT with the default guards switched on,
  and a tighter Smart DCA on SOL/USDT + XRP/USDT behind the BTC market filter. The replay
  starts :data:`~trading.services.feeds.WARMUP_CANDLES` candles after the first bundled
  candle (so indicators are warm) at :data:`DEMO_SPEED` (3600 = one market hour per second):
  deals open within seconds and close within a minute of the start.
- missing bundled candle files of the demo markets are imported first.

``--reset`` deletes the demo user's bots and creates them afresh (the replay starts again).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import Role, user_set_role
from trading.models import Bot, Candle, Market
from trading.services import bots as svc
from trading.services.feeds import WARMUP_CANDLES

DEMO_USERNAME = "demo"
DEMO_SPEED = 3600.0
DEMO_CAPITAL = "1000"
_GUARDS_ON = {
    "step_repeat_guard_enabled": True,
    "spend_guard_enabled": True,
    "zombie_tag_enabled": True,
}
DEMO_BOTS = [
    {
        "name": "Demo · Smart DCA BTC+ETH",
        "markets": ["BTC/USDT", "ETH/USDT"],
        "params": {
            "max_active_deals": 2,
            "base_order_size": 50,
            "safety_order_size": 50,
            "max_safety_orders": 5,
            **_GUARDS_ON,
        },
    },
    {
        "name": "Demo · Smart DCA SOL+XRP tight",
        "markets": ["SOL/USDT", "XRP/USDT"],
        "params": {
            "max_active_deals": 2,
            "base_order_size": 40,
            "safety_order_size": 40,
            "max_safety_orders": 4,
            "price_deviation": 0.8,
            "volume_scale": 1.3,
            "take_profit": 0.8,
            "btc_market_filter_enabled": True,
            **_GUARDS_ON,
        },  # fmt: skip
    },
]


class Command(BaseCommand):
    help = "Create the demo user and two running replay paper bots (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="delete the demo bots and create them again")

    def handle(self, *args, **opts):
        self.ensure_candles()
        user = self.ensure_user()
        if opts["reset"]:
            n = 0
            for bot in Bot.objects.filter(owner=user).order_by("pk"):
                if bot.is_active:
                    svc.bot_stop(user=svc.SYSTEM, bot=bot, message="demo reset")
                svc.bot_delete(user=svc.SYSTEM, bot=bot)
                n += 1
            self.stdout.write(f"demo: deleted {n} bot(s)")
        for spec in DEMO_BOTS:
            self.ensure_bot(user, spec)

    # -- data ----------------------------------------------------------------------------
    def ensure_candles(self) -> None:
        """Import the bundled 1h files of the demo markets whose candles are missing."""
        from trading.services.candles import candles_import

        folder = Path(settings.MARKET7_BUNDLED_DATA)
        symbols = sorted({s for spec in DEMO_BOTS for s in spec["markets"]} | {"BTC/USDT"})
        for symbol in symbols:
            if Candle.objects.filter(market__exchange__code="binance", market__symbol=symbol, timeframe="1h").exists():
                continue
            path = folder / f"{symbol.replace('/', '')}-1h.csv.gz"
            if not path.exists():
                raise CommandError(f"demo_setup: bundled data file {path} is missing")
            report = candles_import(path=path, exchange="binance")
            self.stdout.write(f"demo: imported {report.inserted} {symbol} 1h candles")

    def replay_start(self):
        first = (
            Candle.objects.filter(market__exchange__code="binance", market__symbol="BTC/USDT", timeframe="1h")
            .order_by("open_time")
            .values_list("open_time", flat=True)
            .first()
        )
        start = first + timedelta(hours=WARMUP_CANDLES)
        # the next midnight (UTC) after the warm-up
        return (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)

    # -- user ----------------------------------------------------------------------------
    def ensure_user(self):
        User = get_user_model()
        env_password = os.environ.get("MARKET7_DEMO_PASSWORD") or ""
        path = Path(settings.VAR_DIR) / "demo_password"
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            password = env_password or secrets.token_urlsafe(12)
            user = User.objects.create_user(username=DEMO_USERNAME, password=password, email="demo@example.invalid")
            if not env_password:
                path.write_text(password + "\n")
                path.chmod(0o600)
                self.stdout.write(f"demo: created user {DEMO_USERNAME!r} with password {password}  (kept in {path})")
            else:
                self.stdout.write(f"demo: created user {DEMO_USERNAME!r} with the password from MARKET7_DEMO_PASSWORD")
        elif env_password and not user.check_password(env_password):
            user.set_password(env_password)
            user.save(update_fields=["password"])
            self.stdout.write(f"demo: password of {DEMO_USERNAME!r} set from MARKET7_DEMO_PASSWORD")
        else:
            shown = path.read_text().strip() if path.exists() else ""
            if shown and user.check_password(shown):
                self.stdout.write(f"demo: user {DEMO_USERNAME!r} exists (password {shown})")
            else:
                self.stdout.write(f"demo: user {DEMO_USERNAME!r} exists (password unchanged)")
        if user.role != Role.TRADER.value:
            user_set_role(user=user, role=Role.TRADER)
        return user

    # -- bots ----------------------------------------------------------------------------
    def ensure_bot(self, user, spec: dict) -> None:
        bot = Bot.objects.filter(owner=user, name=spec["name"]).first()
        if bot is not None:
            if bot.status == Bot.Status.CREATED:
                svc.bot_start(user=svc.SYSTEM, bot=bot)
                self.stdout.write(f"demo: started bot #{bot.pk} {bot.name}")
            else:
                self.stdout.write(f"demo: bot #{bot.pk} {bot.name} exists ({bot.status})")
            return
        missing = [s for s in spec["markets"] if not Market.objects.filter(exchange__code="binance", symbol=s).exists()]
        if missing:
            raise CommandError(
                f"demo_setup: markets {', '.join(missing)} are missing; run `manage.py import_candles --bundled`"
            )
        with transaction.atomic():
            bot = svc.bot_create(
                user=svc.SYSTEM,
                owner=user,
                name=spec["name"],
                strategy="smart_dca",
                markets=spec["markets"],
                params=spec["params"],
                timeframe="1h",
                mode=Bot.Mode.PAPER,
                capital=DEMO_CAPITAL,
                feed=Bot.FeedKind.REPLAY,
                replay_start=self.replay_start(),
                replay_speed=DEMO_SPEED,
            )
            svc.bot_start(user=svc.SYSTEM, bot=bot)
        self.stdout.write(
            f"demo: created and started bot #{bot.pk} {bot.name} (replay from {bot.replay_start:%Y-%m-%d} at {DEMO_SPEED:g}x)"
        )
