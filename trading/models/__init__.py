"""Trading models: market data (``market.py``), bots, orders, fills, trades (``bots.py``) and
the per-user watchlist (``watchlist.py``), exchange accounts for live trading
(``exchange_accounts.py``), 3Commas bots that receive our deal decisions (``three_commas.py``)."""

from trading.models.bots import Bot, BotEvent, BotPreset, EquitySnapshot, Fill, Order, PaperBalance, Trade
from trading.models.exchange_accounts import ExchangeAccount
from trading.models.market import Candle, Exchange, FundingRate, MarkCandle, Market, Timeframe
from trading.models.three_commas import ThreeCommasConnection, ThreeCommasSignal
from trading.models.watchlist import WatchlistEntry

__all__ = [
    "Bot",
    "BotEvent",
    "BotPreset",
    "Candle",
    "EquitySnapshot",
    "Exchange",
    "ExchangeAccount",
    "Fill",
    "FundingRate",
    "MarkCandle",
    "Market",
    "Order",
    "PaperBalance",
    "Timeframe",
    "ThreeCommasConnection",
    "ThreeCommasSignal",
    "Trade",
    "WatchlistEntry",
]
