"""Helpers shared by the guard modules: number formatting for reasons and the Decision
shorthand (pure Python, no Django)."""

from __future__ import annotations

from typing import Any

from strategies.engine.types import Decision

__all__ = ["_d", "fmt"]


def fmt(x: float) -> str:
    """Compact number for reasons: ``40.0 -> "40"``, ``41.25 -> "41.25"``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _d(rule: str, outcome: str, reason: str, time: int, symbol: str, **payload: Any) -> Decision:
    return Decision(time, rule, outcome, reason, symbol, payload)
