"""Scan Review, BTC Risk Panel and the TradingView webhook (issue 11 §4); URL names in the
``scans`` namespace (strategies/urls_scans.py) plus ``tradingview-webhook``.

Ownership: a user sees their own scans and the system scans (``owner`` NULL); another user's
scan or signal is a 404 (:func:`scans_for_user` is the one gate these views use).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from market7.timeframes import timeframe_ms
from strategies.models import MarketScan, ScanSignal, SignalStart, WebhookSignal
from strategies.services import webhooks
from strategies.services.btc_risk import btc_risk_panel
from strategies.services.scans import ScanError, scan_run
from strategies.signals import DETECTORS
from trading.selectors.markets import market_candles_around, market_slug

SORTS = {
    "-score": ("-score", "id"),
    "score": ("score", "id"),
    "symbol": ("market__symbol", "-score", "id"),
    "strategy": ("strategy", "-score", "id"),
    "-time": ("-time", "-score", "id"),
}
SCANS_LOOKED_AT = 200  # newest visible scans searched for each strategy's latest
BACKTEST_DAYS = 30  # window of "Backtest this setup", ending at the signal's day
CHART_BEFORE = 200  # signal chart: candles before the signal candle ...
CHART_AFTER = 50  # ... and after it, where stored


def scans_for_user(user):
    """The ownership gate: the user's scans and the system scans."""
    return MarketScan.objects.filter(Q(owner=user) | Q(owner__isnull=True))


def signals_for_user(user):
    return ScanSignal.objects.filter(Q(scan__owner=user) | Q(scan__owner__isnull=True))


def latest_scans(user) -> dict[str, MarketScan]:
    """``{strategy: the newest visible scan that ran it}`` (newest ``at``, then newest id)."""
    out: dict[str, MarketScan] = {}
    for scan in scans_for_user(user).order_by("-at", "-id")[:SCANS_LOOKED_AT]:
        for name in scan.strategies:
            out.setdefault(name, scan)
    return out


def _bars(components: dict) -> list[dict]:
    """Components as bars: ``[{"name", "value", "points", "width" (% of the largest |points|),
    "negative"}]`` in stored order."""
    pts = [abs(c.get("points") or 0.0) for c in components.values()]
    top = max(pts, default=0.0) or 1.0
    return [
        {
            "name": name,
            "value": c.get("value"),
            "points": c.get("points"),
            "width": round(abs(c.get("points") or 0.0) / top * 100, 1),
            "negative": (c.get("points") or 0.0) < 0,
        }
        for name, c in components.items()
    ]


def attach_sent_to(rows: list[ScanSignal], user) -> None:
    """Set ``row.sent_to`` = the user's bots the signal was sent to (``[Bot]``, by pk): matched
    on the signal's key (market, strategy, candle, side), so a later scan of the same candle
    shows the bots an earlier one sent it to. One query."""
    for r in rows:
        r.sent_to = []
    if not rows or not user.is_authenticated:
        return
    starts = SignalStart.objects.filter(
        bot__owner=user, market__in={r.market_id for r in rows}, time__in={r.time for r in rows}
    ).select_related("bot")
    by_key: dict[tuple, list] = {}
    for st in starts.order_by("bot_id"):
        by_key.setdefault((st.market_id, st.strategy, st.time, st.side), []).append(st.bot)
    for r in rows:
        r.sent_to = by_key.get((r.market_id, r.strategy, r.time, r.side), [])


@login_required
@require_GET
def scan_review(request: HttpRequest) -> HttpResponse:
    """``/scans/?sort=-score|score|symbol|strategy|-time``: the signals of the latest scan of
    each strategy, plus the Scan now form and the webhook token section."""
    sort = request.GET.get("sort") or "-score"
    if sort not in SORTS:
        sort = "-score"
    latest = latest_scans(request.user)
    q = Q(pk__in=[])
    for name, scan in latest.items():
        q |= Q(scan=scan, strategy=name)
    rows = list(ScanSignal.objects.filter(q).select_related("market", "scan").order_by(*SORTS[sort]))
    for r in rows:
        r.bars = _bars(r.components or {})
    attach_sent_to(rows, request.user)
    context = {
        "rows": rows,
        "sort": sort,
        "latest": sorted(latest.items()),
        "strategies": sorted(DETECTORS),
        "token": webhooks.webhook_token_active(user=request.user),
        "new_token": request.session.pop("m7_new_webhook_token", None),
        "webhook_signals": WebhookSignal.objects.filter(owner=request.user).select_related("bot")[:20],
    }
    return render(request, "strategies/scans/review.html", context)


@login_required
@require_POST
def scan_now(request: HttpRequest) -> HttpResponse:
    """POST symbols (comma separated), strategies (checkboxes), timeframe: a synchronous scan
    owned by the user; the ScanError reason as an error message."""
    symbols = [s.strip().upper() for s in (request.POST.get("symbols") or "").split(",") if s.strip()]
    names = request.POST.getlist("strategies")
    try:
        scan, signals = scan_run(
            symbols=symbols, timeframe=request.POST.get("timeframe") or "1h", strategies=names, owner=request.user
        )
    except ScanError as exc:
        messages.error(request, f"Scan not run: {exc}")
    else:
        messages.success(request, f"Scan #{scan.pk}: {len(signals)} signal{'s' if len(signals) != 1 else ''}.")
    return redirect("scans:review")


@login_required
@require_GET
def signal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/scans/signals/<id>/``: the setup on a candlestick chart with entry / SL / TP lines:
    the :data:`CHART_BEFORE` candles before the signal candle, it, and up to :data:`CHART_AFTER`
    after it (embedded in the page's chart JSON as ``candles``)."""
    sig = get_object_or_404(signals_for_user(request.user).select_related("market__exchange", "scan"), pk=pk)
    market = sig.market
    tf = sig.scan.timeframe
    day = sig.time.date()
    backtest = (
        reverse("backtests:new")
        + "?"
        + urlencode(
            {
                "strategy": sig.strategy,
                "symbols": market.symbol,
                "timeframe": tf,
                "start": (day - timedelta(days=BACKTEST_DAYS)).isoformat(),
                "end": day.isoformat(),
            }
        )
    )
    bot = (
        reverse("trading:bot-create")
        + "?"
        + urlencode({"strategy": sig.strategy, "markets": market.pk, "signal_strategies": sig.strategy})
    )
    chart = {
        "url": reverse("trading:market-candles", args=[market.exchange.code, market_slug(market.symbol)]),
        "timeframe": tf,
        "candles": market_candles_around(
            market=market, timeframe=tf, at=sig.time, before=CHART_BEFORE, after=CHART_AFTER
        ),
        "signal_time": int(sig.time.timestamp()),
        "side": sig.side,
        "entry": sig.entry,
        "stop_loss": sig.stop_loss,
        "take_profit": sig.take_profit,
    }
    attach_sent_to([sig], request.user)
    context = {
        "sig": sig,
        "bars": _bars(sig.components or {}),
        "chart": chart,
        "backtest_url": backtest,
        "bot_url": bot,
        "tf_ms": timeframe_ms(tf),
    }
    return render(request, "strategies/scans/signal.html", context)


@login_required
@require_GET
def btc_risk(request: HttpRequest) -> HttpResponse:
    """``/scans/btc-risk/``: regime, its inputs, the BTC filter and the regime history."""
    panel = btc_risk_panel()
    return render(request, "strategies/scans/btc_risk.html", {"panel": panel})


@login_required
@require_POST
def webhook_token_rotate(request: HttpRequest) -> HttpResponse:
    """Revoke the user's webhook token and make a new one, shown once on the next page."""
    request.session["m7_new_webhook_token"] = webhooks.webhook_token_rotate(user=request.user)
    messages.success(request, "New webhook token created; the old one no longer works.")
    return redirect(reverse("scans:review") + "#webhooks")


@csrf_exempt
def tradingview_webhook(request: HttpRequest, token: str) -> JsonResponse:
    """``POST /webhooks/tradingview/<token>/``: see :mod:`strategies.services.webhooks`.
    200 ``{"status": "recorded"|"duplicate", "signal": id}``; 4xx ``{"error": reason}``."""
    if request.method != "POST":
        return JsonResponse({"error": "POST a JSON alert"}, status=405)
    try:
        result = webhooks.webhook_receive(token=token, body=request.body)
    except webhooks.WebhookError as exc:
        return JsonResponse({"error": exc.reason}, status=exc.status)
    body = {"status": result.status, "signal": result.signal.pk, "result": result.signal.result}
    return JsonResponse(body, json_dumps_params={"sort_keys": True})
