"""Admin for bots, orders, fills, trades, the decision log, paper balances and equity snapshots.

Operators search by bot name / owner / client order id / deal id and filter by status, mode,
feed, kind and outcome. Engine output (orders, fills, trades, events, balances, snapshots) is
read-only here: it is written by the runner in one transaction with the engine state, and
editing one row by hand would break that consistency. Bot status changes go through the
services (admin actions below), so they are audited and published like any other.
"""

from django.contrib import admin, messages

from trading.models import Bot, BotEvent, BotPreset, EquitySnapshot, Fill, Order, PaperBalance, Trade


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _service_action(action_name: str):
    def action(modeladmin, request, queryset):
        from trading.services import bots as svc

        done, failed = 0, []
        for bot in queryset.order_by("pk"):
            try:
                svc.BOT_ACTIONS[action_name](user=svc.SYSTEM, bot=bot)
                done += 1
            except svc.BotError as exc:
                failed.append(f"#{bot.pk}: {exc}")
        if done:
            modeladmin.message_user(request, f"{action_name}: {done} bot(s)", messages.SUCCESS)
        for text in failed:
            modeladmin.message_user(request, text, messages.WARNING)

    action.short_description = f"{action_name.capitalize()} selected bots"
    action.__name__ = f"action_{action_name}"
    return action


class TradeInline(admin.TabularInline):
    model = Trade
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "deal_id",
        "market",
        "side",
        "status",
        "opened_at",
        "closed_at",
        "avg_entry",
        "amount",
        "realized_pnl",
        "exit_reason",
    )
    readonly_fields = fields
    ordering = ("-opened_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("market")


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "owner",
        "strategy",
        "mode",
        "feed",
        "timeframe",
        "status",
        "capital",
        "equity",
        "realized_pnl",
        "last_candle_at",
        "steps",
    )
    list_filter = ("status", "mode", "feed", "strategy", "timeframe")
    search_fields = ("name", "owner__username", "strategy", "markets__symbol")
    list_select_related = ("owner",)
    filter_horizontal = ("markets",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "status", "status_message", "state", "last_candle_at", "steps", "commands", "equity", "realized_pnl", "unrealized_pnl",
        "replay_clock", "replay_clock_wall", "claimed_at", "claim_token", "started_at", "stopped_at", "created_at", "updated_at",
        "leverage", "margin_mode", "liquidation_buffer_pct",  # validated by bot_create / bot_update only
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("owner", "name", "strategy", "params", "markets", "timeframe", "mode", "capital", "quote")}),
        ("Status", {"fields": ("status", "status_message", "started_at", "stopped_at", "steps", "commands")}),
        ("Signal starts", {"fields": ("signal_strategies", "signal_min_score")}),
        ("Feed", {"fields": ("feed", "replay_start", "replay_speed", "replay_clock", "replay_clock_wall")}),
        ("Perpetual", {"fields": ("leverage", "margin_mode", "liquidation_buffer_pct")}),
        ("Equity", {"fields": ("equity", "realized_pnl", "unrealized_pnl")}),
        ("Engine", {"classes": ("collapse",), "fields": ("last_candle_at", "state", "claimed_at", "claim_token")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    inlines = [TradeInline]
    actions = [_service_action(a) for a in ("start", "pause", "resume", "stop", "restart")]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "bot",
        "market",
        "deal_id",
        "side",
        "status",
        "opened_at",
        "closed_at",
        "avg_entry",
        "amount",
        "cost",
        "realized_pnl",
        "exit_reason",
        "safety_orders_filled",
    )
    list_filter = ("status", "side", "exit_reason", "market__symbol")
    search_fields = ("deal_id", "bot__name", "bot__owner__username", "market__symbol")
    list_select_related = ("bot", "market")
    date_hierarchy = "opened_at"


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    fields = ("seq", "time", "price", "amount", "fee", "fee_currency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "client_order_id",
        "bot",
        "market",
        "side",
        "type",
        "tag",
        "status",
        "price",
        "amount",
        "filled",
        "average",
        "placed_at",
    )
    list_filter = ("status", "side", "type", "tag")
    search_fields = ("client_order_id", "exchange_order_id", "deal_id", "bot__name", "market__symbol")
    list_select_related = ("bot", "market")
    date_hierarchy = "placed_at"
    inlines = [FillInline]


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "time", "price", "amount", "fee", "fee_currency")
    search_fields = ("order__client_order_id", "order__bot__name")
    list_select_related = ("order", "order__market")
    date_hierarchy = "time"


@admin.register(BotEvent)
class BotEventAdmin(ReadOnlyAdmin):
    list_display = ("time", "bot", "kind", "rule", "outcome", "symbol", "reason")
    list_filter = ("kind", "outcome", "rule")
    search_fields = ("reason", "rule", "symbol", "bot__name")
    list_select_related = ("bot",)
    date_hierarchy = "time"
    show_full_result_count = False


@admin.register(PaperBalance)
class PaperBalanceAdmin(ReadOnlyAdmin):
    list_display = ("bot", "asset", "free", "used", "equity", "realized_pnl", "unrealized_pnl", "updated_at")
    list_filter = ("asset",)
    search_fields = ("bot__name", "asset")
    list_select_related = ("bot",)


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(ReadOnlyAdmin):
    list_display = ("bot", "time", "equity", "realized_pnl", "unrealized_pnl")
    search_fields = ("bot__name",)
    list_select_related = ("bot",)
    date_hierarchy = "time"
    show_full_result_count = False


@admin.register(BotPreset)
class BotPresetAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "strategy", "updated_at")
    search_fields = ("name", "owner__username", "strategy")
