"""Watchlist services: a user enables, disables and weights the markets their scheduled scans
cover (:class:`trading.models.WatchlistEntry`).

Every function takes keyword-only arguments and the acting ``user``; an entry is only ever read
or written through ``WatchlistEntry.objects.for_user(user)`` (another user's entry is
``WatchlistEntry.DoesNotExist``: a 404 in views). Markets are shared, so enabling one creates the
user's own entry for it. Errors: :class:`WatchlistError` (one line, for users), nothing written.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from trading.models import Market, WatchlistEntry
from trading.models.watchlist import MULTIPLIER_MAX, MULTIPLIER_MIN
from trading.selectors.markets import markets_with_stats


class WatchlistError(ValueError):
    """Bad watchlist input; the message is one line, for users."""


def _require_user(user) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise WatchlistError("only a signed-in user has a watchlist")


@transaction.atomic
def watchlist_set_enabled(*, user, market: Market, enabled: bool) -> WatchlistEntry:
    """The user's entry for ``market`` with ``enabled`` set (created when missing, multiplier 1)."""
    _require_user(user)
    entry, created = WatchlistEntry.objects.for_user(user).get_or_create(
        market=market, defaults={"owner": user, "enabled": enabled}
    )
    if not created and entry.enabled != enabled:
        entry.enabled = enabled
        entry.save(update_fields=["enabled"])
    return entry


def watchlist_enable(*, user, market: Market) -> WatchlistEntry:
    return watchlist_set_enabled(user=user, market=market, enabled=True)


def watchlist_disable(*, user, market: Market) -> WatchlistEntry:
    return watchlist_set_enabled(user=user, market=market, enabled=False)


def watchlist_toggle(*, user, market: Market) -> WatchlistEntry:
    """Enable a market not on the user's watchlist or disabled there; disable an enabled one."""
    entry = WatchlistEntry.objects.for_user(user).filter(market=market).first()
    return watchlist_set_enabled(user=user, market=market, enabled=not (entry and entry.enabled))


def parse_multiplier(value) -> Decimal:
    """``"1.5"`` -> ``Decimal("1.5")``; outside 0–10, more than 2 decimals or not a number:
    :class:`WatchlistError`."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise WatchlistError(f"risk multiplier {value!r} is not a number") from None
    if not number.is_finite() or not MULTIPLIER_MIN <= number <= MULTIPLIER_MAX:
        raise WatchlistError(f"risk multiplier must be between {MULTIPLIER_MIN} and {MULTIPLIER_MAX}")
    if number != number.quantize(Decimal("0.01")):
        raise WatchlistError("risk multiplier takes at most 2 decimals")
    return number


@transaction.atomic
def watchlist_set_multiplier(*, user, entry_id: int, multiplier) -> WatchlistEntry:
    """Set the risk multiplier (unitless, 0–10) of the user's entry ``entry_id``."""
    value = parse_multiplier(multiplier)
    entry = WatchlistEntry.objects.for_user(user).select_for_update().get(pk=entry_id)
    entry.risk_multiplier = value
    entry.save(update_fields=["risk_multiplier"])
    return entry


@transaction.atomic
def watchlist_enable_liquid(
    *, user, min_quote_volume: float, quote: str = "", exchange: str = "", type: str = ""
) -> list[WatchlistEntry]:
    """Enable every active market whose 24 h quote volume (quote currency, from the stored
    candles: ``trading.selectors.markets``) is ≥ ``min_quote_volume``, optionally of one quote
    asset, exchange code and type — the markets ``discover_markets`` stored. Existing entries
    are enabled (multiplier kept), missing ones created; markets below the threshold or without
    candles are left as they are. Returns the enabled entries, by symbol."""
    _require_user(user)
    try:
        threshold = float(min_quote_volume)
    except (TypeError, ValueError):
        raise WatchlistError(f"minimum quote volume {min_quote_volume!r} is not a number") from None
    if not threshold >= 0:
        raise WatchlistError("minimum quote volume must be >= 0")
    qs = Market.objects.filter(active=True)
    if quote:
        qs = qs.filter(quote=quote)
    if exchange:
        qs = qs.filter(exchange__code=exchange)
    if type:
        qs = qs.filter(type=type)
    ids = list(markets_with_stats(qs).filter(quote_volume_24h__gte=threshold).values_list("pk", flat=True))
    mine = WatchlistEntry.objects.for_user(user)
    mine.filter(market_id__in=ids, enabled=False).update(enabled=True)
    have = set(mine.filter(market_id__in=ids).values_list("market_id", flat=True))
    WatchlistEntry.objects.bulk_create([WatchlistEntry(owner=user, market_id=i) for i in ids if i not in have])
    return list(mine.filter(market_id__in=ids).select_related("market").order_by("market__symbol"))
