"""Bot page analytics: the P&L / equity chart's JSON and the profit calendar partial.

Thin views over :mod:`trading.selectors.performance`; every URL goes through the bot pages'
one ownership gate (:func:`trading.views.bots.user_bot`): another user's bot is a 404.
The per-pair table and the first calendar are rendered with the bot page itself
(:func:`trading.views.bots.bot_detail`).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from trading.selectors.performance import PERIODS, bot_pnl_series, bot_profit_calendar
from trading.views.bots import user_bot


@login_required
@require_GET
def bot_equity_json(request: HttpRequest, pk: int) -> JsonResponse:
    """``/bots/<pk>/equity.json``: the bot's P&L curve (:func:`bot_pnl_series`):
    ``{"currency", "capital", "realized", "unrealized", "series": [{"time": epoch s, "pnl",
    "equity"}]}`` — realized P&L cumulated over closed deals plus the current unrealized, in
    the bot's quote currency."""
    bot = user_bot(request, pk)
    response = JsonResponse(bot_pnl_series(user=request.user, bot=bot))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def bot_performance(request: HttpRequest, pk: int) -> HttpResponse:
    """``/bots/<pk>/_performance/?period=day|week|month``: the profit calendar partial (P&L,
    deals and win rate per period). Another period is a 400 with the allowed values."""
    bot = user_bot(request, pk)
    period = request.GET.get("period") or "day"
    if period not in PERIODS:
        return HttpResponseBadRequest(f"period must be one of {', '.join(PERIODS)}", content_type="text/plain")
    context = {"bot": bot, "calendar": bot_profit_calendar(user=request.user, bot=bot, period=period)}
    response = render(request, "trading/bots/_performance.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response
