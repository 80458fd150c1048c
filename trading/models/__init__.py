"""Trading models: market data (``market.py``) and bots, orders, fills, trades (``bots.py``)."""

from trading.models.bots import Bot, BotEvent, EquitySnapshot, Fill, Order, PaperBalance, Trade
from trading.models.market import Candle, Exchange, Market, Timeframe

__all__ = [
    "Bot",
    "BotEvent",
    "Candle",
    "EquitySnapshot",
    "Exchange",
    "Fill",
    "Market",
    "Order",
    "PaperBalance",
    "Timeframe",
    "Trade",
]
