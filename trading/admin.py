"""Django admin for every trading model: market data (``admin_market``) and bots (``admin_bots``)."""

from trading import admin_bots, admin_market  # noqa: F401  (registration side effects)
