"""Trading models: market data (``market.py``) and bots, orders, fills, trades (``bots.py``)."""

from trading.models.market import Candle, Exchange, Market, Timeframe

__all__ = ["Candle", "Exchange", "Market", "Timeframe"]
