"""Django admin for every trading model: market data (``admin_market``), bots (``admin_bots``) and
exchange accounts (``admin_accounts``)."""

from trading import admin_accounts, admin_bots, admin_market  # noqa: F401  (registration side effects)
