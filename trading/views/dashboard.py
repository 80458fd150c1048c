"""The dashboard (``/``): account summary, performance, the equity / P&L chart, active trades and
recent decisions — and the live-refresh endpoint the browser calls after a websocket event.

Live updates (DESIGN.md §4): the page holds ONE websocket (``/ws/live/``, htmx ws extension in
``{% block live %}``). The consumer sends JSON events (docs/bots.md); ``static/js/bots.js``
cancels the extension's HTML swap for JSON messages and instead asks ``/live/?view=<page>`` for
server-rendered fragments, which come back with ``hx-swap-oob`` ids (``templates/trading/live/``)
and replace the sections in place. The equity chart is re-fed from ``/dashboard/equity.json``.

Reads come from selectors: ``trading.selectors.bots.dashboard_summary`` and the page selectors,
and ``trading.selectors.dashboard`` for the user-wide performance, the combined equity series
and the recent decisions; ``trading.selectors.perpetuals.near_liquidation`` picks the open
perpetual deals near their liquidation price out of the active trades (no extra query).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from trading.models import Trade
from trading.selectors.bots import bots_with_markets, dashboard_summary, user_has_bots
from trading.selectors.dashboard import bot_equity_pnl_series, recent_decisions, user_equity_series, user_performance
from trading.selectors.perpetuals import near_liquidation
from trading.selectors.trades import trades_for_user
from trading.views.bots import bot_detail_context, decorate_bots, is_fragment, user_bot
from trading.views.trades import decorate_trades

RECENT_DECISIONS = 15
EQUITY_MAX_POINTS = 1500


def active_trades(user) -> list[Trade]:
    """The user's open deals, decorated for the tracker (:func:`decorate_trades`)."""
    return decorate_trades(trades_for_user(user, status=Trade.Status.OPEN))


def dashboard_context(user) -> dict:
    series = user_equity_series(user, EQUITY_MAX_POINTS)
    trades = active_trades(user)
    return {
        "summary": dashboard_summary(user=user),
        "performance": user_performance(user, series),
        "active_trades": trades,
        "near_liquidation": near_liquidation(trades),  # perpetual deals close to their liquidation price
        "decisions": recent_decisions(user, RECENT_DECISIONS),
        "has_bots": user_has_bots(user),
        "equity_points": len(series),
    }


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/``: the dashboard."""
    context = dashboard_context(request.user)
    template = "trading/live/_dashboard.html" if is_fragment(request) else "trading/dashboard/home.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_GET
def equity_json(request: HttpRequest) -> JsonResponse:
    """``/dashboard/equity.json``: :func:`user_equity_series`, or one bot's with ``?bot=<id>``."""
    if request.GET.get("bot"):
        try:
            pk = int(request.GET["bot"])
        except ValueError:
            raise Http404("bad bot id") from None
        bot = user_bot(request, pk)
        return JsonResponse({"series": bot_equity_pnl_series(user=request.user, bot=bot, max_points=EQUITY_MAX_POINTS)})
    return JsonResponse({"series": user_equity_series(request.user, EQUITY_MAX_POINTS)})


LIVE_VIEWS = ("dashboard", "bots", "bot", "trades")


@login_required
@require_GET
def live_fragments(request: HttpRequest) -> HttpResponse:
    """``/live/?view=dashboard|bots|trades|bot&bot=<id>``: the page's live sections as
    ``hx-swap-oob`` fragments (the browser calls this after a websocket event)."""
    view = request.GET.get("view", "dashboard")
    if view not in LIVE_VIEWS:
        raise Http404("unknown live view")
    user = request.user
    if view == "dashboard":
        context = dashboard_context(user)
    elif view == "bots":
        context = {"bots": decorate_bots(bots_with_markets(user), user)}
    elif view == "trades":
        context = {"open_trades": decorate_trades(trades_for_user(user, status=Trade.Status.OPEN))}
    else:
        try:
            pk = int(request.GET.get("bot", ""))
        except ValueError:
            raise Http404("bad bot id") from None
        context = bot_detail_context(request, user_bot(request, pk))
    context["oob"] = True
    response = render(request, f"trading/live/_{view}.html", context)
    response["Cache-Control"] = "no-store"
    return response
