"""Benchmark: latency of one bot step (claim, feed from stored candles, Engine.run, writes,
commit) for a Smart DCA paper bot on Postgres, each step processing ONE new candle.

A scratch database ``market7_bench_bots`` is created on the server of ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/``), migrated, loaded with the bundled BTC/USDT and
ETH/USDT 1h candles, and dropped at the end. A replay bot (2 markets, guards on) starts
2025-04-01 and is stepped :data:`STEPS` times, one market hour apart (as a live 1h bot would
be); the figures are wall-clock latencies of ``trading.services.runner.bot_step`` in the
worker process, p50/p95/p99/max, plus the rows a step wrote on average.

Target: p95 <= 50 ms.

    .venv/bin/python benchmarks/bot_step.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
SCRATCH = "market7_bench_bots"
STEPS = 300
WARMUP_STEPS = 10


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


def worker() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta
    from unittest import mock

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.roles import Role, user_set_role
    from trading.models import BotEvent, Order
    from trading.services import bots as svc
    from trading.services.candles import candles_import
    from trading.services.runner import bot_step

    call_command("migrate", verbosity=0)
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=Path(settings.MARKET7_BUNDLED_DATA) / name, exchange="binance")
    user = get_user_model().objects.create_user("bench", password="x")
    user_set_role(user=user, role=Role.TRADER)
    user = get_user_model().objects.get(pk=user.pk)
    params = {
        "max_active_deals": 2,
        "take_profit": 1.0,
        "spend_guard_enabled": True,
        "zombie_tag_enabled": True,
        "step_repeat_guard_enabled": True,
    }
    bot = svc.bot_create(
        user=user, name="bench", strategy="smart_dca", markets=["BTC/USDT", "ETH/USDT"], capital="1000", params=params,
        feed="replay", replay_start=datetime(2025, 4, 1, tzinfo=UTC), replay_speed=3600,
    )  # fmt: skip
    with mock.patch("trading.services.runner.bots_kick"):
        bot = svc.bot_start(user=user, bot=bot)
    bot.refresh_from_db()
    wall0 = bot.replay_clock_wall
    latencies, candles, orders, fills = [], 0, 0, 0
    with mock.patch("market7.events.send_now"):  # no Redis pushes in the timing (they run after commit)
        for k in range(1, STEPS + WARMUP_STEPS + 1):
            started = time.perf_counter()
            report = bot_step(bot_id=bot.pk, now=wall0 + timedelta(seconds=k + 0.5))
            elapsed = (time.perf_counter() - started) * 1000
            assert report.outcome == "stepped" and report.candles == 1, report
            if k > WARMUP_STEPS:
                latencies.append(elapsed)
                candles += report.candles
                orders += report.orders
                fills += report.fills
    label = f"{connection.vendor} ({connection.settings_dict['NAME']})"
    print(
        f"  bot_step on {label}: Smart DCA, 2 markets, feed window ~{500 + WARMUP_STEPS}..{500 + STEPS + WARMUP_STEPS} candles/market"
    )
    print(
        f"  {len(latencies)} steps x 1 candle: p50 {statistics.median(latencies):.1f} ms, p95 {_pct(latencies, 95):.1f} ms, "
        f"p99 {_pct(latencies, 99):.1f} ms, max {max(latencies):.1f} ms, mean {statistics.fmean(latencies):.1f} ms"
    )
    print(
        f"  per step on average: {orders / len(latencies):.2f} orders touched, {fills / len(latencies):.2f} fills; "
        f"totals: {Order.objects.filter(bot=bot).count()} orders, {BotEvent.objects.filter(bot=bot).count()} log entries"
    )
    print(f"  target p95 <= 50 ms: {'met' if _pct(latencies, 95) <= 50 else 'NOT met'}")


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))


def main() -> int:
    base = os.environ.get("DATABASE_URL") or DEFAULT_PG
    if not base.startswith("postgres"):
        print(f"bot_step: DATABASE_URL is not Postgres ({base.split(':')[0]}); using {DEFAULT_PG}")
        base = DEFAULT_PG
    import psycopg

    admin = _admin_url(base)
    try:
        with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    except psycopg.OperationalError as exc:
        print(f"bot_step: Postgres unreachable at {admin} ({str(exc).strip().splitlines()[0]}); skipped")
        return 0
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{SCRATCH}", "", ""))
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    try:
        return subprocess.run([sys.executable, __file__, "--worker"], env=env, cwd=ROOT).returncode
    finally:
        with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        sys.exit(main())
