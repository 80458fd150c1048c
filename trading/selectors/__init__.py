"""Read selectors of the trading app."""
