"""Market pages: the markets overview (sortable, filterable with HTMX), one market with its
candlestick chart, and the chart's candles JSON.

Thin views: parse the query string with a form, call ``trading.selectors.markets``, render.
An HTMX request (``request.htmx``, not a history restore) gets only the table fragment
``trading/markets/_table.html``; a plain request gets the whole page, which includes the same
fragment — so a pushed URL reloads to exactly the state it shows.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from trading.models.market import Market, Timeframe
from trading.selectors import markets as selectors
from trading.selectors.watchlist import watchlist_annotate

PAGE_SIZE = 50

# (sort key, header label, numeric). Numeric columns sort descending on first click; a key not
# in selectors.SORT_FIELDS is a plain (unsortable) header.
COLUMNS = [
    ("symbol", "Market", False),
    ("type", "Type", False),
    ("exchange", "Exchange", False),
    ("last", "Last close", True),
    ("change", "24h %", True),
    ("volume", "24h volume", True),
    ("candles", "Candles stored", False),
    ("updated", "Last candle", True),
    ("watch", "Watch", False),
]
CANDLES_DEFAULT_LIMIT = 1000
CANDLES_MAX_LIMIT = 5000


class MarketFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=64, strip=True)
    quote = forms.CharField(required=False, max_length=32)
    type = forms.ChoiceField(required=False, choices=[("", "any")] + list(Market.Type.choices))
    exchange = forms.CharField(required=False, max_length=32)
    sort = forms.CharField(required=False, max_length=16)
    page = forms.IntegerField(required=False, min_value=1)


def _columns(request: HttpRequest, sort_key: str, descending: bool) -> list[dict]:
    """Table headers with the URL each one sorts by (click again to reverse)."""
    columns = []
    for key, label, numeric in COLUMNS:
        if key not in selectors.SORT_FIELDS:
            columns.append({"key": key, "label": label, "numeric": numeric, "url": None, "state": None})
            continue
        if key == sort_key:
            target, state = (key if descending else f"-{key}"), ("descending" if descending else "ascending")
        else:
            target, state = (f"-{key}" if numeric else key), None
        query = request.GET.copy()
        query["sort"] = target
        query.pop("page", None)
        columns.append({"key": key, "label": label, "numeric": numeric, "url": f"?{query.urlencode()}", "state": state})
    return columns


def compact_number(value: float | None) -> str:
    """1032255486.5 -> ``"1.03B"``; 15300 -> ``"15.3K"``; None -> ``"—"``."""
    if value is None:
        return "—"
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def _is_fragment_request(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


@login_required
@require_GET
def markets_list(request: HttpRequest) -> HttpResponse:
    """``/markets/``: every market with last close, 24 h change and volume, stored candles."""
    form = MarketFilterForm(request.GET)
    params = form.cleaned_data if form.is_valid() else {}
    sort_key, descending = selectors.sort_parse(params.get("sort") or selectors.DEFAULT_SORT)
    sort = f"{'-' if descending else ''}{sort_key}"
    qs = selectors.markets_filter(
        search=params.get("q") or "",
        quote=params.get("quote") or "",
        type=params.get("type") or "",
        exchange=params.get("exchange") or "",
        sort=sort,
    )
    qs = watchlist_annotate(qs, request.user)
    page = Paginator(qs, PAGE_SIZE).get_page(params.get("page") or 1)
    page.object_list = selectors.markets_decorate(page.object_list)
    for market in page.object_list:
        market.quote_volume_compact = compact_number(market.quote_volume_24h)
    context = {
        "page": page,
        "markets": page.object_list,
        "sort": sort,
        "sort_key": sort_key,
        "sort_desc": descending,
        "columns": _columns(request, sort_key, descending),
        "is_fragment": _is_fragment_request(request),
        "filters": {k: params.get(k) or "" for k in ("q", "quote", "type", "exchange")},
    }
    if context["is_fragment"]:
        response = render(request, "trading/markets/_table.html", context)
    else:
        context |= {
            "quotes": selectors.quote_choices(),
            "exchanges": selectors.exchange_choices(),
            "types": Market.Type.choices,
        }
        response = render(request, "trading/markets/list.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _market_or_404(exchange: str, slug: str) -> Market:
    try:
        return selectors.market_get(exchange=exchange, slug=slug)
    except Market.DoesNotExist:
        raise Http404("No such market") from None


@login_required
@require_GET
def market_detail(request: HttpRequest, exchange: str, slug: str) -> HttpResponse:
    """``/markets/<exchange>/<slug>/``: summary and candlestick + volume chart of one market."""
    market = _market_or_404(exchange, slug)
    market.quote_volume_compact = compact_number(market.quote_volume_24h)
    present = [s.timeframe for s in market.timeframes]
    timeframe = request.GET.get("timeframe")
    if timeframe not in present:
        timeframe = market.stats_timeframe or (present[0] if present else "1h")
    return render(
        request,
        "trading/markets/detail.html",
        {"market": market, "timeframe": timeframe, "timeframes": market.timeframes, "limit": CANDLES_DEFAULT_LIMIT},
    )


@login_required
@require_GET
def market_candles_json(request: HttpRequest, exchange: str, slug: str) -> JsonResponse:
    """``candles.json?timeframe=1h&limit=1000``: the last ``limit`` candles, oldest first, as
    ``[{"time": epoch seconds, "open", "high", "low", "close", "volume"}]``.

    400 with ``{"error": ...}`` for an unknown timeframe or a limit outside 1..5000.
    """
    market = _market_or_404(exchange, slug)
    timeframe = request.GET.get("timeframe") or market.stats_timeframe or "1h"
    if timeframe not in Timeframe.values:
        return JsonResponse({"error": f"unknown timeframe {timeframe!r}"}, status=400)
    try:
        limit = int(request.GET.get("limit") or CANDLES_DEFAULT_LIMIT)
    except ValueError:
        limit = 0
    if not 1 <= limit <= CANDLES_MAX_LIMIT:
        return JsonResponse({"error": f"limit must be 1..{CANDLES_MAX_LIMIT}"}, status=400)
    candles = selectors.market_candles(market=market, timeframe=timeframe, limit=limit)
    return JsonResponse(candles, safe=False)
