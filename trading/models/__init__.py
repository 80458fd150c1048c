"""Trading models: market data (``market.py``), bots, orders, fills, trades (``bots.py``) and
the per-user watchlist (``watchlist.py``)."""

from trading.models.bots import Bot, BotEvent, BotPreset, EquitySnapshot, Fill, Order, PaperBalance, Trade
from trading.models.market import Candle, Exchange, FundingRate, MarkCandle, Market, Timeframe
from trading.models.watchlist import WatchlistEntry

__all__ = [
    "Bot",
    "BotEvent",
    "BotPreset",
    "Candle",
    "EquitySnapshot",
    "Exchange",
    "Fill",
    "FundingRate",
    "MarkCandle",
    "Market",
    "Order",
    "PaperBalance",
    "Timeframe",
    "Trade",
    "WatchlistEntry",
]
