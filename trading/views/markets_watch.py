"""Watchlist actions on the markets page (names in the ``trading`` namespace):
``market-watch`` (toggle one market, HTMX: answers the row's watch cell), ``watchlist-multiplier``
(set an entry's risk multiplier) and ``markets-watch-liquid`` (enable every market above a 24 h
quote volume). Thin: every write goes through ``trading.services.watchlist`` and only touches
the requesting user's entries; another user's entry is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from trading.models import WatchlistEntry
from trading.selectors.markets import market_slug
from trading.services import watchlist as services
from trading.views.markets import _is_fragment_request, _market_or_404


def _cell(request: HttpRequest, entry: WatchlistEntry, status: int = 200, error: str = "") -> HttpResponse:
    market = entry.market
    market.slug = market_slug(market.symbol)
    market.watched, market.watch_entry_id, market.watch_multiplier = entry.enabled, entry.pk, entry.risk_multiplier
    return render(request, "trading/markets/_watch.html", {"m": market, "error": error}, status=status)


@login_required
@require_POST
def market_watch(request: HttpRequest, exchange: str, slug: str) -> HttpResponse:
    """Toggle the market on the user's watchlist (``enabled=1|0`` in the form sets it instead)."""
    market = _market_or_404(exchange, slug)
    wanted = request.POST.get("enabled")
    if wanted in ("0", "1"):
        entry = services.watchlist_set_enabled(user=request.user, market=market, enabled=wanted == "1")
    else:
        entry = services.watchlist_toggle(user=request.user, market=market)
    if _is_fragment_request(request):
        return _cell(request, entry)
    messages.success(request, f"{market.symbol} {'watched' if entry.enabled else 'not watched'}.")
    return redirect("trading:markets")


@login_required
@require_POST
def watchlist_multiplier(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the risk multiplier (0–10) of the user's entry ``pk``; 400 with the cell on bad input."""
    try:
        entry = services.watchlist_set_multiplier(
            user=request.user, entry_id=pk, multiplier=request.POST.get("risk_multiplier", "")
        )
    except WatchlistEntry.DoesNotExist:
        raise Http404("No such watchlist entry") from None
    except services.WatchlistError as exc:
        entry = WatchlistEntry.objects.for_user(request.user).select_related("market__exchange").get(pk=pk)
        if _is_fragment_request(request):
            return _cell(request, entry, status=400, error=str(exc))
        messages.error(request, str(exc))
        return redirect("trading:markets")
    if _is_fragment_request(request):
        return _cell(request, entry)
    messages.success(request, f"{entry.market.symbol}: risk multiplier {entry.risk_multiplier}.")
    return redirect("trading:markets")


@login_required
@require_POST
def markets_watch_liquid(request: HttpRequest) -> HttpResponse:
    """Enable every active market with 24 h quote volume ≥ ``min_quote_volume`` (optionally of
    ``quote``); reports how many and redirects to the markets page."""
    quote = (request.POST.get("quote") or "").strip()[:32]
    try:
        entries = services.watchlist_enable_liquid(
            user=request.user, min_quote_volume=request.POST.get("min_quote_volume", ""), quote=quote
        )
    except services.WatchlistError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Watching {len(entries)} market{'s' if len(entries) != 1 else ''}.")
    return redirect("trading:markets")
