"""Market data: exchanges, markets (ccxt unified symbols) and OHLCV candles.

Candles are float64 (DESIGN.md §3: candles and the backtest hot loop use floats; orders, fills
and balances use Decimal). ``open_time`` is the candle's open, timezone-aware UTC; a candle
covers ``[open_time, open_time + timeframe)``.
"""

from __future__ import annotations

from django.db import models

from market7.timeframes import TIMEFRAME_MS


class Timeframe(models.TextChoices):
    M1 = "1m", "1m"
    M5 = "5m", "5m"
    M15 = "15m", "15m"
    M30 = "30m", "30m"
    H1 = "1h", "1h"
    H4 = "4h", "4h"
    D1 = "1d", "1d"


class Exchange(models.Model):
    """An exchange known to ccxt, by its ccxt id (``binance``)."""

    code = models.SlugField(max_length=32, unique=True, help_text="ccxt exchange id, e.g. binance")
    name = models.CharField(max_length=64)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code


class Market(models.Model):
    """A tradable market as ccxt describes it.

    ``symbol`` is the ccxt unified symbol: ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (USDT-M
    perpetual swap). ``precision`` and ``limits`` are stored exactly as ccxt gives them
    (``{"amount": 1e-05, "price": 0.01}``, ``{"amount": {"min": ...}, "cost": {"min": ...}}``).
    """

    class Type(models.TextChoices):
        SPOT = "spot", "spot"
        SWAP = "swap", "swap"

    exchange = models.ForeignKey(Exchange, on_delete=models.CASCADE, related_name="markets")
    symbol = models.CharField(max_length=64, help_text="ccxt unified symbol, e.g. BTC/USDT or BTC/USDT:USDT")
    exchange_symbol = models.CharField(max_length=64, blank=True, help_text="the exchange's own id, e.g. BTCUSDT")
    base = models.CharField(max_length=32)
    quote = models.CharField(max_length=32)
    settle = models.CharField(max_length=32, blank=True)
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.SPOT)
    precision = models.JSONField(default=dict, blank=True)
    limits = models.JSONField(default=dict, blank=True)
    maker_fee = models.DecimalField(
        max_digits=10, decimal_places=6, null=True, blank=True, help_text="fraction, 0.001 = 0.1 %"
    )
    taker_fee = models.DecimalField(
        max_digits=10, decimal_places=6, null=True, blank=True, help_text="fraction, 0.001 = 0.1 %"
    )
    active = models.BooleanField(default=True)
    info = models.JSONField(default=dict, blank=True, help_text="extra ccxt market fields")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["exchange__code", "symbol"]
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol"], name="market_unique_symbol")]
        indexes = [models.Index(fields=["quote", "type", "active"])]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.exchange.code})"


class Candle(models.Model):
    """One closed OHLCV candle. Prices in quote currency, volume in base units (float64)."""

    # No index of its own: market is the leading column of the unique (market, timeframe,
    # open_time) index below, which serves market-only lookups (FK joins, cascade deletes) too.
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="candles", db_index=False)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices)
    open_time = models.DateTimeField(help_text="candle open time, UTC")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        ordering = ["market", "timeframe", "open_time"]
        # The unique constraint's index (market, timeframe, open_time) also serves range reads.
        constraints = [
            models.UniqueConstraint(fields=["market", "timeframe", "open_time"], name="candle_unique_open_time")
        ]
        permissions = [("import_candles", "Can import and fetch candles")]

    def __str__(self) -> str:
        return f"{self.market.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"

    @property
    def close_time_ms(self) -> int:
        return int(self.open_time.timestamp() * 1000) + TIMEFRAME_MS[self.timeframe]


class MarkCandle(models.Model):
    """One closed **mark-price** candle of a perpetual (Binance ``markPriceKlines``; no volume).

    A separate table rather than a price-kind column on :class:`Candle`: every existing candle
    read (charts, backtests, bot feeds, gaps, 24 h volume) means last-price candles, and a kind
    column would have to be filtered in each of them (one missed filter silently mixes two price
    series); mark candles are read in one place only (the perpetuals feed). Same columns,
    key and float64 convention as :class:`Candle`; ``volume`` is stored as given (0).
    """

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="mark_candles", db_index=False)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices)
    open_time = models.DateTimeField(help_text="candle open time, UTC")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(default=0.0)

    class Meta:
        ordering = ["market", "timeframe", "open_time"]
        constraints = [
            models.UniqueConstraint(fields=["market", "timeframe", "open_time"], name="markcandle_unique_open_time")
        ]

    def __str__(self) -> str:
        return f"{self.market.symbol} mark {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class FundingRate(models.Model):
    """One realised funding event of a perpetual: ``rate`` is a fraction per event
    (``0.0001`` = 0.01 %; a long pays ``notional(mark) x rate`` when positive), ``time`` the
    funding time (UTC, whole minute)."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="funding_rates", db_index=False)
    time = models.DateTimeField(help_text="funding time, UTC")
    rate = models.DecimalField(max_digits=16, decimal_places=10, help_text="fraction per funding event")

    class Meta:
        ordering = ["market", "time"]
        constraints = [models.UniqueConstraint(fields=["market", "time"], name="fundingrate_unique_time")]

    def __str__(self) -> str:
        return f"{self.market.symbol} funding {self.time:%Y-%m-%d %H:%M} {self.rate}"
