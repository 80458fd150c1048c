"""Read-side of one deal (the deal page): the deal, its orders and fills, its ladder, its
decisions and its candlestick chart.

Every function takes a deal that came through the ownership gate (:func:`deal_for_user`, i.e.
``Trade.objects.for_user``); their orders, fills and events are reached through it. Prices and
amounts are ``Decimal`` (quote / base units) except the chart's, which are floats for the
browser (epoch **seconds** UTC for lightweight-charts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, Q

from trading.models import Bot, BotEvent, Candle, Fill, Order, Trade
from trading.selectors.trades import trades_for_user

CHART_BEFORE = 60  # candles shown before the deal opened
CHART_AFTER = 20  # and after it closed
CHART_MAX = 1500


def deal_for_user(*, user, bot: Bot, trade_id: int) -> Trade:
    """The deal ``trade_id`` of ``bot`` if ``user`` owns it, with bot and market joined.
    Raises ``Trade.DoesNotExist`` otherwise (a 404 in views)."""
    return trades_for_user(user, bot=bot).select_related("bot", "market", "market__exchange").get(pk=trade_id)


def deal_orders(*, trade: Trade) -> list[Order]:
    """The deal's orders, oldest placed first, each with ``fills`` (oldest first) prefetched."""
    return list(
        Order.objects.filter(bot_id=trade.bot_id, deal_id=trade.deal_id)
        .prefetch_related(Prefetch("fills", queryset=Fill.objects.order_by("time", "seq")))
        .order_by("placed_at", "id")
    )


def deal_events(*, trade: Trade, limit: int = 200) -> list[BotEvent]:
    """The bot's decisions about this deal, in market time order (oldest first): decision rows
    whose payload names the deal, and the rules that decided on the deal's market while it was
    open (from the candle before it opened to its close), plus its opened / closed rows.
    Status rows (wall clock: start, stop, "close requested") are not in it."""
    bot = trade.bot
    tf = timedelta(milliseconds=bot.timeframe_ms)
    window = Q(symbol=trade.market.symbol, time__gte=trade.opened_at - tf)
    if trade.closed_at is not None:
        window &= Q(time__lte=trade.closed_at)
    kinds = [BotEvent.Kind.DECISION, BotEvent.Kind.TRADE_OPENED, BotEvent.Kind.TRADE_CLOSED]
    qs = BotEvent.objects.filter(bot=bot, kind__in=kinds).filter(Q(payload__deal_id=trade.deal_id) | window)
    return list(qs.order_by("time", "id")[:limit])


@dataclass
class LadderRow:
    """One line of the deal's ladder. ``kind``: ``base``, ``safety`` (automatic), ``manual``
    (added funds), ``take_profit``, ``stop_loss`` or ``close``; ``status``: ``filled``,
    ``resting`` (an open order), ``planned`` (a level the strategy will place later) or
    ``canceled``. ``price`` quote, ``amount`` base, ``quote`` = price x amount."""

    kind: str
    label: str
    status: str
    price: Decimal | None
    amount: Decimal | None
    quote: Decimal | None


_KIND = {
    "base_order": ("base", "Base order"),
    "safety_order": ("safety", "Safety order"),
    "manual_safety_order": ("manual", "Added funds"),
    "take_profit": ("take_profit", "Take profit"),
    "stop_loss": ("stop_loss", "Stop loss"),
    "manual_close": ("close", "Close at market"),
}


def deal_ladder(*, trade: Trade, orders: list[Order]) -> list[LadderRow]:
    """The deal's ladder, highest price first: filled entries (base, safety, added funds) at
    their fill price, resting orders at their price, and the strategy's planned safety levels
    not placed yet (from ``trade.info["ladder"]``, open deals only). Safety orders are numbered
    by matching their limit price to the strategy's levels. Canceled and rejected orders are
    left out (they are in the orders table)."""
    levels = {
        item["so_index"]: float(item["price"])
        for item in (trade.info or {}).get("ladder") or []
        if isinstance(item, dict) and not item.get("manual") and item.get("price") is not None
    }
    rows: list[LadderRow] = []
    placed: set = set()
    manual = 0
    for order in orders:
        kind, label = _KIND.get(order.tag, ("other", order.tag or order.type))
        suffix = order.tag[len("safety_order") :].strip("_") if order.tag.startswith("safety_order") else ""
        if suffix:  # an order tagged with its index (``safety_order_3``)
            kind, label = "safety", f"Safety order {suffix}"
            placed.add(int(suffix) if suffix.isdigit() else suffix)
        if order.status == Order.Status.CLOSED:
            status, price, amount = "filled", order.average or order.price, order.filled
        elif order.status == Order.Status.OPEN:
            status, price, amount = "resting", order.price or order.stop_price, order.amount
        else:
            continue
        if kind == "safety" and order.price is not None:
            n = next((k for k, lv in levels.items() if abs(lv - float(order.price)) <= 1e-9 * max(1.0, lv)), None)
            if n is not None:
                placed.add(n)
                label = f"Safety order {n}"
        elif kind == "manual":
            manual += 1
            label = f"Added funds {manual}"
        quote = price * amount if price is not None and amount is not None else None
        rows.append(LadderRow(kind, label, status, price, amount, quote))
    if trade.status == Trade.Status.OPEN:
        for item in (trade.info or {}).get("ladder") or []:
            if not isinstance(item, dict) or item.get("status") != "planned" or item.get("manual"):
                continue
            n = item.get("so_index")
            if n in placed or item.get("price") is None:
                continue
            quote = Decimal(str(item["quote"])) if item.get("quote") is not None else None
            rows.append(LadderRow("safety", f"Safety order {n}", "planned", Decimal(str(item["price"])), None, quote))
    rows.sort(key=lambda r: -(r.price or 0))
    return rows


def deal_chart(*, trade: Trade) -> dict[str, Any]:
    """Chart data of the deal page: ``{"symbol", "candles": [{"time": epoch s, "open", "high",
    "low", "close", "volume"}]}`` — the bot's candles from
    :data:`CHART_BEFORE` candles before the deal opened to :data:`CHART_AFTER` after it closed
    (an open deal: to the bot's market time), at most :data:`CHART_MAX`; fill markers are built
    by the view from :func:`deal_orders`."""
    bot = trade.bot
    tf = timedelta(milliseconds=bot.timeframe_ms)
    start = trade.opened_at - CHART_BEFORE * tf
    qs = Candle.objects.filter(market=trade.market, timeframe=bot.timeframe, open_time__gte=start)
    end = trade.closed_at + CHART_AFTER * tf if trade.closed_at else bot.last_candle_at
    if end is not None:
        qs = qs.filter(open_time__lte=end)
    rows = qs.order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume")[:CHART_MAX]
    candles = [
        {"time": int(t.timestamp()), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in rows
    ]
    return {"symbol": trade.market.symbol, "candles": candles}
