"""Admin for exchange accounts and 3Commas connections: labels, exchange, testnet flag and check
results, 3Commas bot ids and the signals sent — the encrypted credentials are neither shown nor editable (change them on the user's page)."""

from django.contrib import admin

from trading.models import ExchangeAccount, ThreeCommasConnection, ThreeCommasSignal


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    list_display = ("label", "owner", "exchange", "sandbox", "key_hint", "last_check_ok", "last_check_at")
    list_filter = ("exchange", "sandbox", "last_check_ok")
    search_fields = ("label", "owner__username", "exchange")
    fields = (
        "owner",
        "exchange",
        "label",
        "sandbox",
        "key_hint",
        "permissions",
        "last_check_at",
        "last_check_ok",
        "last_check_message",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # credentials are entered by their owner (services encrypt them)


@admin.register(ThreeCommasConnection)
class ThreeCommasConnectionAdmin(admin.ModelAdmin):
    """3Commas bots receiving our signals: the encrypted email token is never shown."""

    list_display = ("label", "owner", "bot_id", "token_hint", "delay_seconds", "created_at")
    search_fields = ("label", "owner__username")
    fields = ("owner", "label", "bot_id", "token_hint", "delay_seconds", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


@admin.register(ThreeCommasSignal)
class ThreeCommasSignalAdmin(admin.ModelAdmin):
    list_display = ("deal_id", "action", "seq", "symbol", "state", "http_status", "attempts", "created_at")
    list_filter = ("action", "state")
    search_fields = ("deal_id", "connection__label")
    readonly_fields = [f.name for f in ThreeCommasSignal._meta.fields]

    def has_add_permission(self, request):
        return False
