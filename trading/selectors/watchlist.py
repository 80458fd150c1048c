"""Watchlist reads, always behind the ownership gate (``WatchlistEntry.objects.for_user``)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import OuterRef, QuerySet, Subquery

from trading.models import WatchlistEntry


def watchlist_entries(user) -> QuerySet[WatchlistEntry]:
    """The user's entries with their markets and exchanges, by exchange then symbol."""
    return (
        WatchlistEntry.objects.for_user(user)
        .select_related("market__exchange")
        .order_by("market__exchange__code", "market__symbol")
    )


def watchlist_enabled_symbols(user) -> dict[str, list[str]]:
    """``{exchange code: [symbol, ...]}`` of the user's enabled, active markets, symbols sorted."""
    out: dict[str, list[str]] = defaultdict(list)
    rows = watchlist_entries(user).filter(enabled=True, market__active=True)
    for code, symbol in rows.values_list("market__exchange__code", "market__symbol"):
        out[code].append(symbol)
    return dict(out)


def watchlist_states(user, market_ids) -> dict[int, WatchlistEntry]:
    """``{market id: entry}`` of the user's entries among ``market_ids`` (one query; for a page)."""
    return {e.market_id: e for e in WatchlistEntry.objects.for_user(user).filter(market_id__in=list(market_ids))}


def watchlist_annotate(queryset: QuerySet, user) -> QuerySet:
    """Markets ``queryset`` annotated with the user's entry, in the same query: ``watched``
    (True / False / None when not on the watchlist), ``watch_entry_id`` and
    ``watch_multiplier`` (unitless)."""
    mine = WatchlistEntry.objects.for_user(user).filter(market=OuterRef("pk"))
    return queryset.annotate(
        watched=Subquery(mine.values("enabled")[:1]),
        watch_entry_id=Subquery(mine.values("pk")[:1]),
        watch_multiplier=Subquery(mine.values("risk_multiplier")[:1]),
    )


def watchlist_risk_multipliers(*, owner_id: int, markets) -> dict[str, float]:
    """``{symbol: multiplier}`` of owner ``owner_id``'s watchlist entries among ``markets``
    (Market rows or ids) whose ``risk_multiplier`` is not 1, enabled or not (the multiplier is
    the market's, the switch only decides what the scheduled scan covers). Unitless floats
    (``0.5`` halves a position). For the bot runner and backtests acting for that owner (not a
    request: the owner is the bot's or the run's). One query."""
    ids = [m if isinstance(m, int) else m.pk for m in markets]
    rows = WatchlistEntry.objects.filter(owner_id=owner_id, market_id__in=ids).exclude(risk_multiplier=1)
    return {symbol: float(mult) for symbol, mult in rows.values_list("market__symbol", "risk_multiplier")}
