"""The built-in strategy library (importing it registers every strategy by name)."""

from . import manager, signal_strategy, sma_cross, smart_dca  # noqa: F401
