"""Trades pages: active deals with the DCA tracker (each open deal's safety-order ladder drawn
against the current price), the deal history with filters, and the CSV export of the same
filtered rows.

Reads come from ``trading.selectors.trades`` (everything behind ``Trade.objects.for_user(user)``).
Filters (query string, also the CSV's): ``bot`` (id), ``market`` (ccxt symbol), ``side``
(long|short), ``status`` (open|closed), ``date_from`` / ``date_to`` (UTC dates, inclusive, on the
deal's open time).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from trading.forms import TradeFilterForm
from trading.models import Order, Trade
from trading.selectors.bots import bots_by_name, last_prices
from trading.selectors.perpetuals import attach_liquidation_distance
from trading.selectors.trades import (
    orders_by_trade,
    trade_symbols,
    trades_for_user,
    trades_history,
    trades_with_current_price,
)
from trading.views.bots import is_fragment

PAGE_SIZE = 50
FILTERS = ("bot", "market", "side", "status", "date_from", "date_to")

# The CSV export's columns, in order (docs/pages.md). Money is the stored Decimal as a plain
# string (quote currency; amount in base units); times are ISO 8601 UTC; pnl_pct is percent.
CSV_COLUMNS = [
    "id",
    "bot_id",
    "bot",
    "exchange",
    "market",
    "side",
    "status",
    "deal_id",
    "opened_at",
    "closed_at",
    "avg_entry",
    "exit_price",
    "amount",
    "cost",
    "fees",
    "realized_pnl",
    "pnl_pct",
    "safety_orders_filled",
    "safety_orders_max",
    "take_profit_price",
    "stop_loss_price",
    "exit_reason",
]


def _plain(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def trade_csv_row(trade: Trade) -> list[str]:
    pnl_pct = trade.pnl_pct
    return [
        _plain(trade.pk),
        _plain(trade.bot_id),
        trade.bot.name,
        trade.market.exchange.code,
        trade.market.symbol,
        trade.side,
        trade.status,
        trade.deal_id,
        _plain(trade.opened_at),
        _plain(trade.closed_at),
        _plain(trade.avg_entry),
        _plain(trade.exit_price),
        _plain(trade.amount),
        _plain(trade.cost),
        _plain(trade.fees),
        _plain(trade.realized_pnl),
        "" if pnl_pct is None else f"{pnl_pct:.4f}",
        _plain(trade.safety_orders_filled),
        _plain(trade.safety_orders_max),
        _plain(trade.take_profit_price),
        _plain(trade.stop_loss_price),
        trade.exit_reason,
    ]


# -- open deals: current price, unrealized P&L, risk, the DCA ladder ---------------------------
def risk_level(trade: Trade) -> str:
    """``high`` when every safety order is used or the deal is down ≥ 10 % (or within 2 % of its
    stop loss), ``medium`` when half the safety orders are used or it is down ≥ 5 %, else ``low``."""
    pct = trade.unrealized_pct
    so_max, so = trade.safety_orders_max or 0, trade.safety_orders_filled or 0
    near_stop = False
    if trade.stop_loss_price and trade.current_price:
        near_stop = abs(float(trade.current_price) - float(trade.stop_loss_price)) / float(trade.current_price) < 0.02
    if (so_max and so >= so_max) or (pct is not None and pct <= -10) or near_stop:
        return "high"
    if (so_max and so * 2 >= so_max) or (pct is not None and pct <= -5):
        return "medium"
    return "low"


def _ladder_levels(trade: Trade, orders: list[Order]) -> list[dict]:
    """Safety-order levels ``[{"n", "price", "filled"}]`` from the deal's SO orders, else from
    the engine's ``info["ladder"]`` (dicts with ``price`` and ``filled``/``status``, or prices)."""
    levels = []
    for order in orders:
        if not order.tag.startswith("safety_order"):
            continue
        price = order.average if order.status == Order.Status.CLOSED and order.average else order.price
        if price is None:
            continue
        n = order.tag[len("safety_order") :].strip("_") or str(len(levels) + 1)
        levels.append({"n": n, "price": float(price), "filled": order.status == Order.Status.CLOSED})
    if levels:
        return sorted(levels, key=lambda lv: -lv["price"])
    raw = (trade.info or {}).get("ladder") or []
    for i, item in enumerate(raw, start=1):
        if isinstance(item, dict):
            price = item.get("price")
            filled = bool(item.get("filled")) or item.get("status") in ("filled", "closed")
            n = item.get("n") or item.get("index") or i
        else:
            price, filled, n = item, i <= (trade.safety_orders_filled or 0), i
        if price is not None:
            levels.append({"n": str(n), "price": float(price), "filled": filled})
    return levels


def ladder_svg(trade: Trade, width: int = 340, height: int = 150) -> dict:
    """Geometry of the DCA tracker picture: a vertical price axis with one line per level —
    filled SOs (solid amber), pending SOs (dashed), average entry (blue), take profit (green),
    stop loss (red) and the current price (white, with a marker). y in pixels, top = highest."""
    lines = [
        {"kind": "so-filled" if lv["filled"] else "so-pending", "label": f"SO{lv['n']}", "price": lv["price"]}
        for lv in trade.ladder
    ]
    lines.append({"kind": "entry", "label": "avg entry", "price": float(trade.avg_entry)})
    if trade.take_profit_price:
        lines.append({"kind": "tp", "label": "TP", "price": float(trade.take_profit_price)})
    if trade.stop_loss_price:
        lines.append({"kind": "sl", "label": "SL", "price": float(trade.stop_loss_price)})
    if trade.current_price is not None:
        lines.append({"kind": "price", "label": "now", "price": float(trade.current_price)})
    prices = [ln["price"] for ln in lines]
    lo, hi = min(prices), max(prices)
    pad = (hi - lo) * 0.08 or max(hi * 0.01, 1e-9)
    lo, hi = lo - pad, hi + pad
    top, bottom = 8, height - 8
    for ln in lines:
        ln["y"] = round(top + (hi - ln["price"]) / (hi - lo) * (bottom - top), 1)
        ln["text"] = f"{ln['label']} {ln['price']:,.6g}"
    # Labels must not overlap: push each one at least 11 px below the previous label.
    lines.sort(key=lambda ln: ln["y"])
    label_y = -100.0
    for ln in lines:
        label_y = max(ln["y"], label_y + 11)
        ln["label_y"] = round(label_y, 1)
    if lines and lines[-1]["label_y"] > height - 2:
        height = int(lines[-1]["label_y"]) + 6
    return {"width": width, "height": height, "lines": lines, "x_label": width - 120}


def decorate_trades(trades) -> list[Trade]:
    """Attach ``current_price``, ``unrealized_pnl``, ``unrealized_pct``, ``risk``, ``ladder``,
    ``svg`` to open deals (price: the last close at the bot's market time). A queryset is read
    in two queries whatever its length (deals with their prices, then their orders)."""
    if hasattr(trades, "select_related"):
        trades = list(trades_with_current_price(trades))
        prices = {t.pk: t.current_close for t in trades}
    else:  # deals already loaded: the prices per bot (one query per market of each bot)
        trades, by_bot = list(trades), {}
        for t in trades:
            if t.bot_id not in by_bot:
                by_bot[t.bot_id] = last_prices(t.bot)
        prices = {t.pk: (by_bot[t.bot_id].get(t.market.symbol) or (None, None))[1] for t in trades}
    orders = orders_by_trade(trades)
    for trade in trades:
        close = prices[trade.pk]
        trade.current_price = Decimal(str(close)) if close is not None else None
        trade.unrealized_pnl = trade.unrealized_pct = None
        if trade.current_price is not None and trade.status == Trade.Status.OPEN:
            sign = 1 if trade.side == Trade.Side.LONG else -1
            trade.unrealized_pnl = sign * (trade.current_price - trade.avg_entry) * trade.amount - trade.fees
            trade.unrealized_pct = float(trade.unrealized_pnl / trade.cost * 100) if trade.cost else None
        trade.risk = risk_level(trade)
        trade.ladder = _ladder_levels(trade, orders.get(trade.pk, []))
        trade.svg = ladder_svg(trade)
        so_max = min(trade.safety_orders_max or 0, 25)
        trade.ladder_slots = [i < (trade.safety_orders_filled or 0) for i in range(so_max)]
    return attach_liquidation_distance(trades)  # perpetual deals: mark price, distance to liquidation


def _filter_context(request: HttpRequest) -> tuple[dict, TradeFilterForm]:
    form = TradeFilterForm(request.GET)
    params = form.cleaned_data if form.is_valid() else {}
    return params, form


def _history(request: HttpRequest, params: dict):
    """The filtered deals of the page and the CSV (:func:`trades_history`)."""
    return trades_history(user=request.user, **{k: params.get(k) for k in FILTERS})


@login_required
@require_GET
def trades_list(request: HttpRequest) -> HttpResponse:
    """``/trades/``: the DCA tracker of open deals, then the filtered history (HTMX table)."""
    params, form = _filter_context(request)
    qs = _history(request, params)
    page = Paginator(qs, PAGE_SIZE).get_page(params.get("page") or 1)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "trades": page.object_list,
        "form": form,
        "filters": {k: request.GET.get(k, "") for k in FILTERS},
        "query": query.urlencode(),
    }
    if is_fragment(request) and request.headers.get("HX-Target") == "trades-table":
        response = render(request, "trading/trades/_table.html", context)
    else:
        context |= {
            "open_trades": decorate_trades(trades_for_user(request.user, status=Trade.Status.OPEN)),
            "bots": bots_by_name(request.user),
            "symbols": trade_symbols(request.user),
            "sides": Trade.Side.choices,
            "statuses": Trade.Status.choices,
        }
        template = "trading/trades/_tracker.html" if is_fragment(request) else "trading/trades/list.html"
        response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def trades_csv(request: HttpRequest) -> StreamingHttpResponse:
    """``/trades/export.csv``: the filtered deals (same filters as the page), columns
    :data:`CSV_COLUMNS`, newest first, streamed."""
    params, _ = _filter_context(request)
    qs = _history(request, params)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for trade in qs.iterator(chunk_size=500):
            yield writer.writerow(trade_csv_row(trade))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="market7-trades.csv"'
    return response
