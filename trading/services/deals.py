"""Deal actions of the deal page: close at market, add funds, change TP / SL.

None of them edits a deal: each queues a **command** on the bot (``Bot.commands``) that the
bot's next step applies through the engine (``Engine.apply_commands``,
:mod:`strategies.engine.commands`) as orders and strategy-state changes, with a decision and its
reason in the bot's log. Like every bot service: one transaction, keyword-only arguments, the
bot re-read through the ownership gate and row-locked (another user's bot or deal raises
``DoesNotExist``: a 404), the ``trading.operate_bot`` permission (:class:`BotPermissionDenied`),
an audit entry, a ``status`` event "requested" (wall clock) and a kick of the scheduler after
commit.

Refused with :class:`DealActionRefused` (a sentence for the user; nothing saved): a bot that is
not running (a paused or stopped bot takes no step, so the command would wait unseen), a
closed deal, a bot that has not processed a candle yet. Bad input raises
:class:`BotValidationError` with ``{field: message}``; nothing saved.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from trading.brokers import market_spec
from trading.models import Bot, BotEvent, Trade
from trading.services.bot_closing import bot_close_position
from trading.services.bots import (
    OPERATE_PERM,
    BotTransitionError,
    BotValidationError,
    _audit,
    _kick_after_commit,
    _locked_bot,
    _queue_command,
    _require,
)

MAX_TP_PCT = Decimal("1000")


class DealActionRefused(BotTransitionError):
    """The bot or the deal does not allow the action now; ``str(exc)`` says why."""


def _locked_deal(user, bot: Bot | int, trade: Trade | int) -> tuple[Bot, Trade]:
    """The bot (through the gate, locked) and its deal, checked for a command."""
    bot = _locked_bot(user, bot)
    pk = trade.pk if isinstance(trade, Trade) else int(trade)
    trade = Trade.objects.select_related("market").get(bot=bot, pk=pk)
    if trade.status != Trade.Status.OPEN:
        raise DealActionRefused(f"deal {trade.deal_id} is closed; nothing to change")
    if bot.status != Bot.Status.RUNNING:
        hint = "resume it first" if bot.status == Bot.Status.PAUSED else "restart it first"
        raise DealActionRefused(f"the bot is {bot.status}: a deal action needs a running bot; {hint}")
    if (bot.state or {}).get("last_time") is None:
        raise DealActionRefused("the bot has not processed a candle yet; try again after its first step")
    return bot, trade


def _decimal(value: Any, field: str, errors: dict[str, str], *, required: bool) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[field] = "this field is required"
        return None
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        errors[field] = "must be a number"
        return None
    if not d.is_finite():
        errors[field] = "must be a finite number"
        return None
    return d


def _request(user, bot: Bot, trade: Trade, command: dict[str, Any], action: str, text: str) -> None:
    _queue_command(bot, command)
    bot.save(update_fields=["commands", "updated_at"])
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.STATUS, rule=f"manual_{command['cmd']}",
        outcome="requested", reason=text, symbol=trade.market.symbol, payload={"deal_id": trade.deal_id},
    )  # fmt: skip
    _audit(user, action, bot, text, {k: v for k, v in command.items() if k != "cmd"})
    _kick_after_commit()


@transaction.atomic
def deal_close(*, user, bot: Bot | int, trade: Trade | int) -> Trade:
    """Close the deal at market on the bot's next step (a ``close`` command: a reduce-only
    market order filled at the next candle's open). Errors: see the module doc."""
    _require(user, OPERATE_PERM, "close deals")
    bot, trade = _locked_deal(user, bot, trade)
    return bot_close_position(user=user, bot=bot, trade=trade)


@transaction.atomic
def deal_add_funds(*, user, bot: Bot | int, trade: Trade | int, quote: Any) -> Trade:
    """Add ``quote`` (quote currency, > 0, at least the market's minimum order cost) to the deal
    on the bot's next step: an ``add_funds`` command, a manual safety order the strategy places
    at market (Smart DCA: it moves the average entry, TP and SL). Errors: see the module doc."""
    _require(user, OPERATE_PERM, "add funds to deals")
    errors: dict[str, str] = {}
    amount = _decimal(quote, "quote", errors, required=True)
    bot, trade = _locked_deal(user, bot, trade)
    ccy = trade.market.quote
    if amount is not None and amount <= 0:
        errors["quote"] = f"must be more than 0 {ccy}"
    elif amount is not None:
        min_cost = Decimal(repr(market_spec(trade.market).min_cost))
        if amount < min_cost:
            errors["quote"] = f"must be at least the market's minimum order of {min_cost.normalize():f} {ccy}"
    if errors:
        raise BotValidationError(errors)
    text = f"add {amount.normalize():f} {ccy} to {trade.market.symbol} deal {trade.deal_id} (manual safety order)"
    command = {"cmd": "add_funds", "deal_id": trade.deal_id, "symbol": trade.market.symbol, "quote": float(amount)}
    _request(user, bot, trade, command, "deal_add_funds", text)
    return trade


@transaction.atomic
def deal_set_exits(
    *, user, bot: Bot | int, trade: Trade | int, take_profit: Any = None, stop_loss: Any = None
) -> Trade:
    """Change the deal's take profit and/or stop loss on the bot's next step (a ``set_exits``
    command). Both are **percent from the average entry price** (``take_profit`` > 0 and <=
    1000; ``stop_loss`` >= 0 and < 100 for a long deal, 0 removes it); ``None`` or blank keeps
    the current one, but one of them must be given. Errors: see the module doc."""
    _require(user, OPERATE_PERM, "change deals")
    errors: dict[str, str] = {}
    tp = _decimal(take_profit, "take_profit", errors, required=False)
    sl = _decimal(stop_loss, "stop_loss", errors, required=False)
    bot, trade = _locked_deal(user, bot, trade)
    if tp is not None and not (0 < tp <= MAX_TP_PCT):
        errors["take_profit"] = f"must be more than 0% and at most {MAX_TP_PCT}% from the average entry"
    if sl is not None:
        top = Decimal("100") if trade.side == Trade.Side.LONG else MAX_TP_PCT
        if not (0 <= sl < top if trade.side == Trade.Side.LONG else 0 <= sl <= top):
            errors["stop_loss"] = (
                f"must be from 0% (none) to {'under ' if trade.side == Trade.Side.LONG else ''}{top}% from the average entry"
            )
    if tp is None and sl is None and not errors:
        errors["__all__"] = "give a take profit or a stop loss (percent from the average entry)"
    if errors:
        raise BotValidationError(errors)
    parts = []
    command: dict[str, Any] = {"cmd": "set_exits", "deal_id": trade.deal_id, "symbol": trade.market.symbol}
    if tp is not None:
        command["take_profit"] = float(tp)
        parts.append(f"take profit {tp.normalize():f}%")
    if sl is not None:
        command["stop_loss"] = float(sl)
        parts.append(f"stop loss {sl.normalize():f}%" if sl else "no stop loss")
    text = f"set {' and '.join(parts)} from the average entry on {trade.market.symbol} deal {trade.deal_id}"
    _request(user, bot, trade, command, "deal_set_exits", text)
    return trade
