"""Read-side of deals (``Trade``) for the trades pages, the bot detail page and the dashboard.

Every function that takes ``user`` goes through the ownership gate (``Trade.objects.for_user``):
another user's deal never appears, an anonymous user sees nothing. Querysets keep the model's
order, newest opened first (``-opened_at, -id``). Money fields are ``Decimal`` in the quote
currency; ``amount`` is in base units.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import DateTimeField, FloatField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from trading.models import Bot, Candle, Order, Trade
from trading.selectors.bots import BOT_BIG_FIELDS

#: Stands for "no bound" where a bot has no market time yet (the newest candle counts).
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def trades_for_user(user, *, bot: Bot | None = None, status: str | None = None) -> QuerySet[Trade]:
    """The user's deals, optionally of one ``bot`` and one ``status`` (open | closed), newest
    opened first, nothing joined. Also the 404 gate of a deal URL:
    ``get_object_or_404(trades_for_user(user, bot=bot), pk=trade_id)``."""
    qs = Trade.objects.for_user(user)
    if bot is not None:
        qs = qs.filter(bot=bot)
    if status:
        qs = qs.filter(status=status)
    return qs


def trades_history(
    *,
    user,
    bot: int | None = None,
    market: str | None = None,
    side: str | None = None,
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Trade]:
    """The user's deals for the history table and its CSV export, newest opened first, with
    bot, market and exchange joined. Filters (empty = any): ``bot`` (id), ``market`` (ccxt
    symbol), ``side`` (long|short), ``status`` (open|closed), ``date_from``/``date_to`` (UTC
    dates, inclusive, on the deal's open time)."""
    qs = Trade.objects.for_user(user).select_related("bot", "market", "market__exchange")
    qs = qs.defer(*(f"bot__{f}" for f in BOT_BIG_FIELDS))  # a row shows the bot's name only
    if bot:
        qs = qs.filter(bot_id=bot)
    if market:
        qs = qs.filter(market__symbol=market)
    if side:
        qs = qs.filter(side=side)
    if status:
        qs = qs.filter(status=status)
    if date_from:
        qs = qs.filter(opened_at__gte=datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to:
        qs = qs.filter(opened_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC))
    return qs.order_by("-opened_at", "-id")


def trades_with_current_price(qs: QuerySet[Trade]) -> QuerySet[Trade]:
    """``qs`` with bot (its JSON columns deferred) and market joined and ``current_close``
    annotated: the close (float, quote currency) of the last candle of the deal's market in the
    bot's timeframe at or before the bot's market time (``last_candle_at``; the newest candle
    before its first step), None without one — what :func:`trading.selectors.bots.last_prices`
    gives per bot, for all the deals in the same query (one probe of the candle index each)."""
    at = Coalesce(OuterRef("bot__last_candle_at"), Value(_END_OF_TIME, output_field=DateTimeField()))
    last = Candle.objects.filter(market=OuterRef("market_id"), timeframe=OuterRef("bot__timeframe"), open_time__lte=at)
    close = Subquery(last.order_by("-open_time").values("close")[:1], output_field=FloatField())
    joined = qs.select_related("bot", "market").defer(*(f"bot__{f}" for f in BOT_BIG_FIELDS))
    return joined.annotate(current_close=close)


def trade_symbols(user) -> list[str]:
    """The ccxt symbols the user has deals in, sorted, each once (the market filter's choices)."""
    return sorted(set(Trade.objects.for_user(user).values_list("market__symbol", flat=True)))


def orders_by_trade(trades: list[Trade]) -> dict[int, list[Order]]:
    """``{trade_id: [orders of the deal, oldest placed first]}`` for ``trades``, one query (none
    when ``trades`` is empty); a deal without orders is absent. The deals must have come
    through the gate (:func:`trades_for_user`): their orders are reached through them."""
    out: dict[int, list[Order]] = {}
    for order in Order.objects.filter(trade__in=[t.pk for t in trades]).order_by("placed_at", "id"):
        out.setdefault(order.trade_id, []).append(order)
    return out
