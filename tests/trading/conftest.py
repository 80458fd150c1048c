"""Shared fixtures and helpers of the tests/trading modules.

The fixtures are found by pytest for every module in this folder; the plain helpers (constants,
factories) are imported explicitly, e.g. ``from tests.trading.conftest import T0, H, make_bot``.

* Page tests (bots, dashboard, trades): :func:`market`, :func:`bot_with_trades`, :func:`make_bot`.
* Bot services, API, command, runner and replay tests: :func:`candles`, :func:`no_kick`,
  :func:`load_bundled`, :func:`make_replay_bot`, :func:`step_at`, :func:`counts`.
* Market pages and API on real candles: :func:`real_markets`, :func:`load_real_market`,
  :func:`expected_stats`.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from django.conf import settings

from market7.timeframes import dt_to_ms
from tests.conftest import require
from trading.models import Bot, Candle, Exchange, Market

# ============================================================================ page tests
# A market with real-shaped candles, a bot with one open and one closed deal, orders, fills,
# decisions and equity snapshots. Exact values so the pages can be asserted to the digit.

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def market(db):
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    m = Market.objects.create(exchange=ex, symbol="BTC/USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT")
    closes = [42000, 41800, 41500, 41000, 40500, 40800, 41200, 41700, 42300, 42600]
    Candle.objects.bulk_create(
        Candle(
            market=m, timeframe="1h", open_time=T0 + i * H, open=c + 10, high=c + 100, low=c - 100, close=c, volume=12.5
        )
        for i, c in enumerate(closes)
    )
    return m


def make_bot(owner, market, **kw):
    fields = {
        "name": "Alpha DCA",
        "strategy": "smart_dca",
        "params": {"base_order_size": 20.0},
        "timeframe": "1h",
        "capital": Decimal("1000"),
        "feed": Bot.FeedKind.REPLAY,
        "replay_start": T0,
        "replay_clock": T0,
        "status": Bot.Status.CREATED,
    } | kw
    bot = Bot.objects.create(owner=owner, **fields)
    bot.markets.set([market])
    return bot


@pytest.fixture
def bot_with_trades(user, market):
    """alice's running bot: equity 1012.5, realized 10, unrealized 2.5, last candle T0+5h
    (close 40800); one open deal (avg 41000, 0.01 BTC, 1/3 SO) and one closed (+10 USDT)."""
    from trading.models import BotEvent, EquitySnapshot, Fill, Order, Trade

    bot = make_bot(
        user,
        market,
        status=Bot.Status.RUNNING,
        equity=Decimal("1012.5"),
        realized_pnl=Decimal("10"),
        unrealized_pnl=Decimal("2.5"),
        last_candle_at=T0 + 5 * H,
    )
    closed = Trade.objects.create(
        bot=bot,
        market=market,
        deal_id="d1",
        side="long",
        status="closed",
        opened_at=T0,
        closed_at=T0 + 2 * H,
        avg_entry=Decimal("40000"),
        amount=Decimal("0.005"),
        cost=Decimal("200"),
        fees=Decimal("0.4"),
        realized_pnl=Decimal("10"),
        exit_price=Decimal("42080"),
        exit_reason="take_profit: +5.2% >= 5%",
        safety_orders_filled=0,
        safety_orders_max=3,
    )
    open_ = Trade.objects.create(
        bot=bot,
        market=market,
        deal_id="d2",
        side="long",
        status="open",
        opened_at=T0 + 3 * H,
        avg_entry=Decimal("41000"),
        amount=Decimal("0.01"),
        cost=Decimal("410"),
        fees=Decimal("0.41"),
        take_profit_price=Decimal("43050"),
        safety_orders_filled=1,
        safety_orders_max=3,
    )
    o1 = Order.objects.create(
        bot=bot,
        market=market,
        trade=open_,
        client_order_id="m7b-1",
        side="buy",
        amount=Decimal("0.005"),
        filled=Decimal("0.005"),
        average=Decimal("41500"),
        status="closed",
        tag="base_order",
        deal_id="d2",
        placed_at=T0 + 2 * H,
    )
    Fill.objects.create(order=o1, price=Decimal("41500"), amount=Decimal("0.005"), time=T0 + 3 * H)
    o2 = Order.objects.create(
        bot=bot,
        market=market,
        trade=open_,
        client_order_id="m7b-2",
        side="buy",
        type="limit",
        price=Decimal("40500"),
        amount=Decimal("0.005"),
        filled=Decimal("0.005"),
        average=Decimal("40500"),
        status="closed",
        tag="safety_order_1",
        deal_id="d2",
        placed_at=T0 + 3 * H,
    )
    Fill.objects.create(order=o2, price=Decimal("40500"), amount=Decimal("0.005"), time=T0 + 4 * H)
    Order.objects.create(
        bot=bot,
        market=market,
        trade=open_,
        client_order_id="m7b-3",
        side="buy",
        type="limit",
        price=Decimal("39800"),
        amount=Decimal("0.01"),
        status="open",
        tag="safety_order_2",
        deal_id="d2",
        placed_at=T0 + 4 * H,
    )
    BotEvent.objects.create(
        bot=bot,
        time=T0 + 1 * H,
        kind="decision",
        rule="spend_guard",
        outcome="block",
        reason="spend_guard: deal spend 41.2% > cap 40%",
        symbol="BTC/USDT",
    )
    BotEvent.objects.create(
        bot=bot,
        time=T0 + 2 * H,
        kind="decision",
        rule="confidence",
        outcome="allow",
        reason="score 0.71 >= 0.6",
        symbol="BTC/USDT",
    )
    BotEvent.objects.create(
        bot=bot,
        time=T0 + 2 * H,
        kind="trade_closed",
        rule="take_profit",
        outcome="exit",
        reason="take_profit: +5.2% >= 5%",
        symbol="BTC/USDT",
    )
    for i, eq in enumerate(["1000", "1004", "1010", "1008", "1011", "1012.5"]):
        EquitySnapshot.objects.create(bot=bot, time=T0 + i * H, equity=Decimal(eq))
    bot.closed_trade, bot.open_trade = closed, open_
    return bot


# ============================================================================ bot tests
# Real data: slices of the bundled Binance 1h candles (``trading/data/bundled``) are loaded
# into Candle rows with the import service's own reader and upsert.

REPLAY_START = datetime(2025, 4, 1, tzinfo=UTC)
DATA_END = datetime(2025, 5, 1, tzinfo=UTC)  # slices stop before this open time (exclusive)
HOUR = timedelta(hours=1)
DCA_PARAMS = {"max_active_deals": 2, "take_profit": 1.0, "stop_loss": 5.0}


def load_bundled(filename: str, *, until: datetime | None = DATA_END) -> Market:
    """Load ``trading/data/bundled/<filename>`` (e.g. ``BTCUSDT-1h.csv.gz``) up to ``until``
    (exclusive) into Candle rows of binance; returns the Market."""
    from trading.services.candles import candles_upsert, parse_candle_filename, read_candle_file
    from trading.services.markets import market_ensure

    symbol, timeframe = parse_candle_filename(filename)
    candles, rejections, _ = read_candle_file(settings.MARKET7_BUNDLED_DATA / filename, timeframe=timeframe)
    assert rejections == []
    if until is not None:
        candles = candles.take(candles.time < dt_to_ms(until))
    market = market_ensure(exchange="binance", exchange_symbol=symbol)
    candles_upsert(market=market, timeframe=timeframe, candles=candles)
    return market


@pytest.fixture
def candles(db):
    """BTC/USDT and ETH/USDT 1h, 2025-03-05 .. 2025-04-30 23:00 (real Binance data)."""
    return {m.symbol: m for m in (load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz"))}


@pytest.fixture
def no_kick():
    """Keep bot_start & co. from enqueueing on the real broker (they do it on commit): the
    ``bots_due`` kick (yielded) and a started bot's first step. A Celery worker another test
    left running would otherwise step the bot behind the test's back."""
    with no_enqueue() as kick:
        yield kick


@contextlib.contextmanager
def no_enqueue():
    """Patch the two enqueues of the bot services (``trading.services.runner.bots_kick`` and
    ``bot_step_enqueue``); yields the ``bots_kick`` mock."""
    with (
        mock.patch("trading.services.runner.bots_kick") as kick,
        mock.patch("trading.services.runner.bot_step_enqueue"),
    ):
        yield kick


def make_replay_bot(
    user, *, name="replay", markets=("BTC/USDT", "ETH/USDT"), params=None, start=True, speed=3600.0, capital="1000",
    risk=None,
):  # fmt: skip
    from trading.services import bots as svc

    bot = svc.bot_create(
        user=user, name=name, strategy="smart_dca", markets=list(markets), capital=capital,
        params=DCA_PARAMS if params is None else params, feed="replay", replay_start=REPLAY_START, replay_speed=speed,
        risk=risk,
    )  # fmt: skip
    if start:
        with no_enqueue():
            bot = svc.bot_start(user=user, bot=bot)
    return Bot.objects.get(pk=bot.pk)


def step_at(bot: Bot, seconds: float):
    """One bot step with the wall clock ``seconds`` after the bot's replay clock started (at
    3600x, ``seconds`` = market hours since the replay start)."""
    from trading.services.runner import bot_step

    bot.refresh_from_db()
    return bot_step(bot_id=bot.pk, now=bot.replay_clock_wall + timedelta(seconds=seconds))


def counts(bot: Bot) -> dict[str, int]:
    from trading.models import BotEvent, EquitySnapshot, Fill, Order, PaperBalance, Trade

    return {
        "orders": Order.objects.filter(bot=bot).count(),
        "fills": Fill.objects.filter(order__bot=bot).count(),
        "trades": Trade.objects.filter(bot=bot).count(),
        "events": BotEvent.objects.filter(bot=bot).exclude(kind="status").count(),
        "balances": PaperBalance.objects.filter(bot=bot).count(),
        "snapshots": EquitySnapshot.objects.filter(bot=bot).count(),
    }


# ============================================================================ market tests
# Candles come from the real Binance files (``../shared/data/ohlcv``; the bundled sample when
# that is absent): the last :data:`ROWS` rows of each file, inserted with ``bulk_create``.
# Expected figures are computed here with pandas, independently of the selectors.

ROWS = 500

# (file folder, file base name, unified symbol, market type, timeframe)
REAL_MARKETS = [
    ("spot", "BTCUSDT", "BTC/USDT", "spot", "1h"),
    ("spot", "ETHUSDT", "ETH/USDT", "spot", "1h"),
    ("spot", "SOLUSDT", "SOL/USDT", "spot", "1h"),
    ("futures", "BTCUSDT", "BTC/USDT:USDT", "swap", "1h"),
]


def real_csv(folder: str, name: str, timeframe: str) -> Path:
    """Path of a real OHLCV file: shared data first, then the bundled sample (spot only)."""
    shared = Path(settings.MARKET7_SHARED_DATA) / "ohlcv" / folder / f"{name}-{timeframe}.csv.gz"
    if shared.exists():
        return shared
    bundled = Path(settings.MARKET7_BUNDLED_DATA) / f"{name}-{timeframe}.csv.gz"
    require(folder == "spot" and bundled.exists(), f"real candle file {shared} missing")
    return bundled


def load_real_market(folder, name, symbol, type_, timeframe, rows=ROWS, exchange_code="binance"):
    """Create the market (and exchange) and bulk-insert the last ``rows`` candles of the real
    file. Returns ``(market, frame)`` where ``frame`` holds exactly the inserted rows."""
    frame = pd.read_csv(real_csv(folder, name, timeframe)).tail(rows).reset_index(drop=True)
    exchange, _ = Exchange.objects.get_or_create(code=exchange_code, defaults={"name": exchange_code.title()})
    base, rest = symbol.split("/")
    quote, _, settle = rest.partition(":")
    market, _ = Market.objects.get_or_create(
        exchange=exchange,
        symbol=symbol,
        defaults={"base": base, "quote": quote, "settle": settle, "type": type_, "exchange_symbol": name},
    )
    Candle.objects.bulk_create(
        [
            Candle(
                market=market,
                timeframe=timeframe,
                open_time=datetime.fromtimestamp(r.open_time / 1000, tz=UTC),
                open=r.open,
                high=r.high,
                low=r.low,
                close=r.close,
                volume=r.volume,
            )
            for r in frame.itertuples()
        ],
        batch_size=1000,
    )
    return market, frame


@pytest.fixture
def real_markets(db):
    """``{symbol: (market, frame)}`` for :data:`REAL_MARKETS`."""
    return {spec[2]: load_real_market(*spec) for spec in REAL_MARKETS}


def expected_stats(frame: pd.DataFrame) -> dict:
    """24 h figures straight from the file rows (1h candles): see trading.selectors.markets."""
    last = frame.iloc[-1]
    ref = frame[frame.open_time == last.open_time - 24 * 3_600_000].iloc[0]
    window = frame[frame.open_time > last.open_time - 24 * 3_600_000]
    assert len(window) == 24
    return {
        "last_close": float(last.close),
        "change_pct": (float(last.close) / float(ref.close) - 1) * 100,
        "quote_volume": float((window.close * window.volume).sum()),
        "high": float(window.high.max()),
        "low": float(window.low.min()),
    }
