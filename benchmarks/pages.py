"""Benchmark: server time and query count of the four main pages — the dashboard (``/``), the
bots list (``/bots/``), a bot's detail (``/bots/<pk>/``) and the trades page (``/trades/``) —
plus the live-refresh fragments (``/live/?view=...``) and the JSON the pages fetch, with the
demo data on Postgres.

A scratch database ``market7_bench_pages`` is created on the server of ``DATABASE_URL``
(default ``postgres://postgres@127.0.0.1:5432/``), set up as ``make setup`` does (``migrate``,
``import_candles --bundled``, ``demo_setup``), and the two demo replay bots are stepped
through :data:`REPLAY_DAYS` days of market time, one step per market hour as the runner does
for a 1h replay bot, so the pages show realistic rows (deals, orders, fills, decisions, one
equity snapshot per candle). Then the demo user is logged in with Django's test ``Client`` and
each URL is requested :data:`WARMUP` times, then :data:`REQUESTS` times timed; printed per URL:
median and p95 server time (ms, wall clock of the full request through the middleware, in
this process) and the number of SQL queries one request makes
(counted with ``connection.execute_wrapper`` on a separate, untimed request).

Target (issue 10): each of the four pages <= 50 ms; the query counts are the budgets
asserted in ``tests/trading/test_page_query_budgets.py``.

    .venv/bin/python benchmarks/pages.py            # fresh scratch database, dropped at the end
    .venv/bin/python benchmarks/pages.py --keep     # keep it; the next --keep run reuses it
    .venv/bin/python benchmarks/pages.py --profile  # also a cProfile of each page (top 25)
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
SCRATCH = "market7_bench_pages"
REPLAY_DAYS = 120
WARMUP = 3
REQUESTS = 30
TARGET_MS = 50.0


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


def _setup() -> None:
    """migrate + bundled candles + demo bots, then step the demo bots through REPLAY_DAYS."""
    from datetime import timedelta
    from unittest import mock

    from django.core.management import call_command

    from trading.models import Bot
    from trading.services.runner import bot_step

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("import_candles", bundled=True, verbosity=0)
    with mock.patch("trading.services.runner.bots_kick"), mock.patch("trading.services.runner.bot_step_enqueue"):
        call_command("demo_setup", verbosity=0)
    bots = list(Bot.objects.filter(owner__username="demo").order_by("pk"))
    with mock.patch("market7.events.send_now"):  # no Redis pushes: only the rows matter here
        for bot in bots:
            bot.refresh_from_db()
            wall0 = bot.replay_clock_wall
            # one step per market hour: replay speed 3600 = one market hour per wall second
            for hour in range(1, REPLAY_DAYS * 24 + 1):
                bot_step(bot_id=bot.pk, now=wall0 + timedelta(seconds=hour + 0.5))
    print(
        f"  setup: migrate, bundled candles, demo bots stepped {REPLAY_DAYS} days in {time.perf_counter() - started:.0f} s"
    )


def _rows_summary() -> str:
    from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Order, Trade

    demo = {"bot__owner__username": "demo"}
    return (
        f"{Bot.objects.filter(owner__username='demo').count()} bots, "
        f"{Trade.objects.filter(**demo, status='open').count()} open + "
        f"{Trade.objects.filter(**demo, status='closed').count()} closed deals, "
        f"{Order.objects.filter(**demo).count()} orders, {Fill.objects.filter(order__bot__owner__username='demo').count()} fills, "
        f"{BotEvent.objects.filter(**demo).count()} log entries, {EquitySnapshot.objects.filter(**demo).count()} equity snapshots"
    )


def worker(*, keep: bool, profile: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from trading.models import Bot

    setup_test_environment()  # the test Client's template-rendered signals, ALLOWED_HOSTS=testserver
    if not (keep and _migrated() and Bot.objects.filter(owner__username="demo").exists()):
        _setup()
    print(f"  data: {_rows_summary()}")
    user = get_user_model().objects.get(username="demo")
    bot = Bot.objects.filter(owner=user).order_by("pk").first()
    client = Client()
    client.force_login(user)
    htmx = {"HTTP_HX_REQUEST": "true"}
    pages = [
        ("dashboard  /", "/", {}),
        ("bots list  /bots/", "/bots/", {}),
        (f"bot detail /bots/{bot.pk}/", f"/bots/{bot.pk}/", {}),
        ("trades     /trades/", "/trades/", {}),
    ]
    extra = [
        ("live dashboard", "/live/?view=dashboard", htmx),
        ("live bots", "/live/?view=bots", htmx),
        ("live bot", f"/live/?view=bot&bot={bot.pk}", htmx),
        ("live trades", "/live/?view=trades", htmx),
        ("bot row", f"/bots/{bot.pk}/_row/", htmx),
        ("trades table", "/trades/?page=2", {**htmx, "HTTP_HX_TARGET": "trades-table"}),
        ("equity.json", "/dashboard/equity.json", {}),
        ("bot chart.json", f"/bots/{bot.pk}/chart.json", {}),
    ]
    label = f"{connection.vendor} ({connection.settings_dict['NAME']})"
    print(f"  {label}, {REQUESTS} requests per URL after {WARMUP} warm-up, server time in ms")
    print(f"  {'page':<34}{'median':>8}{'p95':>8}{'queries':>9}{'KB':>7}")
    worst = 0.0
    for group in (pages, extra):
        for name, url, headers in group:
            for _ in range(WARMUP):
                response = client.get(url, **headers)
                assert response.status_code == 200, (url, response.status_code)
            counter = _QueryCounter()
            with connection.execute_wrapper(counter):
                response = client.get(url, **headers)
            times = []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                client.get(url, **headers)
                times.append((time.perf_counter() - t0) * 1000)
            med, p95 = statistics.median(times), _pct(times, 95)
            if group is pages:
                worst = max(worst, p95)
            print(f"  {name:<34}{med:>8.1f}{p95:>8.1f}{counter.n:>9}{len(response.content) / 1024:>7.0f}")
        if group is pages:
            print("  -- fragments and JSON the pages fetch --")
    print(
        f"  target <= {TARGET_MS:.0f} ms per page (p95 of the four pages: {worst:.1f} ms): {'met' if worst <= TARGET_MS else 'NOT met'}"
    )
    if profile:
        import cProfile
        import pstats

        for name, url, headers in pages:
            print(f"\n== cProfile {name} (x10)")
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(10):
                client.get(url, **headers)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)


class _QueryCounter:
    """``connection.execute_wrapper`` that counts the SQL statements run through it."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def _migrated() -> bool:
    from django.db import connection

    return "trading_bot" in connection.introspection.table_names()


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))


def main() -> int:
    keep = "--keep" in sys.argv
    base = os.environ.get("DATABASE_URL") or DEFAULT_PG
    if not base.startswith("postgres"):
        print(f"pages: DATABASE_URL is not Postgres ({base.split(':')[0]}); using {DEFAULT_PG}")
        base = DEFAULT_PG
    import psycopg

    admin = _admin_url(base).replace("postgres://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [SCRATCH]).fetchone()
            if not (keep and exists):
                conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    except psycopg.OperationalError as exc:
        print(f"pages: Postgres unreachable at {admin} ({str(exc).strip().splitlines()[0]}); skipped")
        return 0
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{SCRATCH}", "", ""))
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "MARKET7_DEMO_PASSWORD": "bench-pages"}
    args = [sys.executable, __file__, "--worker"] + [a for a in ("--keep", "--profile") if a in sys.argv]
    try:
        return subprocess.run(args, env=env, cwd=ROOT).returncode
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(keep="--keep" in sys.argv, profile="--profile" in sys.argv)
    else:
        sys.exit(main())
