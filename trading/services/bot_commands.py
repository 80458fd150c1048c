"""Queueing commands on a bot: the one way a command reaches ``Bot.commands``.

A command is a small JSON object (``{"cmd": "close", "deal_id": ...}``, ``{"cmd": "start_deal",
...}``) that the bot's next step applies through ``Engine.apply_commands``
(:mod:`strategies.engine.commands`) and then clears. The deal page, the bot services, the
scheduled scan's signal starts (:mod:`strategies.services.signal_starts`) and the TradingView
webhook (:mod:`strategies.services.webhooks`) all queue through here, so they share one
de-duplication (an identical command already queued is not added twice) and one kick of the
scheduler after commit.

The caller holds the bot row locked (``select_for_update``) inside its transaction and has
checked ownership and status; these helpers only write.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trading.models import Bot, BotEvent


def _queue_command(bot: Bot, command: dict) -> bool:
    """Append ``command`` to ``bot.commands`` (in memory) unless an equal one is queued;
    True when appended."""
    commands = list(bot.commands or [])
    if command in commands:
        return False
    commands.append(command)
    bot.commands = commands
    return True


def _kick_after_commit(*bots: Bot) -> None:
    """After commit, kick ``bots_due`` so the bots step now rather than at the next beat."""
    from trading.services import runner

    bot_ids = [b.pk for b in bots]
    transaction.on_commit(lambda: runner.bots_kick_after_request(bot_ids=bot_ids))


def bot_command_queue(
    *, bot: Bot, command: dict[str, Any], rule: str, reason: str, symbol: str = "", kick: bool = True
) -> bool:
    """Queue ``command`` on the locked, running ``bot`` for its next step, with a ``status``
    event (``rule``, outcome ``requested``, ``reason``, wall clock) in the decision log and,
    with ``kick``, a kick of the scheduler after commit. Returns False (and writes nothing)
    when an equal command is already queued."""
    if not _queue_command(bot, command):
        return False
    bot.save(update_fields=["commands", "updated_at"])
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.STATUS, rule=rule, outcome="requested", reason=reason,
        symbol=symbol, payload={k: v for k, v in command.items() if k != "cmd"},
    )  # fmt: skip
    if kick:
        _kick_after_commit(bot)
    return True
