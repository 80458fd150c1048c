"""Reads for perpetual deals on pages: the mark price at the bot's market time, the distance of
the liquidation price from it, and whether that distance is near enough to flag.

``liquidation_distance_pct`` is the adverse move, in percent of the mark, that reaches the
liquidation price: ``(mark − LP) / mark × 100`` for a long, ``(LP − mark) / mark × 100`` for a
short (negative: already crossed). The mark is the close of the last stored mark candle whose
open time is at or before the bot's last processed candle (``Bot.last_candle_at``); without
mark candles it is None (the engine then uses the last price and records why).

**Near liquidation** (the dashboard's flag): an open perpetual deal whose distance is below
:func:`near_liquidation_threshold_pct` of its bot — twice the bot's liquidation buffer
(the guard stops adding to a position at the buffer; at twice the buffer the user still has
room to act), or :data:`NEAR_LIQUIDATION_DEFAULT_PCT` (10 %) when the buffer is 0 (off).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import FloatField, OuterRef, Subquery

from trading.models import Trade
from trading.models.market import MarkCandle

__all__ = [
    "NEAR_LIQUIDATION_BUFFER_FACTOR",
    "NEAR_LIQUIDATION_DEFAULT_PCT",
    "attach_liquidation_distance",
    "liquidation_distance_pct",
    "mark_closes",
    "near_liquidation",
    "near_liquidation_threshold_pct",
]

NEAR_LIQUIDATION_BUFFER_FACTOR = Decimal("2")
NEAR_LIQUIDATION_DEFAULT_PCT = Decimal("10")


def near_liquidation_threshold_pct(buffer_pct) -> Decimal:
    """Distance (percent of the mark) below which a deal of a bot with liquidation buffer
    ``buffer_pct`` (percent, 0 = off) is flagged: 2 × the buffer, or 10 % without one."""
    buffer = Decimal(str(buffer_pct or 0))
    return buffer * NEAR_LIQUIDATION_BUFFER_FACTOR if buffer > 0 else NEAR_LIQUIDATION_DEFAULT_PCT


def mark_closes(trade_ids: list[int]) -> dict[int, tuple[float | None, Decimal]]:
    """``{trade_id: (mark close or None, the bot's liquidation buffer %)}`` of the deals
    ``trade_ids`` (which must have come through the ownership gate), in one query whatever
    their number (none for no ids): each deal's mark is one probe of the mark-candle index
    (see the module doc)."""
    if not trade_ids:
        return {}
    last = MarkCandle.objects.filter(
        market=OuterRef("market_id"),
        timeframe=OuterRef("bot__timeframe"),
        open_time__lte=OuterRef("bot__last_candle_at"),
    )
    close = Subquery(last.order_by("-open_time").values("close")[:1], output_field=FloatField())
    rows = Trade.objects.filter(pk__in=trade_ids).annotate(mark=close)
    return {pk: (mark, buffer) for pk, mark, buffer in rows.values_list("pk", "mark", "bot__liquidation_buffer_pct")}


def liquidation_distance_pct(side: str, liquidation_price: Decimal | None, mark: Decimal | None) -> Decimal | None:
    """Percent of ``mark`` the price must move against a ``side`` position to reach
    ``liquidation_price``; None without either."""
    if liquidation_price is None or not mark:
        return None
    mark = Decimal(str(mark))
    move = mark - liquidation_price if side == Trade.Side.LONG else liquidation_price - mark
    return move / mark * 100


def attach_liquidation_distance(trades: list[Trade]) -> list[Trade]:
    """Set ``mark_price``, ``liq_distance_pct``, ``liq_threshold_pct`` and ``near_liquidation``
    (bool) on each deal of ``trades``: for open perpetual deals (with a leverage) from one query
    (:func:`mark_closes`), None / False on the others."""
    perps = [t for t in trades if t.leverage is not None and t.status == Trade.Status.OPEN]
    marks = mark_closes([t.pk for t in perps])
    for t in trades:
        t.mark_price = t.liq_distance_pct = t.liq_threshold_pct = None
        t.near_liquidation = False
        if t.pk in marks:
            t.mark_price, buffer = marks[t.pk]
            t.liq_distance_pct = liquidation_distance_pct(t.side, t.liquidation_price, t.mark_price)
            t.liq_threshold_pct = near_liquidation_threshold_pct(buffer)
            t.near_liquidation = t.liq_distance_pct is not None and t.liq_distance_pct < t.liq_threshold_pct
    return trades


def near_liquidation(trades: list[Trade]) -> list[Trade]:
    """The deals of ``trades`` (decorated by :func:`attach_liquidation_distance`) flagged near
    liquidation, closest first (no query)."""
    return sorted(
        (t for t in trades if getattr(t, "near_liquidation", False)), key=lambda t: (t.liq_distance_pct, t.pk)
    )
