"""Reads for perpetual deals on pages: the mark price at the bot's market time and the
distance of the liquidation price from it.

``liquidation_distance_pct`` is the adverse move, in percent of the mark, that reaches the
liquidation price: ``(mark − LP) / mark × 100`` for a long, ``(LP − mark) / mark × 100`` for a
short (negative: already crossed). The mark is the close of the last stored mark candle whose
open time is at or before the bot's last processed candle (``Bot.last_candle_at``); without
mark candles it is None (the engine then uses the last price and records why).
"""

from __future__ import annotations

from decimal import Decimal

from trading.models import Trade
from trading.models.market import MarkCandle

__all__ = ["attach_liquidation_distance", "liquidation_distance_pct", "mark_close"]


def mark_close(trade: Trade) -> Decimal | None:
    """The mark close of ``trade``'s market at its bot's market time (see the module doc)."""
    bot = trade.bot
    if bot.last_candle_at is None:
        return None
    return (
        MarkCandle.objects.filter(market_id=trade.market_id, timeframe=bot.timeframe, open_time__lte=bot.last_candle_at)
        .order_by("-open_time")
        .values_list("close", flat=True)
        .first()
    )


def liquidation_distance_pct(side: str, liquidation_price: Decimal | None, mark: Decimal | None) -> Decimal | None:
    """Percent of ``mark`` the price must move against a ``side`` position to reach
    ``liquidation_price``; None without either."""
    if liquidation_price is None or not mark:
        return None
    mark = Decimal(str(mark))
    move = mark - liquidation_price if side == Trade.Side.LONG else liquidation_price - mark
    return move / mark * 100


def attach_liquidation_distance(trades: list[Trade]) -> list[Trade]:
    """Set ``mark_price`` and ``liq_distance_pct`` on each open perpetual deal of ``trades``
    (one query per deal; only deals with a leverage); others get None."""
    for t in trades:
        t.mark_price = t.liq_distance_pct = None
        if t.leverage is not None and t.status == Trade.Status.OPEN:
            t.mark_price = mark_close(t)
            t.liq_distance_pct = liquidation_distance_pct(t.side, t.liquidation_price, t.mark_price)
    return trades
