"""Shared value types of the trading core: decisions with reasons and the market-data view.

Pure Python (no Django). Every rule in the core — a Smart DCA guard, a portfolio risk rule,
the engine's own order checks — reports what it did as a :class:`Decision`, so users see a
named reason (``spend_guard: deal spend 41.2% > cap 40%``) and tests can assert it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np


class Outcome:
    """What a rule did. Plain strings so decisions serialise to JSON as they are."""

    ALLOW = "allow"  # the rule looked and let it pass (counted, usually not shown)
    BLOCK = "block"  # the action was refused
    RESIZE = "resize"  # the action went ahead with a different size
    EXIT = "exit"  # the rule closed (or asked to close) a position
    TAG = "tag"  # the rule labelled a deal (e.g. zombie)
    INFO = "info"  # anything else worth logging (regime change, pause, resume)


@dataclass(slots=True)
class Decision:
    """One decision taken by a named rule.

    Attributes:
        time: candle open time the decision was taken on, epoch **milliseconds** UTC.
        rule: the rule's name, e.g. ``"spend_guard"``, ``"daily_loss_limit"``.
        outcome: one of :class:`Outcome`'s values.
        reason: a short human sentence with the numbers that decided it.
        symbol: ccxt unified symbol the decision is about, or ``""`` for portfolio-wide ones.
        payload: small JSON-safe extras (thresholds, values) for the UI and tests.
    """

    time: int
    rule: str
    outcome: str
    reason: str
    symbol: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``"rule:outcome"``, the bucket used for decision counts in reports."""
        return f"{self.rule}:{self.outcome}"

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(**data)


class MarketDataView(Protocol):
    """Causal read access to closed candles, as the engine sees them at a point in time.

    Implementations must never return a candle whose open time is after ``until_ms``; this is
    what keeps risk rules and guards free of look-ahead.
    """

    def closes(self, symbol: str, until_ms: int, n: int) -> np.ndarray:
        """The last ``n`` (or fewer) close prices (float64, quote currency) of ``symbol`` with
        open time ``<= until_ms``, oldest first. Unknown symbol: ``KeyError``."""
        ...

    def timeframe_ms(self) -> int:
        """The length of one candle of the stepping timeframe in milliseconds."""
        ...
