"""The trading core's engine: feeds, orders, the simulated broker, the portfolio, the loop.

Pure numpy/pandas (no Django). Typical use::

    from strategies.engine import Engine, Feed, MarketSpec, SimulatedBroker
    from strategies.registry import create_strategy

    feed = Feed.from_csv_dir("../shared/data/ohlcv", ["BTC/USDT", "ETH/USDT"], "1h")
    markets = [MarketSpec.binance_like(s, feed.candles(s).close[0]) for s in feed.symbols]
    engine = Engine(create_strategy("smart_dca", {...}), markets, SimulatedBroker(slippage_bps=5), capital=10_000)
    result = engine.run(feed)                       # backtest
    result = engine.run(feed, state=saved_state)    # one live step: only candles after the state
"""

from .broker import Broker, SimulatedBroker
from .engine import Engine, EngineState, RunResult, StepContext
from .feed import Candles, Feed, FeedView, load_csv
from .market import MarketSpec
from .orders import CancelIntent, ClosedTrade, Deal, Fill, Liquidity, Order, OrderIntent, OrderStatus, OrderType, Side
from .portfolio import OpenDeal, Portfolio, Position
from .types import Decision, MarketDataView, Outcome

__all__ = [
    "Broker",
    "SimulatedBroker",
    "Engine",
    "EngineState",
    "RunResult",
    "StepContext",
    "Candles",
    "Feed",
    "FeedView",
    "load_csv",
    "MarketSpec",
    "CancelIntent",
    "ClosedTrade",
    "Deal",
    "Fill",
    "Liquidity",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "Side",
    "OpenDeal",
    "Portfolio",
    "Position",
    "Decision",
    "MarketDataView",
    "Outcome",
]
