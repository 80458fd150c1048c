"""Admin for exchange accounts: labels, exchange, testnet flag and check results only — the
encrypted credentials are neither shown nor editable (change them on the user's page)."""

from django.contrib import admin

from trading.models import ExchangeAccount


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
