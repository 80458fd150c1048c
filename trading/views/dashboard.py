"""The dashboard (``/``): account summary, performance, the equity / P&L chart, active trades and
recent decisions — and the live-refresh endpoint the browser calls after a websocket event.

Live updates (DESIGN.md §4): the page holds ONE websocket (``/ws/live/``, htmx ws extension in
``{% block live %}``). The consumer sends JSON events (docs/bots.md); ``static/js/bots.js``
cancels the extension's HTML swap for JSON messages and instead asks ``/live/?view=<page>`` for
server-rendered fragments, which come back with ``hx-swap-oob`` ids (``templates/trading/live/``)
and replace the sections in place. The equity chart is re-fed from ``/dashboard/equity.json``.

Selectors used: ``trading.selectors.bots.dashboard_summary`` and friends; user-wide performance
and the combined equity series are computed here (:func:`user_performance`,
:func:`user_equity_series`) until they exist as selectors.
"""

from __future__ import annotations

import statistics
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from market7.timeframes import dt_to_ms
from trading.models import Bot, BotEvent, EquitySnapshot, Trade
from trading.selectors.bots import dashboard_summary, max_drawdown_pct, sharpe_ratio
from trading.views.bots import bot_detail_context, decorate_bots, is_fragment, user_bot
from trading.views.trades import decorate_trades

RECENT_DECISIONS = 15
EQUITY_MAX_POINTS = 1500
ZERO = Decimal("0")


def user_equity_series(user, max_points: int = EQUITY_MAX_POINTS) -> list[dict]:
    """The user's total equity over (market) time: at every snapshot time, the sum over bots of
    each bot's latest snapshot equity (its capital before its first snapshot). Oldest first,
    ``[{"time": epoch s, "equity": float, "pnl": float (equity - total capital)}]``, thinned
    evenly to ``max_points`` (the last point kept). Quote currency."""
    bots = list(Bot.objects.for_user(user).values_list("pk", "capital"))
    if not bots:
        return []
    latest = {pk: float(capital) for pk, capital in bots}
    capital = sum(latest.values())
    total = capital
    series: list[dict] = []
    rows = EquitySnapshot.objects.for_user(user).order_by("time", "bot_id").values_list("time", "bot_id", "equity")
    for t, bot_id, equity in rows.iterator(chunk_size=2000):
        total += float(equity) - latest[bot_id]
        latest[bot_id] = float(equity)
        sec = dt_to_ms(t) // 1000
        point = {"time": sec, "equity": round(total, 8), "pnl": round(total - capital, 8)}
        if series and series[-1]["time"] == sec:
            series[-1] = point
        else:
            series.append(point)
    if len(series) > max_points:
        step = len(series) / max_points
        idx = sorted({int(i * step) for i in range(max_points)} | {len(series) - 1})
        series = [series[i] for i in idx]
    return series


def user_performance(user, series: list[dict] | None = None) -> dict:
    """Win rate (% of closed deals with P&L > 0), average P&L per closed deal (quote), Sharpe
    (annualised, per-period returns of the combined equity, period = the median spacing of the
    series) and max drawdown (% of peak) of the combined equity."""
    pnls = [p or ZERO for p in Trade.objects.for_user(user).filter(status=Trade.Status.CLOSED).values_list("realized_pnl", flat=True)]
    wins = sum(1 for p in pnls if p > 0)
    series = user_equity_series(user) if series is None else series
    capital = float(sum(Bot.objects.for_user(user).values_list("capital", flat=True), ZERO))
    equity = [capital] + [p["equity"] for p in series]
    sharpe = None
    if len(series) >= 3:
        gaps = [b["time"] - a["time"] for a, b in zip(series, series[1:], strict=False) if b["time"] > a["time"]]
        if gaps:
            sharpe = sharpe_ratio(equity, 365 * 24 * 3600 / statistics.median(gaps))
    return {
        "closed": len(pnls),
        "wins": wins,
        "losses": len(pnls) - wins,
        "win_rate_pct": (wins / len(pnls) * 100.0) if pnls else None,
        "avg_pnl": (sum(pnls, ZERO) / len(pnls)) if pnls else None,
        "total_realized": sum(pnls, ZERO),
        "sharpe": sharpe,
        "max_drawdown_pct": max_drawdown_pct(equity) if len(equity) > 1 else 0.0,
    }


def active_trades(user) -> list[Trade]:
    return decorate_trades(Trade.objects.for_user(user).filter(status=Trade.Status.OPEN).select_related("bot", "market"))


def recent_decisions(user, limit: int = RECENT_DECISIONS) -> list[BotEvent]:
    """The newest decisions with reasons (routine ``allow`` outcomes left out), and trade events."""
    kinds = [BotEvent.Kind.DECISION, BotEvent.Kind.TRADE_OPENED, BotEvent.Kind.TRADE_CLOSED, BotEvent.Kind.ERROR]
    qs = BotEvent.objects.for_user(user).filter(kind__in=kinds).exclude(kind=BotEvent.Kind.DECISION, outcome="allow")
    return list(qs.select_related("bot").order_by("-created_at", "-id")[:limit])


def dashboard_context(user) -> dict:
    series = user_equity_series(user)
    return {
        "summary": dashboard_summary(user=user),
        "performance": user_performance(user, series),
        "active_trades": active_trades(user),
        "decisions": recent_decisions(user),
        "has_bots": Bot.objects.for_user(user).exists(),
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
        rows = EquitySnapshot.objects.for_user(request.user).filter(bot=bot).order_by("time").values_list("time", "equity")
        series = [{"time": dt_to_ms(t) // 1000, "equity": float(e), "pnl": float(e - bot.capital)} for t, e in rows]
        return JsonResponse({"series": series[-EQUITY_MAX_POINTS:]})
    return JsonResponse({"series": user_equity_series(request.user)})


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
        context = {"bots": decorate_bots(Bot.objects.for_user(user).prefetch_related("markets"), user)}
    elif view == "trades":
        context = {"open_trades": decorate_trades(Trade.objects.for_user(user).filter(status=Trade.Status.OPEN))}
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
