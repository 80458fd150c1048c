"""Admin for backtest runs and their trades."""

from django.contrib import admin

from strategies.models import BacktestRun, BacktestTrade


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
