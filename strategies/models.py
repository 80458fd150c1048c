"""Django models of the strategies app: persisted backtest runs and their closed deals, and
market scans with the signals they found, TradingView webhook tokens and the alerts they
delivered (issue 11 §4).

The pure core (``strategies.engine``, ``strategies.library``, ``strategies.risk``) stays
Django-free; these models only store what a run produced. Money is Decimal (NUMERIC).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import OwnedModel

MONEY = {"max_digits": 28, "decimal_places": 12}


class BacktestRun(OwnedModel):
    """One backtest: its inputs, progress, metrics and full JSON report.

    ``report`` holds the JSON report exactly as ``manage.py backtest --json`` writes it
    (``metrics``, ``trades``, ``equity_curve``, ``decisions``); ``metrics`` repeats the
    metrics for listing and filtering.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=120, blank=True)
    strategy = models.CharField(max_length=120)
    params = models.JSONField(default=dict, blank=True, help_text="validated strategy parameters")
    symbols = models.JSONField(default=list, help_text='ccxt symbols, e.g. ["BTC/USDT", "ETH/USDT"]')
    exchange = models.CharField(max_length=32, default="binance")
    timeframe = models.CharField(max_length=4, default="1h")
    start = models.DateTimeField(help_text="first candle open time included, UTC")
    end = models.DateTimeField(help_text="last candle open time included, UTC")
    capital = models.DecimalField(help_text="starting capital, quote currency", **MONEY)
    fee_bps = models.DecimalField(max_digits=8, decimal_places=3, default=10)
    slippage_bps = models.DecimalField(max_digits=8, decimal_places=3, default=5)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    candle_steps = models.PositiveIntegerField(default=0)
    elapsed_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.strategy} {','.join(self.symbols)} {self.timeframe}"

    @property
    def quote(self) -> str:
        """Quote currency of the run's markets (``"USDT"`` for ``BTC/USDT``, ``BTC/USDT:USDT``)."""
        symbol = self.symbols[0] if self.symbols else ""
        return symbol.split("/", 1)[1].split(":", 1)[0] if "/" in symbol else ""

    @property
    def equity_curve(self) -> list[dict]:
        return self.report.get("equity_curve", [])


class BacktestTrade(models.Model):
    """One closed deal of a backtest run (mirrors an entry of the report's ``trades``)."""

    run = models.ForeignKey(BacktestRun, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=5)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField()
    entry_price = models.DecimalField(**MONEY)
    exit_price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    fees = models.DecimalField(**MONEY)
    pnl = models.DecimalField(**MONEY)
    pnl_pct = models.FloatField()
    exit_reason = models.CharField(max_length=120)
    safety_orders_filled = models.PositiveSmallIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)
    orders = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["run", "closed_at", "id"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.side} {self.opened_at:%Y-%m-%d %H:%M} → {self.pnl}"


class MarketScan(models.Model):
    """One scan: every listed strategy's detector run on the newest closed candle of each market.

    ``owner`` is None for system scans (Celery beat, ``manage.py scan`` without ``--owner``).
    ``at``: the time scanned as of, UTC — the close time of the newest candle read (candles whose
    close time ≤ ``at``). ``strategies``: the detector names run, in order. ``symbols_count``:
    markets scanned. ``signals_count``: rows stored. ``duration_ms``: wall time of the scan.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField(help_text="scanned as of: close time of the newest candle read, UTC")
    exchange = models.CharField(max_length=32, default="binance")
    timeframe = models.CharField(max_length=4)
    strategies = models.JSONField(default=list, help_text='detector names, e.g. ["fork_score", "swing"]')
    symbols_count = models.PositiveIntegerField(default=0)
    signals_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0, help_text="wall time of the scan, milliseconds")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["timeframe", "-at"], name="marketscan_tf_at")]

    def __str__(self) -> str:
        return f"scan #{self.pk} {self.timeframe} @ {self.at:%Y-%m-%d %H:%M} ({len(self.strategies)} strategies)"


class ScanSignal(models.Model):
    """One :class:`strategies.signals.Signal` found by a scan (the same fields, stored).

    ``time``: open time of the candle the signal was seen at the close of (UTC). Prices are
    quote currency stored as floats: they are the detectors' float64 indicator math, kept exactly
    as computed (a float round-trips through the column); money held in accounts stays Decimal.
    ``components``: ``{name: {"value", "points"}}``. ``passed``: False only for the rows a
    ``--all`` scan keeps for candidates that missed their thresholds.
    """

    scan = models.ForeignKey(MarketScan, on_delete=models.CASCADE, related_name="signals")
    market = models.ForeignKey("trading.Market", on_delete=models.CASCADE, related_name="+")
    strategy = models.CharField(max_length=64)
    time = models.DateTimeField(help_text="open time of the signal candle, UTC")
    side = models.CharField(max_length=5)
    score = models.FloatField(help_text="0..1")
    components = models.JSONField(default=dict, blank=True)
    entry = models.FloatField()
    stop_loss = models.FloatField()
    take_profit = models.FloatField(null=True, blank=True)
    rrr = models.FloatField(null=True, blank=True, help_text="distance to TP / distance to SL")
    reason = models.TextField(blank=True)
    passed = models.BooleanField(default=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["scan", "-score", "id"]
        indexes = [
            # latest scan per strategy: max(scan_id) WHERE strategy = s, read from the index
            models.Index(fields=["strategy", "-scan"], name="scansignal_strategy_scan"),
            # a scan's signals by score (the Scan Review table's default order)
            models.Index(fields=["scan", "-score"], name="scansignal_scan_score"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.side} {self.score:.2f} @ {self.time:%Y-%m-%d %H:%M}"


class SignalStart(models.Model):
    """A scan signal sent to a bot: the ``start_deal`` command queued on it (``command``, the
    exact JSON) by :func:`strategies.services.signal_starts.scan_signals_dispatch`.

    The key (bot, market, strategy, time, side) is unique: the same signal — found again by the
    next scheduled scans of the same candle — never queues twice. ``signal``: the scan row that
    sent it (the record goes with the scan when the retention deletes it; by then its candle is
    days old and no scan finds that signal again). ``time``: the signal candle's open time, UTC.
    """

    signal = models.ForeignKey(ScanSignal, on_delete=models.CASCADE, related_name="starts")
    bot = models.ForeignKey("trading.Bot", on_delete=models.CASCADE, related_name="signal_starts")
    market = models.ForeignKey("trading.Market", on_delete=models.CASCADE, related_name="+")
    strategy = models.CharField(max_length=64)
    time = models.DateTimeField(help_text="open time of the signal candle, UTC")
    side = models.CharField(max_length=5)
    command = models.JSONField(help_text="the start_deal command queued on the bot")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "market", "strategy", "time", "side"], name="signalstart_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.side} {self.time:%Y-%m-%d %H:%M} -> bot {self.bot_id}"


class WebhookToken(models.Model):
    """A user's secret for ``POST /webhooks/tradingview/<token>/``.

    Only the SHA-256 hex digest of the token is stored (``token_hash``) plus its first
    characters (``prefix``) so the user can tell tokens apart; the token itself is shown once,
    when it is created (rotated), and never again. Rotating revokes the user's active tokens
    (``revoked_at`` set) and creates a new one; a revoked token authenticates nothing.
    ``last_used``: time of the last accepted post (UTC).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_tokens")
    token_hash = models.CharField(max_length=64, unique=True, help_text="sha256 hex digest of the token")
    prefix = models.CharField(max_length=12, help_text="first characters of the token, for display")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"webhook token {self.prefix}… of {self.user_id}{' (revoked)' if self.revoked_at else ''}"


class WebhookSignal(models.Model):
    """One accepted TradingView alert, a signal with ``source`` "tradingview".

    A separate model rather than a :class:`ScanSignal` row: an alert belongs to no scan and
    carries no stop loss / take profit, only an action and an optional price. ``message_id`` is
    the alert's ``id``; (token, message_id) is unique, so a replayed alert is recognised and
    stores nothing new. ``symbol``: as sent (``BTCUSDT``); ``market``: the stored market it
    names. ``price``: quote currency as sent (Decimal). ``result``: what was done
    (``"recorded"``, ``"close_all queued (2 open deals)"``).
    """

    class Action(models.TextChoices):
        BUY = "buy"
        SELL = "sell"
        CLOSE = "close"

    source = models.CharField(max_length=16, default="tradingview")
    token = models.ForeignKey(WebhookToken, on_delete=models.CASCADE, related_name="signals")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=128)
    symbol = models.CharField(max_length=64)
    market = models.ForeignKey("trading.Market", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=5, choices=Action.choices)
    bot = models.ForeignKey("trading.Bot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    price = models.DecimalField(null=True, blank=True, **MONEY)
    payload = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["token", "message_id"], name="webhooksignal_token_message")]

    def __str__(self) -> str:
        return f"{self.source} {self.action} {self.symbol} ({self.message_id})"


class Optimisation(OwnedModel):
    """One hyperopt run (issue 16 §1): a strategy's search space over a backtest window.

    Trials live in Optuna's RDB storage on this same database under ``study_name``
    (``strategies.services.optimisations``); this row holds the inputs, the claim counters
    (``trials_asked``: slots handed to trial tasks, never above ``n_trials``; ``trials_done``:
    trials told), progress and the best feasible trial so far. ``params`` are the fixed strategy
    parameters (+ optional ``risk`` section) that the searched ones override.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class Sampler(models.TextChoices):
        TPE = "tpe", "TPE"
        RANDOM = "random", "random"
        CMAES = "cmaes", "CMA-ES"

    class Objective(models.TextChoices):
        SHARPE = "sharpe", "Sharpe"
        SORTINO = "sortino", "Sortino"
        CALMAR = "calmar", "Calmar"
        PROFIT = "profit", "profit (total return %)"
        PROFIT_FACTOR = "profit_factor", "profit factor"

    strategy = models.CharField(max_length=120)
    params = models.JSONField(default=dict, blank=True, help_text="fixed parameters (+ risk), validated")
    symbols = models.JSONField(default=list, help_text='ccxt symbols, e.g. ["BTC/USDT", "ETH/USDT"]')
    exchange = models.CharField(max_length=32, default="binance")
    timeframe = models.CharField(max_length=4, default="1h")
    start = models.DateTimeField(help_text="first candle open time included, UTC")
    end = models.DateTimeField(help_text="last candle open time included, UTC")
    capital = models.DecimalField(help_text="starting capital, quote currency", **MONEY)
    fee_bps = models.DecimalField(max_digits=8, decimal_places=3, default=10)
    slippage_bps = models.DecimalField(max_digits=8, decimal_places=3, default=5)
    space = models.JSONField(help_text="normalised search space (strategies.optimise)")
    sampler = models.CharField(max_length=8, choices=Sampler.choices, default=Sampler.TPE)
    objective = models.CharField(max_length=16, choices=Objective.choices, default=Objective.SHARPE)
    constraints = models.JSONField(default=dict, blank=True, help_text='{"max_drawdown_pct", "min_trades"}')
    n_trials = models.PositiveIntegerField()
    parallel = models.PositiveSmallIntegerField(default=2, help_text="trial tasks in flight on Celery")
    seed = models.BigIntegerField(null=True, blank=True)
    study_name = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1: trials done / n_trials")
    trials_asked = models.PositiveIntegerField(default=0)
    trials_done = models.PositiveIntegerField(default=0)
    best_trial = models.IntegerField(null=True, blank=True, help_text="Optuna trial number")
    best_value = models.FloatField(null=True, blank=True)
    best_params = models.JSONField(default=dict, blank=True)
    best_metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.strategy} {self.objective} {','.join(self.symbols)} {self.timeframe}"
