"""Bots and what they produce: orders, fills, trades (deals), the decision log, paper balances
and equity snapshots.

Money (prices, amounts, costs, fees, P&L, balances) is ``Decimal`` stored as NUMERIC(28, 12)
(DESIGN.md §3), rounded to the market's precision by the broker that wrote it. Times named
``*_at``/``time`` on orders, fills, trades, events and snapshots are **market time** — the open
time (UTC) of the candle the engine decided on — so a replayed bot's history reads like the
period it traded; ``created_at``/``updated_at`` are wall-clock times.

Ownership: :class:`Bot` is an :class:`accounts.models.OwnedModel` (``Bot.objects.for_user``);
every other model reaches its owner through ``bot`` and has the same gate
(``Order.objects.for_user(user)`` filters ``bot__owner=user``).

Status machine of a bot (enforced by ``trading.services.bots``)::

    created --start--> running --pause--> paused --resume--> running
    running|paused|error --stop--> stopped
    stopped|error --restart--> running
    running --(step raised)--> error
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models

from accounts.models import OwnedModel
from accounts.ownership import OwnedQuerySet
from market7.timeframes import dt_to_ms, ms_to_dt, timeframe_ms
from trading.models.market import Market, Timeframe

MONEY = {"max_digits": 28, "decimal_places": 12}
ZERO = Decimal("0")


class BotOwnedQuerySet(OwnedQuerySet):
    """Ownership gate for models owned through their bot."""

    owner_field = "bot__owner"


class Bot(OwnedModel):
    """A user's trading bot: one strategy with validated parameters over one or more markets.

    ``state`` is the engine's state (``EngineState.to_json()``) after the last processed candle
    ``last_candle_at`` (open time). The runner claims a bot with ``claimed_at``/``claim_token``
    (a conditional UPDATE; a claim older than ``trading.services.runner.CLAIM_TTL`` is stale).

    Replay clock (``feed=replay``): market time "now" is
    ``replay_clock + (wall now - replay_clock_wall) * replay_speed`` while running, and frozen at
    ``replay_clock`` while not (``replay_clock_wall`` is None). ``replay_speed`` is market seconds
    per wall second (3600 = one hour of market per second).

    Signal starts: a passing signal of the owner's scheduled scan (``strategies.tasks.scan_watchlists``)
    from one of ``signal_strategies`` with ``score >= signal_min_score``, on one of the bot's
    markets and its timeframe, queues a ``start_deal`` command while the bot is running
    (``strategies.services.signal_starts``).
    """

    class Mode(models.TextChoices):
        PAPER = "paper", "paper"
        LIVE = "live", "live"

    class Status(models.TextChoices):
        CREATED = "created", "created"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        STOPPED = "stopped", "stopped"
        ERROR = "error", "error"

    class FeedKind(models.TextChoices):
        LIVE = "live", "live (exchange)"
        REPLAY = "replay", "replay (stored candles)"

    name = models.CharField(max_length=120)
    strategy = models.CharField(max_length=64, help_text="strategy name in strategies.registry, e.g. smart_dca")
    params = models.JSONField(
        default=dict, blank=True, help_text="strategy parameters, validated by the strategy's schema"
    )
    markets = models.ManyToManyField(Market, related_name="bots", help_text="markets the bot trades (same exchange)")
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices, default=Timeframe.H1)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAPER)
    capital = models.DecimalField(help_text="capital allocated to the bot, quote currency", **MONEY)
    quote = models.CharField(max_length=16, default="USDT", help_text="quote currency of capital and P&L")
    exchange_account = models.ForeignKey(
        "trading.ExchangeAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bots",
        help_text="live mode: the owner's exchange account the bot trades on (trading.services.live_bots)",
    )
    risk = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text="portfolio risk block (strategies.risk.RiskConfig dict, validated); null = no portfolio risk",
    )

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CREATED, db_index=True)
    status_message = models.TextField(blank=True)

    state = models.JSONField(default=dict, blank=True, help_text="engine state after last_candle_at (EngineState JSON)")
    last_candle_at = models.DateTimeField(
        null=True, blank=True, help_text="open time of the last processed candle, UTC"
    )
    steps = models.PositiveIntegerField(default=0, help_text="committed bot steps")
    commands = models.JSONField(
        default=list,
        blank=True,
        help_text='manual commands for the next step, e.g. [{"cmd": "close", "deal_id": "..."}]',
    )

    signal_strategies = models.JSONField(
        default=list,
        blank=True,
        help_text='scan strategies whose signals start deals, e.g. ["fork_score"]; empty = none',
    )
    signal_min_score = models.FloatField(
        default=0.0, help_text="lowest signal score (0..1) that starts a deal; 0 = every passing signal"
    )

    feed = models.CharField(max_length=8, choices=FeedKind.choices, default=FeedKind.LIVE)
    replay_start = models.DateTimeField(null=True, blank=True, help_text="market time the replay starts at, UTC")
    replay_speed = models.FloatField(default=3600.0, help_text="market seconds per wall second")
    replay_clock = models.DateTimeField(null=True, blank=True, help_text="replay market time at replay_clock_wall")
    replay_clock_wall = models.DateTimeField(
        null=True, blank=True, help_text="wall time the replay clock last (re)started; null = frozen"
    )

    # USDT-M perpetual bots (markets named BTC/USDT:USDT): leverage 1..125 (capped by the
    # market's first tier), margin mode and the liquidation-buffer guard in percent. Spot bots:
    # leverage None. Validated by trading.services.bot_perpetuals; see docs/perps.md.
    leverage = models.PositiveSmallIntegerField(null=True, blank=True, help_text="perpetual bots: leverage (x)")
    margin_mode = models.CharField(max_length=8, blank=True, help_text="perpetual bots: isolated or cross")
    liquidation_buffer_pct = models.DecimalField(
        max_digits=6, decimal_places=3, default=ZERO, help_text="perpetual bots: liquidation buffer, percent (0 = off)"
    )

    # Equity snapshot of the last step (quote currency), for lists and the dashboard.
    equity = models.DecimalField(null=True, blank=True, **MONEY)
    realized_pnl = models.DecimalField(default=ZERO, **MONEY)
    unrealized_pnl = models.DecimalField(default=ZERO, **MONEY)

    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)

    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("operate_bot", "Can start, pause and stop bots")]
        indexes = [models.Index(fields=["owner", "status"]), models.Index(fields=["status", "feed"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(signal_min_score__gte=0, signal_min_score__lte=1), name="bot_signal_min_score_range"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} ({self.strategy}, {self.mode})"

    # -- derived ------------------------------------------------------------------------------
    @property
    def order_prefix(self) -> str:
        """Prefix of every ``client_order_id`` of this bot: ``m7b<id>`` (unique per bot)."""
        return f"m7b{self.pk}"

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def last_candle_ms(self) -> int | None:
        return None if self.last_candle_at is None else dt_to_ms(self.last_candle_at)

    def replay_now(self, wall: datetime) -> datetime | None:
        """Replay market time at wall time ``wall`` (None for a live feed or an unset clock)."""
        if self.feed != self.FeedKind.REPLAY or self.replay_clock is None:
            return None
        if self.replay_clock_wall is None:
            return self.replay_clock
        elapsed = max((wall - self.replay_clock_wall).total_seconds(), 0.0)
        # Whole milliseconds keep the clock exact and comparable with candle times.
        return ms_to_dt(dt_to_ms(self.replay_clock) + int(elapsed * self.replay_speed * 1000))

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.RUNNING, self.Status.PAUSED)

    @property
    def perpetual(self) -> dict | None:
        """The perpetual settings as the engine spec and backtests take them
        (``{"leverage", "margin_mode", "liquidation_buffer_pct"}``), None for a spot bot."""
        if self.leverage is None:
            return None
        return {
            "leverage": int(self.leverage),
            "margin_mode": self.margin_mode,
            "liquidation_buffer_pct": float(self.liquidation_buffer_pct),
        }


class BotPreset(OwnedModel):
    """A user's saved bot settings: a strategy with its parameters, risk block and perpetual
    settings, loaded into the new-bot form. ``params`` and ``risk`` are validated by the strategy's schema and
    ``strategies.risk.RiskConfig`` when saved (``trading.services.presets``)."""

    name = models.CharField(max_length=120)
    strategy = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    risk = models.JSONField(null=True, blank=True, default=None)
    # USDT-M perpetual settings {"leverage", "margin_mode", "liquidation_buffer_pct"} (Bot.perpetual's
    # shape), None for a spot preset; the market's tier cap is checked when a bot is created
    perpetual = models.JSONField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="botpreset_unique_owner_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.strategy})"


class Trade(models.Model):
    """One deal (position) of a bot in one market: opened by a base order, averaged down by
    safety orders, closed by take profit / stop loss / a manual close."""

    class Side(models.TextChoices):
        LONG = "long", "long"
        SHORT = "short", "short"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLOSED = "closed", "closed"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="trades")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+")
    deal_id = models.CharField(max_length=64, help_text="the engine's deal id, unique per bot")
    side = models.CharField(max_length=8, choices=Side.choices, default=Side.LONG)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_at = models.DateTimeField(help_text="market time of the first fill")
    closed_at = models.DateTimeField(null=True, blank=True)
    avg_entry = models.DecimalField(help_text="average entry price, quote", **MONEY)
    amount = models.DecimalField(help_text="position size, base units", **MONEY)
    cost = models.DecimalField(help_text="quote spent on entries (excluding fees)", **MONEY)
    fees = models.DecimalField(default=ZERO, help_text="fees paid, quote", **MONEY)
    realized_pnl = models.DecimalField(
        null=True, blank=True, help_text="net P&L after fees, quote (closed deals)", **MONEY
    )
    exit_price = models.DecimalField(null=True, blank=True, **MONEY)
    exit_reason = models.CharField(max_length=200, blank=True)
    take_profit_price = models.DecimalField(null=True, blank=True, **MONEY)
    stop_loss_price = models.DecimalField(null=True, blank=True, **MONEY)
    safety_orders_filled = models.PositiveIntegerField(default=0)
    safety_orders_max = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True, help_text='labels, e.g. ["zombie"]')
    info = models.JSONField(
        default=dict, blank=True, help_text="engine extras: the safety-order ladder, trailing state"
    )
    # Perpetual deals (None / 0 on spot): the bot's leverage, initial margin (cost / leverage),
    # the last liquidation price the engine computed, funding paid (signed: > 0 paid).
    leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    margin = models.DecimalField(null=True, blank=True, help_text="initial margin, quote", **MONEY)
    liquidation_price = models.DecimalField(null=True, blank=True, **MONEY)
    funding_paid = models.DecimalField(default=ZERO, help_text="funding paid (> 0) or received (< 0), quote", **MONEY)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BotOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["bot", "deal_id"], name="trade_unique_deal")]
        indexes = [models.Index(fields=["bot", "status", "opened_at"])]

    def __str__(self) -> str:
        return f"{self.market.symbol} {self.side} {self.deal_id} ({self.status})"

    @property
    def pnl_pct(self) -> Decimal | None:
        """Realized P&L in percent of cost (closed deals)."""
        if self.realized_pnl is None or not self.cost:
            return None
        return self.realized_pnl / self.cost * 100


class Order(models.Model):
    """An order a bot placed. ``client_order_id`` is the idempotency key (``<prefix>-<seq>``)."""

    class Side(models.TextChoices):
        BUY = "buy", "buy"
        SELL = "sell", "sell"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLOSED = "closed", "closed (filled)"
        CANCELED = "canceled", "canceled"
        REJECTED = "rejected", "rejected"
        EXPIRED = "expired", "expired"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="orders")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+")
    trade = models.ForeignKey(Trade, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    client_order_id = models.CharField(max_length=64, unique=True)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=16, default="market", help_text="ccxt order type: market, limit, ...")
    price = models.DecimalField(null=True, blank=True, help_text="limit price, quote", **MONEY)
    stop_price = models.DecimalField(null=True, blank=True, **MONEY)
    amount = models.DecimalField(help_text="base units", **MONEY)
    filled = models.DecimalField(default=ZERO, **MONEY)
    average = models.DecimalField(null=True, blank=True, help_text="average fill price, quote", **MONEY)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    tag = models.CharField(max_length=64, blank=True, help_text="base_order, safety_order_3, take_profit, ...")
    deal_id = models.CharField(max_length=64, blank=True)
    reject_reason = models.CharField(max_length=300, blank=True)
    placed_at = models.DateTimeField(help_text="market time the order was placed")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BotOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["bot", "placed_at"])]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.amount} {self.market.symbol}"


class FillQuerySet(OwnedQuerySet):
    owner_field = "order__bot__owner"


class Fill(models.Model):
    """One execution of an order (price quote, amount base, fee in ``fee_currency``)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    seq = models.PositiveIntegerField(default=0, help_text="index of the fill within its order")
    price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    fee = models.DecimalField(default=ZERO, **MONEY)
    fee_currency = models.CharField(max_length=16, blank=True)
    time = models.DateTimeField(help_text="market time of the fill")

    objects = FillQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        constraints = [models.UniqueConstraint(fields=["order", "seq"], name="fill_unique_seq")]

    def __str__(self) -> str:
        return f"{self.amount} @ {self.price}"

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount


class BotEvent(models.Model):
    """The decision log: what the bot decided and why, plus order/fill/trade/status events."""

    class Kind(models.TextChoices):
        DECISION = "decision", "decision"
        ORDER = "order", "order"
        FILL = "fill", "fill"
        TRADE_OPENED = "trade_opened", "trade opened"
        TRADE_CLOSED = "trade_closed", "trade closed"
        STATUS = "status", "status"
        ERROR = "error", "error"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(help_text="market time (decisions, orders) or wall time (status, errors)")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rule = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BotOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["bot", "time"]), models.Index(fields=["bot", "kind", "time"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule}: {self.reason}"[:120]


class PaperBalance(models.Model):
    """A paper bot's balance of one asset (the quote and each base it holds).

    ``free``/``used`` are asset units. ``equity`` is the holding valued in the bot's quote at the
    last close; ``realized_pnl``/``unrealized_pnl`` are the P&L of the market whose base this is
    (for the quote row: the bot's totals). Written by every step, in its transaction.
    """

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="balances")
    asset = models.CharField(max_length=32)
    free = models.DecimalField(default=ZERO, **MONEY)
    used = models.DecimalField(default=ZERO, **MONEY)
    equity = models.DecimalField(default=ZERO, **MONEY)
    realized_pnl = models.DecimalField(default=ZERO, **MONEY)
    unrealized_pnl = models.DecimalField(default=ZERO, **MONEY)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BotOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["bot", "asset"]
        constraints = [models.UniqueConstraint(fields=["bot", "asset"], name="paperbalance_unique_asset")]

    def __str__(self) -> str:
        return f"{self.asset}: {self.free} + {self.used}"

    @property
    def total(self) -> Decimal:
        return self.free + self.used


class EquitySnapshot(models.Model):
    """The bot's equity (quote) at the close of a processed candle, for charts."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="equity_snapshots")
    time = models.DateTimeField(help_text="market time: open time of the candle just processed")
    equity = models.DecimalField(**MONEY)
    realized_pnl = models.DecimalField(default=ZERO, **MONEY)
    unrealized_pnl = models.DecimalField(default=ZERO, **MONEY)

    objects = BotOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["bot", "time"]
        constraints = [models.UniqueConstraint(fields=["bot", "time"], name="equitysnapshot_unique_time")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} {self.equity}"
