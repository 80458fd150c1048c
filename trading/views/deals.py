"""The deal page (``/bots/<pk>/deals/<trade_id>/``): one deal's candlestick chart with its fills
and price lines (average entry, TP, SL, resting safety orders), its ladder, orders and
decisions, and the actions a 3Commas user expects — close at market, add funds, change TP/SL.

Thin views: the bot comes through the one ownership gate (:func:`trading.views.bots.user_bot`),
the deal through :func:`trading.selectors.deals.deal_for_user` (another user's bot or deal: 404);
writes go through :mod:`trading.services.deals`, which queue engine commands applied by the
bot's next step. The action forms post with HTMX and get the actions card back with a message;
plain posts redirect to the deal page with a flash message.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from market7.formatting import price_decimals
from trading.models import Bot, Order, Trade
from trading.selectors.bots import last_prices
from trading.selectors.deals import deal_chart, deal_events, deal_for_user, deal_ladder, deal_orders
from trading.selectors.perpetuals import attach_liquidation_distance
from trading.services import bots as bot_services
from trading.services import deals as deal_services
from trading.views.bots import OPERATE_PERM, fill_markers, is_fragment, require_perm, user_bot

LINE_COLOURS = {"entry": "#4c8dff", "take_profit": "#16c784", "stop_loss": "#ea3943", "safety": "#f0b90b"}


def _deal(request: HttpRequest, pk: int, trade_id: int) -> tuple[Bot, Trade]:
    bot = user_bot(request, pk)
    try:
        return bot, deal_for_user(user=request.user, bot=bot, trade_id=trade_id)
    except Trade.DoesNotExist:
        raise Http404("no such deal") from None


def _pct_from_avg(trade: Trade, price: Decimal | None, *, exit_up: bool) -> Decimal | None:
    """Distance of ``price`` from the average entry in percent, positive in the exit's direction
    (a long's TP above, its SL below)."""
    if price is None or not trade.avg_entry:
        return None
    d = (price / trade.avg_entry - 1) * 100
    long = trade.side == Trade.Side.LONG
    return d if long == exit_up else -d


def _chart_lines(trade: Trade, orders: list[Order]) -> list[dict]:
    """Price lines of the chart: average entry, TP, SL (open deals) and resting safety orders."""
    if trade.status != Trade.Status.OPEN:
        return [{"price": float(trade.avg_entry), "title": "avg", "color": LINE_COLOURS["entry"], "kind": "entry"}]
    lines = [{"price": float(trade.avg_entry), "title": "avg", "color": LINE_COLOURS["entry"], "kind": "entry"}]
    if trade.take_profit_price:
        tp = float(trade.take_profit_price)
        lines.append({"price": tp, "title": "TP", "color": LINE_COLOURS["take_profit"], "kind": "take_profit"})
    if trade.stop_loss_price:
        sl = float(trade.stop_loss_price)
        lines.append({"price": sl, "title": "SL", "color": LINE_COLOURS["stop_loss"], "kind": "stop_loss"})
    for order in orders:
        if order.status == Order.Status.OPEN and order.tag == "safety_order" and order.price is not None:
            lines.append(
                {"price": float(order.price), "title": "SO", "color": LINE_COLOURS["safety"], "kind": "safety"}
            )
    return lines


def deal_context(request: HttpRequest, bot: Bot, trade: Trade) -> dict:
    orders = deal_orders(trade=trade)
    fills = [fill for order in orders for fill in order.fills.all()]
    fills.sort(key=lambda f: (f.time, f.pk))
    for fill in fills:
        fill.order.trade = trade
    chart = deal_chart(trade=trade)
    chart["markers"] = fill_markers(fills)
    chart["lines"] = _chart_lines(trade, orders)
    precision = trade.market.precision or {}
    chart["precision"] = price_decimals(trade.avg_entry, precision)
    current = last_prices(bot).get(trade.market.symbol) if trade.status == Trade.Status.OPEN else None
    current_price = Decimal(repr(current[1])) if current else None
    unrealized = None
    if current_price is not None:
        sign = 1 if trade.side == Trade.Side.LONG else -1
        unrealized = sign * (current_price - trade.avg_entry) * trade.amount - trade.fees
    can_operate = request.user.has_perm(OPERATE_PERM)
    attach_liquidation_distance([trade])
    return {
        "bot": bot,
        "trade": trade,
        "market": trade.market,
        "precision": precision,
        "amount_decimals": price_decimals(None, precision.get("amount") or 1e-8),
        "orders": orders,
        "fills": fills,
        "ladder": deal_ladder(trade=trade, orders=orders),
        "events": deal_events(trade=trade),
        "chart": chart,
        "current_price": current_price,
        "unrealized": unrealized,
        "unrealized_pct": (unrealized / trade.cost * 100) if unrealized is not None and trade.cost else None,
        "tp_pct": _pct_from_avg(trade, trade.take_profit_price, exit_up=True),
        "sl_pct": _pct_from_avg(trade, trade.stop_loss_price, exit_up=False),
        "pending": [c for c in bot.commands or [] if c.get("deal_id") == trade.deal_id],
        "can_operate": can_operate,
        "actions_open": can_operate and trade.status == Trade.Status.OPEN,
        "bot_running": bot.status == Bot.Status.RUNNING,
    }


@login_required
@require_GET
def deal_detail(request: HttpRequest, pk: int, trade_id: int) -> HttpResponse:
    """``/bots/<pk>/deals/<trade_id>/``: the deal page."""
    bot, trade = _deal(request, pk, trade_id)
    return render(request, "trading/deals/detail.html", deal_context(request, bot, trade))


def _after_action(request: HttpRequest, bot: Bot, trade: Trade, *, ok: str = "", error: str = "", errors=None):
    """HTMX: the actions card with the message; plain post: back to the deal page."""
    if is_fragment(request):
        bot = user_bot(request, bot.pk)
        trade = deal_for_user(user=request.user, bot=bot, trade_id=trade.pk)
        ctx = deal_context(request, bot, trade) | {"ok": ok, "error": error, "errors": errors or {}}
        response = render(request, "trading/deals/_actions.html", ctx)
        patch_vary_headers(response, ("HX-Request",))
        return response
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
    return redirect(reverse("trading:deal", args=[bot.pk, trade.pk]))


def _act(request: HttpRequest, pk: int, trade_id: int, action, ok: str) -> HttpResponse:
    bot, trade = _deal(request, pk, trade_id)
    require_perm(request, OPERATE_PERM)
    try:
        action(bot, trade)
    except bot_services.BotValidationError as exc:
        text = "; ".join(f"{'' if k == '__all__' else k.replace('_', ' ') + ': '}{v}" for k, v in exc.errors.items())
        return _after_action(request, bot, trade, error=text, errors=exc.errors)
    except bot_services.BotError as exc:
        return _after_action(request, bot, trade, error=str(exc))
    return _after_action(request, bot, trade, ok=ok)


@login_required
@require_POST
def deal_close(request: HttpRequest, pk: int, trade_id: int) -> HttpResponse:
    """POST: close the deal at market on the bot's next step."""
    return _act(
        request,
        pk,
        trade_id,
        lambda bot, trade: deal_services.deal_close(user=request.user, bot=bot, trade=trade),
        "Close requested: the deal closes at market at the next candle's open.",
    )


@login_required
@require_POST
def deal_add_funds(request: HttpRequest, pk: int, trade_id: int) -> HttpResponse:
    """POST ``quote``: add funds (a manual safety order, quote currency) on the next step."""
    return _act(
        request,
        pk,
        trade_id,
        lambda bot, trade: deal_services.deal_add_funds(
            user=request.user, bot=bot, trade=trade, quote=request.POST.get("quote")
        ),
        "Add funds requested: a market order at the next candle's open.",
    )


@login_required
@require_POST
def deal_set_exits(request: HttpRequest, pk: int, trade_id: int) -> HttpResponse:
    """POST ``take_profit`` / ``stop_loss`` (percent from the average entry; blank keeps it)."""
    return _act(
        request,
        pk,
        trade_id,
        lambda bot, trade: deal_services.deal_set_exits(
            user=request.user,
            bot=bot,
            trade=trade,
            take_profit=request.POST.get("take_profit"),
            stop_loss=request.POST.get("stop_loss"),
        ),
        "New take profit / stop loss requested: applied on the bot's next step.",
    )
