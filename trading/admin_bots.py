"""Admin for bots, orders, fills, trades and bot events."""
