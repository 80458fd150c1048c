"""Scheduled scans: every user's enabled watchlist markets, scanned on closed candles.

:func:`scan_watchlists` is what the beat task ``strategies.tasks.scan_watchlists`` runs (every
``MARKET7_SCAN_EVERY_S`` seconds). Per user and exchange with enabled, active watchlist entries
(``trading.selectors.watchlist``) it stores one :class:`~strategies.models.MarketScan`
(``owner`` = the user) of the ``MARKET7_SCAN_STRATEGIES`` detectors on ``MARKET7_SCAN_TIMEFRAME``
candles, as of ``at`` (default now: only candles closed by then, see
:mod:`strategies.services.scans`). A market that cannot be scanned (no closed candles in the
look-back window, a detector error) is left out of that scan and recorded on its watchlist
entry (``last_error``, one line) and in the report; the other markets are still scanned.
Scanned entries get ``last_scanned_at`` = the scan's ``at`` and an empty ``last_error``. In
the transaction that stores a scan, its passing signals start deals of the user's bots that
ask for them (:mod:`strategies.services.signal_starts`).
Then scans created more than ``MARKET7_SCAN_RETENTION_DAYS`` days ago are deleted (every
owner's and system scans alike), with their signals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from strategies.models import MarketScan
from strategies.services.scans import ScanError, ScanPlan, scan_detect, scan_plan, scan_save
from strategies.services.signal_starts import scan_signals_dispatch
from trading.models import WatchlistEntry
from trading.selectors.watchlist import watchlist_enabled_symbols

logger = logging.getLogger(__name__)


@dataclass
class ScheduledScanReport:
    """``scans``: ids of the stored scans; ``signals``: signals stored in them; ``starts``:
    ``start_deal`` commands queued on bots (:mod:`strategies.services.signal_starts`);
    ``failed``: ``{"user/exchange/symbol": reason}``; ``deleted``: scans removed by the retention."""

    scans: list[int] = field(default_factory=list)
    signals: int = 0
    starts: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    deleted: int = 0

    def as_dict(self) -> dict:
        return {
            "scans": self.scans,
            "signals": self.signals,
            "starts": self.starts,
            "failed": self.failed,
            "deleted": self.deleted,
        }


def scan_watchlists(*, at: datetime | None = None, now: datetime | None = None) -> ScheduledScanReport:
    """Scan every user's enabled watchlist, then apply the retention (``now``: default the
    current time, the reference of both ``at`` and the retention)."""
    now = now or timezone.now()
    at = at or now
    report = ScheduledScanReport()
    strategies = list(settings.MARKET7_SCAN_STRATEGIES)
    timeframe = settings.MARKET7_SCAN_TIMEFRAME
    owners = WatchlistEntry.objects.filter(enabled=True).values_list("owner", flat=True).distinct()
    for user in get_user_model().objects.filter(pk__in=owners, is_active=True).order_by("pk"):
        for exchange, symbols in watchlist_enabled_symbols(user).items():
            _scan_one(user, exchange, symbols, strategies=strategies, timeframe=timeframe, at=at, report=report)
    report.deleted = scans_delete_old(now=now)
    return report


def _scan_one(user, exchange, symbols, *, strategies, timeframe, at, report) -> None:
    failed: dict[str, str] = {}
    try:
        plan = scan_plan(symbols=symbols, timeframe=timeframe, strategies=strategies, at=at, exchange=exchange)
    except ScanError:
        plan = _plan_skipping(symbols, failed, timeframe=timeframe, strategies=strategies, at=at, exchange=exchange)
    signals = []
    if plan is not None:
        inputs = []
        for data in plan.inputs:
            try:
                found = scan_detect(replace(plan, inputs=(data,)))
            except Exception as exc:  # noqa: BLE001 - one market's failure must not stop the others
                logger.exception("scheduled scan of %s for user %s failed", data.symbol, user.pk)
                failed[data.symbol] = _line(f"{type(exc).__name__}: {exc}")
                continue
            inputs.append(data)
            signals.extend(found)
        if inputs:
            markets = {d.symbol: plan.markets[d.symbol] for d in inputs}
            with transaction.atomic():  # the scan, its signal starts and the watchlist marks: all or nothing
                scan = scan_save(replace(plan, inputs=tuple(inputs), markets=markets), signals, owner=user)
                report.starts += len(scan_signals_dispatch(scan=scan))
                WatchlistEntry.objects.for_user(user).filter(market__in=markets.values()).update(
                    last_scanned_at=scan.at, last_error=""
                )
            report.scans.append(scan.pk)
            report.signals += len(signals)
    for symbol, reason in failed.items():
        report.failed[f"{user.get_username()}/{exchange}/{symbol}"] = reason
        WatchlistEntry.objects.for_user(user).filter(market__exchange__code=exchange, market__symbol=symbol).update(
            last_error=reason
        )


def _plan_skipping(symbols, failed, **kw) -> ScanPlan | None:
    """The plan of the symbols that can be planned on their own; the others go to ``failed``."""
    good = []
    for symbol in symbols:
        try:
            scan_plan(symbols=[symbol], **kw)
        except ScanError as exc:
            failed[symbol] = _line(str(exc))
        else:
            good.append(symbol)
    if not good:
        return None
    try:
        return scan_plan(symbols=good, **kw)
    except ScanError as exc:  # the strategies themselves are wrong: every market fails the same
        failed.update({s: _line(str(exc)) for s in good})
        return None


def _line(text: str) -> str:
    return " ".join(text.split())[:255]


def scans_delete_old(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete the scans created more than ``days`` (default ``MARKET7_SCAN_RETENTION_DAYS``) days
    before ``now``; returns how many scans were deleted (their signals go with them)."""
    days = settings.MARKET7_SCAN_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, per_model = MarketScan.objects.filter(created_at__lt=cutoff).delete()
    return per_model.get(MarketScan._meta.label, 0)
