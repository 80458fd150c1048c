"""Admin for exchanges, markets and candles.

Candles can be millions of rows: the changelist avoids the full ``COUNT(*)``
(``show_full_result_count = False``), joins market and exchange in the one page query, and
filters through indexed columns (market, timeframe, open_time date hierarchy).
"""

from django.contrib import admin
from django.db.models import Count

from trading.models.market import Candle, Exchange, FundingRate, MarkCandle, Market


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "active", "market_count")
    list_filter = ("active",)
    search_fields = ("code", "name")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_market_count=Count("markets"))

    @admin.display(description="markets", ordering="_market_count")
    def market_count(self, obj):
        return obj._market_count


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ("symbol", "exchange", "type", "base", "quote", "active", "updated_at")
    list_filter = ("exchange", "type", "quote", "active")
    search_fields = ("symbol", "base", "exchange_symbol")
    list_select_related = ("exchange",)
    readonly_fields = ("updated_at",)
    fieldsets = (
        (None, {"fields": ("exchange", "symbol", "exchange_symbol", "type", "active")}),
        ("Currencies", {"fields": ("base", "quote", "settle")}),
        ("Trading rules (as ccxt gives them)", {"fields": ("precision", "limits", "maker_fee", "taker_fee", "info")}),
        (None, {"fields": ("updated_at",)}),
    )


class MarketListFilter(admin.SimpleListFilter):
    """Filter candles by market without loading every candle's market: lists markets (not candles)."""

    title = "market"
    parameter_name = "market__id__exact"

    def lookups(self, request, model_admin):
        return [(m.pk, str(m)) for m in Market.objects.select_related("exchange").order_by("exchange__code", "symbol")]

    def queryset(self, request, queryset):
        return queryset.filter(market_id=self.value()) if self.value() else queryset


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = ("market", "timeframe", "open_time", "open", "high", "low", "close", "volume")
    list_filter = (MarketListFilter, "timeframe")
    date_hierarchy = "open_time"
    search_fields = ("market__symbol",)
    list_select_related = ("market", "market__exchange")
    show_full_result_count = False
    ordering = ("-open_time",)
    raw_id_fields = ("market",)
    list_per_page = 100


@admin.register(MarkCandle)
class MarkCandleAdmin(admin.ModelAdmin):
    list_display = ("market", "timeframe", "open_time", "open", "high", "low", "close")
    list_filter = (MarketListFilter, "timeframe")
    date_hierarchy = "open_time"
    list_select_related = ("market", "market__exchange")
    show_full_result_count = False
    ordering = ("-open_time",)
    raw_id_fields = ("market",)
    list_per_page = 100


@admin.register(FundingRate)
class FundingRateAdmin(admin.ModelAdmin):
    list_display = ("market", "time", "rate")
    list_filter = (MarketListFilter,)
    date_hierarchy = "time"
    list_select_related = ("market", "market__exchange")
    show_full_result_count = False
    ordering = ("-time",)
    raw_id_fields = ("market",)
    list_per_page = 100
