"""Reads of a bot's portfolio risk for the bot page and the API: is a rule blocking new
entries, since when and why (the decision that started it), and the block's settings.

Callers pass a bot already fetched through the ownership gate.
"""

from __future__ import annotations

from typing import Any

from market7.formatting import human_label
from trading.models import Bot, BotEvent

BLOCKING_RULES = ("drawdown_pause", "daily_loss_limit")
# The risk block's headline settings shown on the bot page: (field, unit).
SUMMARY_FIELDS = (
    ("sizing_mode", ""),
    ("max_positions", ""),
    ("max_capital_at_risk_pct", "%"),
    ("daily_loss_limit_pct", "%"),
    ("drawdown_reduce_pct", "%"),
    ("drawdown_pause_pct", "%"),
    ("correlation_action", ""),
    ("regime_enabled", ""),
)


def bot_risk_status(bot: Bot) -> dict[str, Any] | None:
    """``None`` for a bot without a risk block; else::

    {"paused": bool,          # drawdown pause holds
     "daily_halted": bool,    # daily loss limit holds (until the next UTC day)
     "blocked": bool,         # either: new entries are refused
     "regime": "normal",      # market regime ("panic" | "caution" | "normal" | "euphoria")
     "reasons": [{"rule", "reason", "time" (market time, datetime)}],  # why it holds
     "settings": [{"name", "label", "value", "unit"}]}
    """
    if bot.risk is None:
        return None
    state = (bot.state or {}).get("risk") or {}
    paused, halted = bool(state.get("paused")), bool(state.get("daily_halted"))
    reasons = []
    for rule, holds in (("drawdown_pause", paused), ("daily_loss_limit", halted)):
        if not holds:
            continue
        event = (
            BotEvent.objects.filter(bot=bot, kind=BotEvent.Kind.DECISION, rule=rule, outcome="info")
            .order_by("-time", "-pk")
            .first()
        )
        reasons.append(
            {
                "rule": rule,
                "label": human_label(rule),
                "reason": event.reason if event else f"{human_label(rule)} holds",
                "time": event.time if event else None,
            }
        )
    settings = [
        {"name": name, "label": human_label(name), "value": bot.risk.get(name), "unit": unit}
        for name, unit in SUMMARY_FIELDS
    ]
    return {
        "paused": paused,
        "daily_halted": halted,
        "blocked": paused or halted,
        "regime": state.get("regime") or "normal",
        "reasons": reasons,
        "settings": settings,
    }


def risk_status_data(bot: Bot) -> dict[str, Any] | None:
    """:func:`bot_risk_status` JSON-safe (times ISO 8601 UTC), for the API."""
    status = bot_risk_status(bot)
    if status is None:
        return None
    reasons = [{**r, "time": r["time"].isoformat() if r["time"] else None} for r in status["reasons"]]
    return {k: v for k, v in status.items() if k != "settings"} | {"reasons": reasons}
