"""Feeds of bots: where "now" is and which closed candles a step may see.

Two feeds, one :class:`~strategies.engine.feed.Feed` shape for the engine:

- **live** — market time is the wall clock. Before a step, :func:`feed_live_poll` asks the
  exchange (ccxt ``fetch_ohlcv`` through ``trading.services.candles.candles_fetch``) for the
  candles closed since the bot's last one and stores them as ``Candle`` rows (a perpetual
  bot: also ``MarkCandle`` and ``FundingRate`` rows of its swap markets). An unreachable
  exchange raises :class:`FeedError` ``"cannot reach binance: ..."``, which the runner turns
  into the bot's ``error`` status with that message.
- **replay** — market time is the bot's replay clock (``Bot.replay_now``):
  ``replay_clock + (wall time since the clock (re)started) x replay_speed``, frozen while the
  bot is paused or stopped. The stored candles are the market: no network at all. When the
  clock passes the last stored candle the bot stays ``running`` and idle, with the status
  message ``"replay reached the end of the stored data (...)"``; importing more candles lets
  it go on.

Either way a step sees only **closed** candles: open time ``<= now - timeframe``.

Feed window: every step's feed starts at the same candle, ``Bot`` start minus
:data:`WARMUP_CANDLES` (``feed_origin_ms``) — the engine computes indicators over the whole
feed, so feeds that start at the same candle give bit-identical decisions to a backtest
(``strategies.engine.engine``). After :data:`MAX_FEED_CANDLES` candles the window slides
(the origin moves forward) to bound step cost; a bot that ran that long still decides on
:data:`MAX_FEED_CANDLES` of history.
"""

from __future__ import annotations

from datetime import datetime

from market7.timeframes import dt_to_ms
from strategies.engine.feed import Candles, Feed
from trading.models import Bot, Market
from trading.selectors.candles import candles_arrays

WARMUP_CANDLES = 500
MAX_FEED_CANDLES = 20_000


class FeedError(Exception):
    """The feed cannot deliver candles (exchange unreachable, ...); the message is for users."""


def feed_now(bot: Bot, wall: datetime) -> datetime:
    """Market "now" of the bot's feed at wall time ``wall``: the wall clock (live) or the replay
    clock (replay)."""
    if bot.feed == Bot.FeedKind.REPLAY:
        now = bot.replay_now(wall)
        return now if now is not None else wall
    return wall


def last_closed_open_ms(now_ms: int, tf_ms: int) -> int:
    """Open time of the newest candle closed at ``now_ms``: the largest multiple of the
    timeframe ``<= now_ms - tf_ms``."""
    t = now_ms - tf_ms
    return t - t % tf_ms


def feed_origin_ms(bot: Bot, warmup: int = WARMUP_CANDLES) -> int:
    """Open time of the first candle of every step's feed: the bot's first traded candle minus
    ``warmup`` candles (see the module doc)."""
    tf = bot.timeframe_ms
    first = trade_start_ms(bot)
    return first - warmup * tf


def trade_start_ms(bot: Bot) -> int:
    """Open time of the first candle the bot decides on (set when it started)."""
    if bot.feed == Bot.FeedKind.REPLAY and bot.replay_start is not None:
        return dt_to_ms(bot.replay_start)
    if bot.started_at is not None:
        tf = bot.timeframe_ms
        s = dt_to_ms(bot.started_at)
        return s - s % tf
    raise FeedError("the bot has not started")


def _candles(market: Market, timeframe: str, start_ms: int, end_ms: int) -> Candles:
    """Stored candles with ``start_ms <= open_time <= end_ms`` (epoch ms), as engine arrays."""
    a = candles_arrays(market=market, timeframe=timeframe, start=start_ms, end=end_ms + 1)
    return Candles.from_arrays(a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"])


def feed_build(bot: Bot, markets: list[Market], *, until_ms: int, origin_ms: int | None = None) -> Feed:
    """The engine feed for one step: each market's stored candles from the feed origin (see
    module doc; capped to the last :data:`MAX_FEED_CANDLES`) through open time ``until_ms``.
    ``markets`` may include watched-only markets (e.g. Smart DCA's BTC filter market). A
    perpetual bot's feed also carries its swap markets' mark candles and funding events
    (:func:`trading.services.perpetuals.perpetual_feed_parts`)."""
    tf = bot.timeframe_ms
    origin = feed_origin_ms(bot) if origin_ms is None else origin_ms
    origin = max(origin, until_ms - (MAX_FEED_CANDLES - 1) * tf)
    data = {m.symbol: _candles(m, bot.timeframe, origin, until_ms) for m in markets}
    if bot.leverage is None:
        return Feed(bot.timeframe, data)
    # A perpetual bot: the mark candles and funding events of its swap markets from the same
    # origin, as a swap backtest's feed has them (strategies.services.backtests._feed).
    from trading.services.perpetuals import perpetual_feed_parts

    swaps = [m for m in markets if m.type == Market.Type.SWAP]
    mark, funding = perpetual_feed_parts(swaps, bot.timeframe, origin, until_ms)
    return Feed(bot.timeframe, data, mark=mark, funding=funding)


def watched_markets(bot: Bot, markets: list[Market]) -> list[Market]:
    """Markets the strategy reads but does not trade, on the bot's exchange: Smart DCA's BTC
    market filter (``btc_market_filter_enabled`` + ``btc_symbol``). Unknown symbol: FeedError."""
    params = bot.params or {}
    if not params.get("btc_market_filter_enabled"):
        return []
    symbol = params.get("btc_symbol") or "BTC/USDT"
    if any(m.symbol == symbol for m in markets) or not markets:
        return []
    market = Market.objects.filter(exchange_id=markets[0].exchange_id, symbol=symbol).select_related("exchange").first()
    if market is None:
        raise FeedError(
            f"btc_market_filter needs {symbol} candles; that market is not known on {markets[0].exchange.code}"
        )
    return [market]


def reference_markets(markets: list[Market], symbols) -> list[Market]:
    """Markets of ``symbols`` (e.g. an ML model's BTC/USDT reference) on the bots' exchange that
    ``markets`` do not hold yet; a symbol not stored there is left out (its features are then
    missing values, which the model tolerates)."""
    have = {m.symbol for m in markets}
    want = [s for s in symbols if s not in have]
    if not want or not markets:
        return []
    return list(Market.objects.filter(exchange_id=markets[0].exchange_id, symbol__in=want).select_related("exchange"))


def feed_live_poll(*, bot: Bot, markets: list[Market], now: datetime) -> None:
    """Fetch and store the live candles closed since the bot's last processed candle (ccxt,
    through ``candles_fetch``). A perpetual bot (``bot.leverage`` set) also fetches, for its
    swap markets, the mark-price candles (``candles_fetch(price="mark")``) and the funding
    events (``funding_fetch``) since then, so its step checks liquidation on the mark and pays
    funding as a replay of the same window would (:func:`feed_build`). Exchange unreachable or
    refusing: :class:`FeedError` (the runner puts the bot in ``error`` with its message)."""
    from trading.exchanges import ExchangeRequestError, ExchangeUnavailable
    from trading.services.candle_fetch import funding_fetch
    from trading.services.candles import CandleFetchError, candles_fetch

    if not markets:
        return
    # From the feed origin (warm-up history); candles_fetch and funding_fetch resume after the
    # last stored row, so after the first step this asks only for the new ones.
    since = feed_origin_ms(bot)
    exchange = markets[0].exchange.code
    by_type: dict[str, list[str]] = {}
    for m in markets:
        by_type.setdefault(m.type, []).append(m.symbol)
    swaps = by_type.get(Market.Type.SWAP, []) if bot.leverage is not None else []
    try:
        for market_type, symbols in by_type.items():
            candles_fetch(
                exchange=exchange, symbols=symbols, timeframe=bot.timeframe, since=since, market_type=market_type
            )
        if swaps:
            candles_fetch(
                exchange=exchange, symbols=swaps, timeframe=bot.timeframe, since=since, market_type="swap", price="mark"
            )
            funding_fetch(exchange=exchange, symbols=swaps, since=since)
    except ExchangeUnavailable as exc:
        raise FeedError(str(exc)) from exc  # "cannot reach binance: ..."
    except (ExchangeRequestError, CandleFetchError) as exc:
        raise FeedError(f"{exchange}: {exc}") from exc


def replay_end_ms(markets: list[Market], timeframe: str) -> int | None:
    """Open time of the newest candle stored for any of ``markets`` (the replay's end), or None."""
    from trading.selectors.bots import markets_last_open

    last = markets_last_open([m.pk for m in markets], timeframe)
    return max((dt_to_ms(t) for t in last.values()), default=None)
