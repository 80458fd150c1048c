"""Manual closes and the emergency stop of paper bots: commands the bot's next step executes.

``bot_close_position`` / ``bot_close_all`` queue a ``close`` / ``close_all`` command the engine
executes at the next candle (a reduce-only market order, like any exit); ``bots_emergency_stop``
stops every running or paused bot of a user at once (live bots: ``trading.services.emergency``,
which also cancels their orders at the exchange). Split from :mod:`trading.services.bots` (it
calls down into that module's helpers; nothing there imports this one).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from trading.models import Bot, BotEvent, Trade
from trading.services.bot_commands import _kick_after_commit, _queue_command
from trading.services.bot_validation import OPERATE_PERM, BotTransitionError, _is_system, _require
from trading.services.bots import _audit, _freeze_replay_clock, _locked_bot, _run_replay_clock, _status_changed

__all__ = ["bot_close_all", "bot_close_position", "bots_emergency_stop"]


def _check_can_close(bot: Bot) -> None:
    """A close is a command the bot's next step executes: only a running bot takes steps, so
    a close on any other bot would be accepted and never happen."""
    if bot.status == Bot.Status.PAUSED:
        raise BotTransitionError(
            "cannot close: the bot is paused and takes no steps, so the deal would stay open; resume it first"
        )
    if bot.status != Bot.Status.RUNNING:
        raise BotTransitionError(
            f"cannot close: the bot is {bot.status} and takes no steps, so the deal would stay open; restart it first"
        )


@transaction.atomic
def bot_close_position(*, user, bot: Bot | int, trade: Trade | int) -> Trade:
    """Ask the bot to close one open deal at market on its next step (a ``close`` command the
    engine executes as a reduce-only market order at the next candle's open, like any exit).

    The bot must be running (only a running bot steps). Errors: Trade.DoesNotExist (not this
    bot's deal), BotTransitionError (deal closed / bot not running).
    """
    _require(user, OPERATE_PERM, "close positions")
    bot = _locked_bot(user, bot)
    trade_pk = trade.pk if isinstance(trade, Trade) else int(trade)
    trade = Trade.objects.select_related("market").get(bot=bot, pk=trade_pk)
    if trade.status != Trade.Status.OPEN:
        raise BotTransitionError(f"deal {trade.deal_id} is already closed")
    _check_can_close(bot)
    _queue_command(bot, {"cmd": "close", "deal_id": trade.deal_id, "symbol": trade.market.symbol})
    bot.save(update_fields=["commands", "updated_at"])
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.STATUS, rule="manual_close", outcome="requested",
        reason=f"close requested for {trade.market.symbol} deal {trade.deal_id}", symbol=trade.market.symbol,
    )  # fmt: skip
    _audit(user, "bot_close_position", bot, f"close {trade.deal_id}", {"deal_id": trade.deal_id})
    _kick_after_commit(bot)
    return trade


@transaction.atomic
def bot_close_all(*, user, bot: Bot | int, stop: bool = False) -> int:
    """Ask the bot to close every open deal at market on its next step; ``stop=True`` also stops
    the bot once they are closed (emergency stop). Returns the number of open deals."""
    _require(user, OPERATE_PERM, "close positions")
    bot = _locked_bot(user, bot)
    _check_can_close(bot)
    n = Trade.objects.filter(bot=bot, status=Trade.Status.OPEN).count()
    _queue_command(bot, {"cmd": "close_all", "stop": bool(stop)})
    bot.save(update_fields=["commands", "updated_at"])
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.STATUS, rule="manual_close", outcome="requested",
        reason=f"close all requested ({n} open deal{'s' if n != 1 else ''})" + ("; the bot stops afterwards" if stop else ""),
    )  # fmt: skip
    _audit(user, "bot_close_all", bot, f"close all ({n} open)", {"open": n, "stop": bool(stop)})
    _kick_after_commit(bot)
    return n


@transaction.atomic
def bots_emergency_stop(*, user, close_positions: bool = False, mode: str | None = None) -> list[int]:
    """Stop every running/paused bot the user owns (:data:`SYSTEM`: every bot) at once;
    ``mode="paper"`` only the paper bots (live bots: ``trading.services.emergency``, which
    also cancels their orders at the exchange).

    ``close_positions=False``: each bot goes to ``stopped`` now; open deals stay open.
    ``close_positions=True``: bots with open deals get a ``close_all`` command and stop after
    their next step has closed them (status message says so); bots without open deals stop now.
    Bots are locked in pk order (no deadlock with the runner). Returns the ids touched.
    """
    _require(user, OPERATE_PERM, "stop bots")
    qs = Bot.objects.all() if _is_system(user) else Bot.objects.for_user(user)
    qs = qs.filter(status__in=[Bot.Status.RUNNING, Bot.Status.PAUSED])
    if mode is not None:
        qs = qs.filter(mode=mode)
    bots = list(qs.select_for_update().order_by("pk"))
    now = timezone.now()
    touched = []
    for bot in bots:
        open_deals = Trade.objects.filter(bot=bot, status=Trade.Status.OPEN).exists()
        if close_positions and open_deals:
            _queue_command(bot, {"cmd": "close_all", "stop": True})
            if bot.status == Bot.Status.PAUSED:  # a paused bot must step once to close
                bot.status = Bot.Status.RUNNING
                _run_replay_clock(bot, now)
            bot.status_message = "emergency stop: closing all positions, then stopping"
            _status_changed(user, bot, "bot_emergency_stop", bot.status_message)
        else:
            bot.status = Bot.Status.STOPPED
            _freeze_replay_clock(bot, now)
            bot.stopped_at = now
            bot.status_message = "emergency stop"
            _status_changed(user, bot, "bot_emergency_stop", "emergency stop")
        touched.append(bot.pk)
    if close_positions and touched:
        _kick_after_commit(*(b for b in bots if b.status == Bot.Status.RUNNING))
    return touched
