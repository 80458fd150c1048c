"""Admin for backtest runs and their trades, and market scans with their signals (read-only)."""

from django.contrib import admin

from strategies.models import (
    BacktestRun,
    BacktestTrade,
    MarketScan,
    Optimisation,
    ScanSignal,
    SignalStart,
    WebhookSignal,
    WebhookToken,
)


class BacktestTradeInline(admin.TabularInline):
    model = BacktestTrade
    extra = 0
    can_delete = False
    fields = ("symbol", "side", "opened_at", "closed_at", "entry_price", "exit_price", "pnl", "pnl_pct", "exit_reason")
    readonly_fields = fields
    show_change_link = False


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "strategy", "timeframe", "start", "end", "status", "progress", "created_at")
    list_filter = ("status", "strategy", "timeframe")
    search_fields = ("name", "strategy", "owner__username")
    date_hierarchy = "created_at"
    readonly_fields = ("metrics", "report", "task_id", "candle_steps", "elapsed_s", "created_at", "finished_at")
    inlines = [BacktestTradeInline]


@admin.register(BacktestTrade)
class BacktestTradeAdmin(admin.ModelAdmin):
    list_display = ("run", "symbol", "side", "opened_at", "closed_at", "pnl", "pnl_pct", "exit_reason")
    list_filter = ("side", "exit_reason", "symbol")
    search_fields = ("symbol", "run__id")
    list_select_related = ("run",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Scans are written by the scanner only: the admin lists and shows them, nothing else."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ScanSignalInline(admin.TabularInline):
    model = ScanSignal
    extra = 0
    can_delete = False
    fields = ("market", "strategy", "time", "side", "score", "entry", "stop_loss", "take_profit", "rrr", "passed")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MarketScan)
class MarketScanAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "at", "exchange", "timeframe", "symbols_count", "signals_count", "duration_ms")
    list_filter = ("timeframe", "exchange")
    date_hierarchy = "at"
    inlines = [ScanSignalInline]


@admin.register(ScanSignal)
class ScanSignalAdmin(ReadOnlyAdmin):
    list_display = ("scan", "market", "strategy", "time", "side", "score", "rrr", "passed")
    list_filter = ("strategy", "side", "passed")
    search_fields = ("market__symbol", "strategy", "reason")
    list_select_related = ("scan", "market")
    ordering = ("-scan", "-score")


@admin.register(SignalStart)
class SignalStartAdmin(ReadOnlyAdmin):
    list_display = ("id", "bot", "market", "strategy", "time", "side", "signal", "created_at")
    list_filter = ("strategy", "side")
    list_select_related = ("bot", "market", "signal")


@admin.register(WebhookToken)
class WebhookTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "prefix", "created", "last_used", "revoked_at")
    readonly_fields = ("token_hash", "prefix", "created", "last_used")


@admin.register(WebhookSignal)
class WebhookSignalAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "source", "action", "symbol", "bot", "price", "message_id", "received_at")
    list_filter = ("source", "action")
    readonly_fields = ("received_at",)


@admin.register(Optimisation)
class OptimisationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "strategy",
        "objective",
        "sampler",
        "n_trials",
        "trials_done",
        "status",
        "best_value",
    )
    list_filter = ("status", "strategy", "objective", "sampler")
    search_fields = ("strategy", "study_name", "owner__username")
    readonly_fields = ("study_name", "trials_asked", "trials_done", "best_trial", "best_value", "best_params")
