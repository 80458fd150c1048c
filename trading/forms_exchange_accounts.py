"""Forms of the exchange account pages. Credentials are password inputs that never render a
value back (``render_value=False``): a page shows only the stored key's last 4 characters."""

from __future__ import annotations

from django import forms

COMMON_EXCHANGES = ("binance", "binanceusdm", "okx", "kraken", "bybit", "kucoin")


def _secret(label: str, *, required: bool, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=512,
        strip=True,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class AccountCreateForm(forms.Form):
    exchange = forms.CharField(
        max_length=32,
        help_text="ccxt id: binance (spot), binanceusdm (USDT-M futures), okx, kraken, …",
        widget=forms.TextInput(attrs={"list": "ccxt-exchanges", "autocomplete": "off"}),
    )
    label = forms.CharField(max_length=64)
    api_key = _secret("API key", required=True)
    secret = _secret("Secret", required=True)
    passphrase = _secret("Passphrase", required=False, help_text="OKX, KuCoin and a few others only")
    sandbox = forms.BooleanField(label="Testnet (sandbox)", required=False, initial=True)


class AccountEditForm(forms.Form):
    label = forms.CharField(max_length=64)
    api_key = _secret("New API key", required=False, help_text="blank keeps the stored key")
    secret = _secret("New secret", required=False, help_text="blank keeps the stored secret")
    passphrase = _secret("New passphrase", required=False, help_text="blank keeps the stored one")
    clear_passphrase = forms.BooleanField(label="Remove the stored passphrase", required=False)
    sandbox = forms.BooleanField(label="Testnet (sandbox)", required=False)
