"""A user's API credentials on an exchange (live trading), secrets encrypted at rest.

One :class:`ExchangeAccount` per ``(owner, label)``. ``exchange`` is any ccxt id (``binance``,
``binanceusdm`` for Binance USDT-M futures, ``okx``, ``kraken``, ...); ``sandbox`` switches the
client to the exchange's testnet (ccxt ``set_sandbox_mode``).

The API key, secret and passphrase are stored only as Fernet tokens (``market7.secretbox``:
``*_enc`` columns); ``key_hint`` keeps the last 4 characters of the API key so pages can tell
keys apart — nothing else of a credential is ever rendered. Read the plaintext only through
:meth:`ExchangeAccount.credentials`, and only to hand it to a ccxt client.

``permissions`` are what the last connection test saw (``["read", "trade"]``, ``"withdraw"``
when the key may withdraw); ``last_check_at`` / ``last_check_ok`` / ``last_check_message`` its
outcome (UTC; one line, for users; never a secret).
"""

from __future__ import annotations

from django.db import models

from accounts.models import OwnedModel
from market7 import secretbox


class ExchangeAccount(OwnedModel):
    exchange = models.CharField(max_length=32, help_text="ccxt exchange id, e.g. binance, binanceusdm, okx, kraken")
    label = models.CharField(max_length=64)
    api_key_enc = models.TextField(editable=False)
    secret_enc = models.TextField(editable=False)
    passphrase_enc = models.TextField(blank=True, editable=False)
    key_hint = models.CharField(max_length=4, editable=False, help_text="last 4 characters of the API key")
    sandbox = models.BooleanField(default=False, help_text="use the exchange's testnet (ccxt set_sandbox_mode)")
    permissions = models.JSONField(default=list, blank=True, help_text="seen by the last check: read, trade, withdraw")
    last_check_at = models.DateTimeField(null=True, blank=True, help_text="last connection test, UTC")
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner", "label"]
        constraints = [models.UniqueConstraint(fields=["owner", "label"], name="exchange_account_unique_label")]

    def __str__(self) -> str:
        return f"{self.label} ({self.exchange}{', testnet' if self.sandbox else ''})"

    @property
    def has_passphrase(self) -> bool:
        return bool(self.passphrase_enc)

    def credentials(self) -> dict[str, str]:
        """``{"apiKey", "secret", "password"}`` decrypted, for a ccxt client only (ccxt calls the
        passphrase ``password``). Raises ``secretbox.SecretUndecryptable`` when no key opens them."""
        return {
            "apiKey": secretbox.decrypt(self.api_key_enc),
            "secret": secretbox.decrypt(self.secret_enc),
            "password": secretbox.decrypt(self.passphrase_enc),
        }
