"""Admin for exchanges, markets and candles."""
