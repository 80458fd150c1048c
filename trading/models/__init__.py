"""Trading models: market data (``market.py``) and bots, orders, fills, trades (``bots.py``)."""

from trading.models.bots import Bot, BotEvent, BotPreset, EquitySnapshot, Fill, Order, PaperBalance, Trade
from trading.models.market import Candle, Exchange, Market, Timeframe

__all__ = [
    "Bot",
    "BotEvent",
    "BotPreset",
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
