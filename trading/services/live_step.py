"""The live part of a bot step: the ccxt broker of the bot's exchange account and the
reconciliation around the engine run (``trading.services.runner`` calls these for live bots).

Live and paper differ only in the broker: the runner runs the same ``Engine`` with the
:class:`~trading.brokers.ccxt_live.CcxtBroker` built here instead of the paper broker.

- :func:`live_prepare` (before the step's transaction, under the claim's heartbeat): re-checks
  that the bot may trade on its account (``trading.services.live_bots.live_start_check``), builds
  the broker (markets loaded, with backoff) and reconciles the account
  (``trading.services.live_reconcile``). A difference raises ``ReconcileError``: the step does
  not run and the bot goes to ``error`` with the differences.
- inside the transaction the engine places orders at the exchange (look-up first, balance
  check, backoff) and adopts fills; :func:`live_after_run` checks that orders a crashed step
  left at the exchange were adopted and stores the exchange's order ids, so the step's rows
  commit together with the orders they describe.
- :func:`live_error_message`: the one-line status message of a live failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.brokers import broker_for
from trading.brokers.ccxt_live import CcxtBroker, LiveExchangeDown
from trading.models import Bot, Market
from trading.services.bot_validation import LiveTradingDisabled
from trading.services.live_bots import live_start_check
from trading.services.live_reconcile import (
    ReconcileError,
    Reconciliation,
    live_check_adopted,
    live_reconcile,
    live_report_foreign,
)


@dataclass
class LiveStep:
    broker: CcxtBroker
    reconciliation: Reconciliation


def live_prepare(*, bot: Bot, markets: list[Market]) -> LiveStep:
    """The broker and the reconciliation of live ``bot`` (module doc). Raises
    ``LiveTradingDisabled``, ``LiveExchangeDown`` or ``ReconcileError``."""
    live_start_check(bot)
    broker = broker_for(bot.mode, account=bot.exchange_account)
    broker.bind(None, {})
    return LiveStep(broker, live_reconcile(bot=bot, broker=broker, markets=markets))


def live_after_run(*, bot: Bot, live: LiveStep) -> None:
    """Inside the step's transaction, after the orders were written (module doc)."""
    live_check_adopted(bot=bot, broker=live.broker, rec=live.reconciliation)
    live_report_foreign(bot=bot, rec=live.reconciliation)


def live_error_message(exc: Exception) -> str | None:
    """The bot's status message for a live failure, or None for other errors."""
    if isinstance(exc, LiveTradingDisabled | ReconcileError | LiveExchangeDown):
        return f"live: {exc}"[:1000]
    return None
