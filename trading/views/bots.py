"""Bot pages: list, create/edit (form generated from the strategy's schema), detail with a
candlestick chart of fills and the decision log, the status actions, manual closes, the
emergency stop-all, and the live-refresh fragments the browser pulls after a websocket event.

Thin views: every write goes through ``trading.services.bots`` (which re-checks ownership and
permissions); reads go through ``trading.selectors`` (every query behind the ownership gate
``Model.objects.for_user(user)``) — another user's bot is a 404.
A user without ``trading.operate_bot`` (viewer) sees no action buttons and gets 403 on the POSTs
(checked here first, and again by the service). HTMX requests get fragments only.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from market7.formatting import human_label
from market7.redirects import safe_next_url
from trading.forms import BotForm, EventFilterForm, ordered_by_group, strategy_schema
from trading.models import Bot, Order, Trade
from trading.selectors.bots import (
    bot_chart,
    bot_closed_trades,
    bots_active,
    bots_with_markets,
    live_open_order_count,
    open_deal_counts,
)
from trading.selectors.events import DECISION_LOG_KINDS, bot_activity, bot_event_facets, bot_events_page
from trading.selectors.performance import bot_pair_performance, bot_profit_calendar, bot_strategy_performance
from trading.selectors.risk import bot_risk_status
from trading.selectors.trades import trades_for_user
from trading.services import bot_closing
from trading.services import bots as bot_services
from trading.services import emergency as emergency_services
from trading.services import presets as preset_services

OPERATE_PERM = "trading.operate_bot"
ADD_PERM = "trading.add_bot"
CHANGE_PERM = "trading.change_bot"
ACTIONS = ("start", "pause", "resume", "stop", "restart")
EVENTS_PAGE = 50
ACTIVITY_ROWS = 50
CLOSED_TRADES = 25
SIGNAL_STARTS = 10  # newest signal starts on the bot page
CHART_CANDLES = 600


# -- helpers ----------------------------------------------------------------------------------
def is_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def user_bot(request: HttpRequest, pk: int) -> Bot:
    """The one ownership gate for a bot URL: another user's bot (or none) is a 404."""
    return get_object_or_404(bots_with_markets(request.user), pk=pk)


def require_perm(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"your role cannot do this (needs {perm})")


def bot_pnl(bot: Bot) -> Decimal:
    return (bot.realized_pnl or Decimal(0)) + (bot.unrealized_pnl or Decimal(0))


def decorate_bots(bots, user) -> list[Bot]:
    """Attach ``pnl``, ``pnl_pct``, ``open_deals``, ``actions``, ``symbols`` for the templates."""
    can_operate = user.has_perm(OPERATE_PERM)
    bots = list(bots)
    open_counts = open_deal_counts(user=user, bots=bots)
    for bot in bots:
        bot.pnl = bot_pnl(bot)
        bot.pnl_pct = (bot.pnl / bot.capital * 100) if bot.capital else None
        bot.open_deals = open_counts.get(bot.pk, 0)
        bot.actions = bot_services.bot_allowed_actions(bot) if can_operate else []
        bot.can_operate = can_operate
        bot.symbols = [m.symbol for m in bot.markets.all()]
    return bots


def _status_response(request: HttpRequest, bot: Bot, *, error: str = "") -> HttpResponse:
    """After an action: the status fragment (HTMX) or a redirect back (plain form post)."""
    if is_fragment(request):
        bot = decorate_bots([bots_with_markets(request.user).get(pk=bot.pk)], request.user)[0]
        response = render(request, "trading/bots/_status.html", {"bot": bot, "error": error, "oob_messages": True})
        patch_vary_headers(response, ("HX-Request",))
        return response
    if error:
        messages.error(request, error)
    # Only back to this site: a forged next=//evil.example/x falls back to the bot page.
    return redirect(safe_next_url(request, request.POST.get("next"), reverse("trading:bot", args=[bot.pk])))


# -- list -------------------------------------------------------------------------------------
@login_required
@require_GET
def bot_list(request: HttpRequest) -> HttpResponse:
    """``/bots/``: the user's bots with status, equity, P&L, open deals and actions."""
    bots = decorate_bots(bots_with_markets(request.user), request.user)
    context = {
        "bots": bots,
        "can_operate": request.user.has_perm(OPERATE_PERM),
        "can_add": request.user.has_perm(ADD_PERM),
        "any_active": any(b.is_active for b in bots),
    }
    template = "trading/bots/_table.html" if is_fragment(request) else "trading/bots/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# -- create / edit ----------------------------------------------------------------------------
def _service_kwargs(form: BotForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "strategy": data["strategy"],
        "params": form.cleaned_params or {},
        "markets": list(data["markets"]),
        "timeframe": data["timeframe"],
        "mode": data["mode"],
        "capital": data["capital"],
        "feed": data["feed"],
        "replay_start": data.get("replay_start") if data["feed"] == Bot.FeedKind.REPLAY else None,
        "replay_speed": data.get("replay_speed") or 3600.0,
        "risk": form.cleaned_risk,
        "signal_strategies": list(data.get("signal_strategies") or []),
        "signal_min_score": 0.0 if data.get("signal_min_score") is None else data["signal_min_score"],
        "perpetual": perpetual_of(data),
    }


def perpetual_of(data: dict) -> dict:
    """The form's perpetual settings as ``bot_create``/``bot_update`` take them (a spot bot's
    defaults — no leverage, isolated, buffer 0 — are accepted as "none")."""
    buffer = data.get("liquidation_buffer_pct")
    return {
        "leverage": data.get("leverage"),
        "margin_mode": data.get("margin_mode") or "isolated",
        "liquidation_buffer_pct": Decimal("0") if buffer in (None, "") else buffer,
    }


@login_required
@require_http_methods(["GET", "POST"])
def bot_create(request: HttpRequest) -> HttpResponse:
    """``/bots/new/``: the bot form; POST validates through ``bot_create`` — nothing is saved
    unless every field (and every strategy parameter) is valid."""
    require_perm(request, ADD_PERM)
    if request.method == "POST":
        form = BotForm(request.POST)
        if form.is_valid():
            kwargs = _service_kwargs(form)
            markets = kwargs.pop("markets")
            exchange = markets[0].exchange.code if markets else "binance"
            try:
                bot = bot_services.bot_create(user=request.user, markets=markets, exchange=exchange, **kwargs)
            except bot_services.BotValidationError as exc:
                form.add_service_errors(exc.errors)
            else:
                messages.success(request, f"Bot “{bot.name}” created. Start it when you are ready.")
                return redirect("trading:bot", bot.pk)
        return render(
            request, "trading/bots/form.html",
            {"form": form, "bot": None, "presets": preset_services.presets_for_user(request.user)},
        )  # fmt: skip
    initial = {}
    if request.GET.get("strategy"):
        initial["strategy"] = request.GET["strategy"]
    if markets := [m for m in request.GET.getlist("markets") if m.isdigit()]:  # Scan Review's "Start a bot"
        initial["markets"] = [int(m) for m in markets]
    if signal_strategies := request.GET.getlist("signal_strategies"):
        initial["signal_strategies"] = signal_strategies
    form_kwargs = {}
    preset = None
    if request.GET.get("preset", "").isdigit():  # "Load preset": the user's own only (404 otherwise)
        preset = get_object_or_404(preset_services.presets_for_user(request.user), pk=int(request.GET["preset"]))
        initial["strategy"] = preset.strategy
        initial |= preset.perpetual or {}  # leverage, margin mode, liquidation buffer of a perpetual preset
        form_kwargs = {"initial_params": preset.params, "initial_risk": preset.risk, "new": False}
    form = BotForm(initial=initial, **form_kwargs)
    if preset is not None and preset.risk is None:
        form.fields["risk_enabled"].initial = False
    context = {"form": form, "bot": None, "presets": preset_services.presets_for_user(request.user), "preset": preset}
    return render(request, "trading/bots/form.html", context)


@login_required
@require_GET
def bot_params(request: HttpRequest) -> HttpResponse:
    """``/bots/_params/?strategy=``: the parameter fieldset of a strategy (HTMX, on change)."""
    form = BotForm(initial={"strategy": request.GET.get("strategy") or ""})
    return render(request, "trading/bots/_params.html", {"form": form})


def _edit_changes(bot: Bot, form: BotForm, initial: dict) -> dict:
    """The fields the user really changed and the bot's status lets change (disabled fields
    keep their initial value, so they never show up here)."""
    kwargs = _service_kwargs(form)
    current = dict(initial, params=bot.params or {}, risk=bot.risk, perpetual=perpetual_of(initial))
    changes = {}
    for key, value in kwargs.items():
        field = form.fields.get(key)
        if (field is not None and field.disabled) or (key == "perpetual" and form.fields["leverage"].disabled):
            continue
        if key == "params":
            try:  # compare with the stored (defaulted) params
                value = bot_services.strategy_validate_params(kwargs["strategy"], value)
            except bot_services.BotValidationError:
                pass  # bot_update reports it on the fields
        old = current.get(key)
        if key == "markets":
            same = sorted(m.pk for m in value) == sorted(m.pk for m in old)
        elif key in ("capital", "replay_speed"):
            same = old is not None and value is not None and Decimal(str(value)) == Decimal(str(old))
        else:
            same = value == old
        if not same:
            changes[key] = value
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def bot_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """``/bots/<pk>/edit/``: change a bot through ``bot_update``. What may change depends on
    its status; the rest is shown read-only with the reason (``BotForm.lock_for``). Only
    fields that really changed are sent, and the message lists them."""
    bot = user_bot(request, pk)
    require_perm(request, CHANGE_PERM)
    initial = {
        "name": bot.name,
        "strategy": bot.strategy,
        "markets": list(bot.markets.all()),
        "timeframe": bot.timeframe,
        "mode": bot.mode,
        "capital": Decimal(format(bot.capital.normalize(), "f")),  # NUMERIC(28, 12) -> the form's 8 places
        "feed": bot.feed,
        "replay_start": bot.replay_start,
        "replay_speed": bot.replay_speed,
        "signal_strategies": list(bot.signal_strategies or []),
        "signal_min_score": bot.signal_min_score,
        "leverage": bot.leverage,
        "margin_mode": bot.margin_mode or "isolated",
        "liquidation_buffer_pct": bot.liquidation_buffer_pct,
    }
    form_kwargs = {"initial": initial, "initial_params": bot.params, "initial_risk": bot.risk, "new": False}
    if request.method == "POST":
        form = BotForm(request.POST, **form_kwargs)
        form.lock_for(bot)
        if form.is_valid():
            changes = _edit_changes(bot, form, initial)
            if not changes:
                messages.info(request, f"Bot “{bot.name}”: nothing changed.")
                return redirect("trading:bot", bot.pk)
            try:
                bot_services.bot_update(user=request.user, bot=bot, **changes)
            except bot_services.BotValidationError as exc:
                form.add_service_errors(exc.errors)
            else:
                names = ", ".join(form.fields[k].label or k if k in form.fields else k for k in sorted(changes))
                messages.success(request, f"Bot “{form.cleaned_data['name']}” saved: {names.lower()} changed.")
                return redirect("trading:bot", bot.pk)
    else:
        form = BotForm(**form_kwargs)
        form.lock_for(bot)
    return render(request, "trading/bots/form.html", {"form": form, "bot": bot})


# -- detail -----------------------------------------------------------------------------------
def _event_context(request: HttpRequest, bot: Bot) -> dict:
    """The decision log section (market-time rows, newest market time first), filtered by
    ``kind``, ``rule``, ``outcome`` and ``symbol`` (query string; a symbol must be one of the
    bot's markets, anything else is ignored)."""
    form = EventFilterForm(request.GET)
    params = form.cleaned_data if form.is_valid() else {}
    filters = {k: params.get(k) or "" for k in ("kind", "rule", "outcome")}
    symbols = sorted(m.symbol for m in bot.markets.all())
    symbol = request.GET.get("symbol") or ""
    filters["symbol"] = symbol if symbol in symbols else ""
    events, total = bot_events_page(user=request.user, bot=bot, limit=EVENTS_PAGE, **filters)
    rules, outcomes = bot_event_facets(user=request.user, bot=bot)
    return {
        "event_form": form,
        "event_filters": filters,
        "events": events,
        "events_total": total,
        "rules": rules,
        "outcomes": outcomes,
        "kinds": DECISION_LOG_KINDS,
        "event_symbols": symbols,
    }


def bot_detail_context(request: HttpRequest, bot: Bot) -> dict:
    from trading.views.trades import decorate_trades

    bot = decorate_bots([bot], request.user)[0]
    open_trades = decorate_trades(trades_for_user(request.user, bot=bot, status=Trade.Status.OPEN))
    closed = bot_closed_trades(user=request.user, bot=bot, limit=CLOSED_TRADES)
    return {
        "bot": bot,
        "open_trades": open_trades,
        "closed_trades": closed,
        "can_operate": bot.can_operate,
        "can_change": request.user.has_perm(CHANGE_PERM),
    }


@login_required
@require_GET
def bot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/bots/<pk>/``: status and actions, candlestick chart with fills, trades, decision log."""
    bot = user_bot(request, pk)
    context = bot_detail_context(request, bot) | _event_context(request, bot)
    context["symbols"] = context["bot"].symbols
    context["params_display"] = _params_display(bot)
    context["activity"] = bot_activity(user=request.user, bot=bot, limit=ACTIVITY_ROWS)
    context["calendar"] = bot_profit_calendar(user=request.user, bot=bot, period="day")
    context["pairs"] = bot_pair_performance(user=request.user, bot=bot)
    context["risk_status"] = bot_risk_status(bot)
    context["per_strategy"] = bot_strategy_performance(user=request.user, bot=bot)
    context["signal_starts"] = bot.signal_starts.select_related("market").order_by("-created_at", "-id")[:SIGNAL_STARTS]
    return render(request, "trading/bots/detail.html", context)


def _params_display(bot: Bot) -> list[dict]:
    """The bot's parameters for the read-only panel, grouped as in the form: ``[{"group",
    "params": [{"name", "label", "value", "unit"}]}]``; parameters the schema does not know
    (an older version's) come last under "other"."""
    schema = ordered_by_group(strategy_schema(bot.strategy))
    params = dict(bot.params or {})
    groups: dict[str, list[dict]] = {}
    for p in schema:
        if p["name"] in params:
            row = {"name": p["name"], "label": p["label"], "value": params.pop(p["name"]), "unit": p.get("unit") or ""}
            groups.setdefault(p.get("group") or "parameters", []).append(row)
    for name in sorted(params):
        groups.setdefault("other", []).append(
            {"name": name, "label": human_label(name), "value": params[name], "unit": ""}
        )
    return [{"group": g, "params": rows} for g, rows in groups.items()]


@login_required
@require_GET
def bot_events(request: HttpRequest, pk: int) -> HttpResponse:
    """``/bots/<pk>/events/``: the decision log fragment (filters in the query string)."""
    bot = user_bot(request, pk)
    context = {"bot": bot} | _event_context(request, bot)
    template = "trading/bots/_events.html" if is_fragment(request) else "trading/bots/events_page.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


MARKER_STYLE = {
    # tag prefix: (label, colour); buys below the bar, sells above
    "base_order": ("BO", "#4c8dff"),
    "safety_order": ("SO", "#f0b90b"),
    "take_profit": ("TP", "#16c784"),
    "stop_loss": ("SL", "#ea3943"),
}


def fill_markers(fills) -> list[dict]:
    """lightweight-charts series markers for fills, oldest first: entries (BO) below the bar,
    safety orders (SO n) below, exits (TP / SL / close) above."""
    markers = []
    for fill in fills:
        order = fill.order
        tag = order.tag or ""
        label, colour = "", "#8593a5"
        for prefix, (text, col) in MARKER_STYLE.items():
            if tag.startswith(prefix):
                label, colour = text, col
                if prefix == "safety_order":
                    suffix = tag[len(prefix) :].strip("_")
                    label = f"SO{suffix}" if suffix else "SO"
                break
        entry = order.side == Order.Side.BUY
        if order.trade_id and order.trade and order.trade.side == Trade.Side.SHORT:
            entry = not entry
        if not label:
            label = "entry" if entry else "exit"
            colour = "#4c8dff" if entry else "#c39bff"
        markers.append(
            {
                "time": int(fill.time.timestamp()),
                "position": "belowBar" if order.side == Order.Side.BUY else "aboveBar",
                "shape": "arrowUp" if order.side == Order.Side.BUY else "arrowDown",
                "color": colour,
                "text": label,
                "price": float(fill.price),
                "symbol": order.market.symbol,
            }
        )
    markers.sort(key=lambda m: m["time"])
    return markers


@login_required
@require_GET
def bot_chart_json(request: HttpRequest, pk: int) -> JsonResponse:
    """``/bots/<pk>/chart.json?symbol=``: ``{"symbol", "candles": [...], "markers": [...]}`` —
    the last candles of the market up to the bot's market time and its fills as markers."""
    bot = user_bot(request, pk)
    markets = list(bot.markets.all())
    if not markets:
        raise Http404("bot has no market")
    symbol = request.GET.get("symbol") or markets[0].symbol
    market = next((m for m in markets if m.symbol == symbol), None)
    if market is None:
        raise Http404("not a market of this bot")
    candles, fills = bot_chart(user=request.user, bot=bot, market=market, limit=CHART_CANDLES)
    return JsonResponse({"symbol": symbol, "candles": candles, "markers": fill_markers(fills)})


# -- actions ----------------------------------------------------------------------------------
@login_required
@require_POST
def bot_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """POST ``/bots/<pk>/<action>/`` with action in start, pause, resume, stop, restart."""
    if action not in ACTIONS:
        raise Http404("unknown action")
    bot = user_bot(request, pk)
    require_perm(request, OPERATE_PERM)
    service = getattr(bot_services, f"bot_{action}")
    try:
        bot = service(user=request.user, bot=bot)
    except (bot_services.BotTransitionError, bot_services.LiveTradingDisabled) as exc:
        return _status_response(request, bot, error=str(exc))
    if not is_fragment(request):
        messages.success(request, f"Bot “{bot.name}”: {action} → {bot.status}.")
    return _status_response(request, bot)


@login_required
@require_POST
def bot_close_trade(request: HttpRequest, pk: int, trade_id: int) -> HttpResponse:
    """POST ``/bots/<pk>/trades/<trade_id>/close/``: close one open deal at market on the next step."""
    bot = user_bot(request, pk)
    trade = get_object_or_404(trades_for_user(request.user, bot=bot), pk=trade_id)
    require_perm(request, OPERATE_PERM)
    try:
        bot_closing.bot_close_position(user=request.user, bot=bot, trade=trade)
    except bot_services.BotError as exc:
        return _status_response(request, bot, error=str(exc))
    if not is_fragment(request):
        messages.success(request, f"Closing {trade.market.symbol} deal {trade.deal_id} on the next step.")
    return _status_response(request, bot)


@login_required
@require_POST
def bot_close_all(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/bots/<pk>/close-all/``: close every open deal of the bot on its next step."""
    bot = user_bot(request, pk)
    require_perm(request, OPERATE_PERM)
    try:
        n = bot_closing.bot_close_all(user=request.user, bot=bot)
    except bot_services.BotError as exc:
        return _status_response(request, bot, error=str(exc))
    if not is_fragment(request):
        messages.success(request, f"Closing {n} open deal(s) on the next step.")
    return _status_response(request, bot)


@login_required
@require_http_methods(["GET", "POST"])
def bots_stop_all(request: HttpRequest) -> HttpResponse:
    """``/bots/stop-all/``: GET shows the confirmation page, POST stops every running or paused
    bot of the user (``close_positions=1`` also closes their open deals). Live bots' open orders
    are cancelled at the exchange (``trading.services.emergency``): the POST then shows what
    happened to each order; without live bots it redirects to the bot list as before."""
    require_perm(request, OPERATE_PERM)
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            messages.error(request, "Tick the confirmation to stop all bots.")
            return redirect("trading:bots-stop-all")
        close = request.POST.get("close_positions") == "1"
        report = emergency_services.emergency_stop(user=request.user, close_positions=close)
        n = len(report.paper_bot_ids) + len(report.live_bot_ids)
        messages.warning(request, f"Emergency stop: {n} bot(s) stopped" + (", open deals closing." if close else "."))
        if not report.live_bot_ids:
            return redirect("trading:bots")
        return render(request, "trading/bots/stop_all_done.html", {"report": report})
    active = bots_active(request.user)
    live_orders = live_open_order_count(user=request.user)
    open_deals = sum(open_deal_counts(user=request.user, bots=active).values())
    live = [b for b in active if b.mode == Bot.Mode.LIVE]
    ctx = {"active": active, "open_deals": open_deals, "live": live, "live_orders": live_orders}
    return render(request, "trading/bots/stop_all.html", ctx)


# -- live refresh -----------------------------------------------------------------------------
@login_required
@require_GET
def bot_row(request: HttpRequest, pk: int) -> HttpResponse:
    """``/bots/<pk>/_row/``: one table row of the bot list (live refresh)."""
    bot = decorate_bots([user_bot(request, pk)], request.user)[0]
    return render(request, "trading/bots/_row.html", {"bot": bot})


# -- portfolio risk, clone, presets -----------------------------------------------------------
@login_required
@require_POST
def bot_resume_trading(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/bots/<pk>/resume-trading/``: lift a drawdown pause / daily-loss halt of the bot's
    portfolio risk (``bot_resume_trading``); the message gives the recorded reason."""
    bot = user_bot(request, pk)
    require_perm(request, OPERATE_PERM)
    try:
        reason = bot_services.bot_resume_trading(user=request.user, bot=bot)
    except bot_services.BotTransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Trading resumed: {reason}.")
    return redirect("trading:bot", bot.pk)


@login_required
@require_POST
def bot_clone(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/bots/<pk>/clone/``: a new paper bot with the same settings, "<name> (copy)"."""
    bot = user_bot(request, pk)
    require_perm(request, ADD_PERM)
    try:
        clone = preset_services.bot_clone(user=request.user, bot=bot)
    except bot_services.BotValidationError as exc:
        messages.error(request, f"Cannot clone: {exc}")
        return redirect("trading:bot", bot.pk)
    messages.success(request, f"Bot “{clone.name}” created from “{bot.name}”. Edit it, then start it.")
    return redirect("trading:bot", clone.pk)


@login_required
@require_POST
def bot_save_preset(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/bots/<pk>/save-preset/`` (``name``): save the bot's strategy, parameters and
    risk block as a preset."""
    bot = user_bot(request, pk)
    require_perm(request, ADD_PERM)
    try:
        preset = preset_services.preset_from_bot(user=request.user, bot=bot, name=request.POST.get("name", ""))
    except bot_services.BotValidationError as exc:
        messages.error(request, f"Preset not saved: {exc}")
    else:
        messages.success(request, f"Preset “{preset.name}” saved. Load it in the new-bot form.")
    return redirect("trading:bot", bot.pk)


@login_required
@require_GET
def preset_list(request: HttpRequest) -> HttpResponse:
    """``/bots/presets/``: the user's presets with load (new bot) and delete."""
    presets = preset_services.presets_for_user(request.user)
    return render(request, "trading/bots/presets.html", {"presets": presets})


@login_required
@require_POST
def preset_delete(request: HttpRequest, preset_id: int) -> HttpResponse:
    """POST ``/bots/presets/<id>/delete/``; another user's preset is a 404."""
    preset = get_object_or_404(preset_services.presets_for_user(request.user), pk=preset_id)
    require_perm(request, ADD_PERM)
    preset_services.preset_delete(user=request.user, preset=preset)
    messages.success(request, f"Preset “{preset.name}” deleted.")
    return redirect("trading:bot-presets")
