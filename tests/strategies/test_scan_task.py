"""The scheduled scan (``strategies.tasks.scan_watchlists``, run synchronously) on real bundled
1h candles: one stored scan per user with exactly the signals of their enabled watchlist
markets, a market without candles recorded and skipped, the retention, and the beat entry.

Expected signals at 2025-08-30 03:00 UTC (the candle opened 02:00) with the five default
detectors, as ``scan_run`` finds them market by market: BTC/USDT fork_score, scalping, channel;
ETH/USDT none; LTC/USDT scalping, channel; LINK/USDT scalping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strategies.models import MarketScan, ScanSignal
from strategies.services.scans import scan_run
from strategies.services.scheduled_scans import scans_delete_old
from strategies.tasks import scan_watchlists
from trading.models import Exchange, Market, WatchlistEntry
from trading.services.candles import candles_import
from trading.services.watchlist import watchlist_disable, watchlist_enable

AT = datetime(2025, 8, 30, 3, tzinfo=UTC)
FIVE = ["fork_score", "scalping", "dca_detector", "swing", "channel"]


@pytest.fixture
def markets(db, bundled_data_dir):
    for name in ("BTC", "ETH", "LTC", "LINK"):
        candles_import(path=bundled_data_dir / f"{name}USDT-1h.csv.gz", exchange="binance", market_type="spot")
    ex = Exchange.objects.get(code="binance")
    Market.objects.create(exchange=ex, symbol="NEW/USDT", base="NEW", quote="USDT")  # no candles
    return {m.symbol: m for m in Market.objects.all()}


def _signals(scan):
    return sorted((s.market.symbol, s.strategy) for s in scan.signals.select_related("market"))


def test_each_user_gets_one_scan_of_their_enabled_markets(markets, user, other_user):
    for symbol in ("BTC/USDT", "ETH/USDT", "LTC/USDT", "NEW/USDT"):
        watchlist_enable(user=user, market=markets[symbol])
    watchlist_enable(user=other_user, market=markets["LINK/USDT"])
    watchlist_disable(user=other_user, market=markets["BTC/USDT"])

    report = scan_watchlists("2025-08-30T03:00")

    assert report["signals"] == 6 and report["deleted"] == 0
    assert report["failed"] == {
        "alice/binance/NEW/USDT": "no 1h candles of NEW/USDT closed by 2025-08-30 03:00 UTC (looked back 500 candles)"
    }
    alice, bob = (MarketScan.objects.get(owner=u) for u in (user, other_user))
    assert sorted(report["scans"]) == sorted([alice.pk, bob.pk])
    assert (alice.at, alice.timeframe, alice.strategies, alice.symbols_count, alice.signals_count) == (
        AT,
        "1h",
        FIVE,
        3,
        5,
    )
    assert _signals(alice) == [
        ("BTC/USDT", "channel"),
        ("BTC/USDT", "fork_score"),
        ("BTC/USDT", "scalping"),
        ("LTC/USDT", "channel"),
        ("LTC/USDT", "scalping"),
    ]
    assert (bob.symbols_count, bob.signals_count, _signals(bob)) == (1, 1, [("LINK/USDT", "scalping")])
    # the same signals as scan_run finds, independently, market by market
    for symbol, count in (("BTC/USDT", 3), ("ETH/USDT", 0), ("LTC/USDT", 2), ("LINK/USDT", 1)):
        assert len(scan_run(symbols=[symbol], timeframe="1h", strategies=FIVE, at=AT, save=False)[1]) == count
    assert MarketScan.objects.count() == 2 and ScanSignal.objects.count() == 6

    entries = {e.market.symbol: e for e in WatchlistEntry.objects.for_user(user)}
    assert {s: (e.last_scanned_at, e.last_error[:22]) for s, e in entries.items()} == {
        "BTC/USDT": (AT, ""),
        "ETH/USDT": (AT, ""),
        "LTC/USDT": (AT, ""),
        "NEW/USDT": (None, "no 1h candles of NEW/U"),
    }
    assert WatchlistEntry.objects.for_user(other_user).get(market__symbol="BTC/USDT").last_scanned_at is None


def test_configured_strategies_and_nobody_watching(markets, user, settings):
    settings.MARKET7_SCAN_STRATEGIES = ["channel"]
    assert scan_watchlists("2025-08-30T03:00") == {"scans": [], "signals": 0, "starts": 0, "failed": {}, "deleted": 0}
    watchlist_enable(user=user, market=markets["BTC/USDT"])
    report = scan_watchlists("2025-08-30T03:00")
    scan = MarketScan.objects.get()
    assert (report["signals"], scan.strategies, _signals(scan)) == (1, ["channel"], [("BTC/USDT", "channel")])


def test_only_failing_markets_store_no_scan(markets, user):
    watchlist_enable(user=user, market=markets["NEW/USDT"])
    report = scan_watchlists("2025-08-30T03:00")
    assert report["scans"] == [] and list(report["failed"]) == ["alice/binance/NEW/USDT"]
    assert MarketScan.objects.count() == 0


def test_retention_deletes_exactly_the_old_scans(markets, user, settings):
    settings.MARKET7_SCAN_RETENTION_DAYS = 7
    now = datetime(2025, 9, 10, 12, tzinfo=UTC)
    ages = {
        "old": timedelta(days=7, seconds=1),
        "older": timedelta(days=30),
        "edge": timedelta(days=7),
        "new": timedelta(0),
    }
    ids = {}
    for name, age in ages.items():
        scan, _ = scan_run(symbols=["BTC/USDT"], timeframe="1h", strategies=["channel"], at=AT, owner=user)
        MarketScan.objects.filter(pk=scan.pk).update(created_at=now - age)
        ids[name] = scan.pk
    assert ScanSignal.objects.count() == 4
    assert scans_delete_old(now=now) == 2
    assert sorted(MarketScan.objects.values_list("pk", flat=True)) == sorted([ids["edge"], ids["new"]])
    assert ScanSignal.objects.count() == 2
    assert scans_delete_old(now=now, days=0) == 1  # created exactly at now stays (strictly older only)


def test_beat_entry_with_interval_queue_and_expiry(db, settings):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from market7.celery import app, scan_beat_entry

    assert app.conf.beat_schedule["scan-watchlists"] == {
        "task": "strategies.tasks.scan_watchlists",
        "schedule": 300.0,
        "options": {"queue": "research", "expires": 270, "expire_seconds": 270},
    }
    settings.MARKET7_SCAN_EVERY_S = 600
    entry = scan_beat_entry()
    assert (entry["schedule"], entry["options"]["expires"]) == (600.0, 540)
    # beat's database scheduler stores each entry of the schedule this way at start (update_from_dict)
    model_entry = ModelEntry.from_entry("scan-watchlists", app=app, **entry)
    assert (model_entry.options["queue"], model_entry.options["expires"]) == ("research", 540)
    task = PeriodicTask.objects.get(name="scan-watchlists")
    assert (task.task, task.interval.every, task.interval.period) == (
        "strategies.tasks.scan_watchlists",
        600,
        "seconds",
    )
    assert (task.queue, task.expire_seconds, task.enabled) == ("research", 540, True)


def test_bots_due_beat_entry_really_expires(db):
    """django-celery-beat's database scheduler stores ``expire_seconds`` and ignores
    ``expires``: without it the bots-due kicks never expired after downtime."""
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from market7.celery import app

    ModelEntry.from_entry("bots-due", app=app, **app.conf.beat_schedule["bots-due"])
    task = PeriodicTask.objects.get(name="bots-due")
    assert (task.queue, task.expire_seconds, task.interval.every) == ("trading", 55, 60)
