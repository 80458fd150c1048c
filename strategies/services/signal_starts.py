"""Signal starts: a scheduled scan's passing signals start deals of their owner's bots (issue 11 §4).

:func:`scan_signals_dispatch` runs inside the transaction that stores a user's scheduled scan
(:func:`strategies.services.scheduled_scans.scan_watchlists`). A stored signal is sent to a
bot when all of these hold:

* the scan has an owner and the bot is that user's (``Bot.objects.for_user``), status running;
* the signal passed its strategy's own thresholds (``passed``), its strategy is one of the
  bot's ``signal_strategies`` and its ``score >= bot.signal_min_score``;
* its market is one of the bot's markets and the scan's timeframe is the bot's.

Sending means appending to ``Bot.commands`` (through :mod:`trading.services.bot_commands`, a
``status`` event ``signal_start`` "requested" in the bot's log, a scheduler kick after commit)
exactly this command, which the bot's next step applies through ``Engine.apply_commands``::

    {"cmd": "start_deal", "symbol": "BTC/USDT", "side": "long" | "short", "source": "scan",
     "score": 0.72, "reason": "<the signal's reason>", "signal_time": <candle open, epoch ms UTC>}

and storing a :class:`~strategies.models.SignalStart` (which bots a signal was sent to; Scan
Review shows them). Its unique key (bot, market, strategy, candle time, side) makes the send
idempotent: the next scans of the same candle find the same signal and queue nothing. Bots are
locked in pk order (``select_for_update``), so concurrent scans of one user serialise per bot.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Subquery

from market7.timeframes import dt_to_ms
from strategies.models import MarketScan, ScanSignal, SignalStart
from trading.models import Bot
from trading.services.bot_commands import _kick_after_commit, bot_command_queue

RULE = "signal_start"


def start_deal_command(signal: ScanSignal) -> dict:
    """The ``start_deal`` command of a stored scan signal (see the module docstring)."""
    return {
        "cmd": "start_deal",
        "symbol": signal.market.symbol,
        "side": signal.side,
        "source": "scan",
        "score": signal.score,
        "reason": signal.reason,
        "signal_time": dt_to_ms(signal.time),
    }


@transaction.atomic
def scan_signals_dispatch(*, scan: MarketScan) -> list[SignalStart]:
    """Send ``scan``'s passing signals to the owner's matching running bots (see the module
    docstring); returns the :class:`SignalStart` rows created now (signals sent earlier are
    skipped). A system scan (no owner) sends nothing."""
    if scan.owner_id is None:
        return []
    signals = list(scan.signals.filter(passed=True).select_related("market").order_by("-score", "pk"))
    if not signals:
        return []
    candidates = (
        Bot.objects.for_user(scan.owner)
        .filter(status=Bot.Status.RUNNING, timeframe=scan.timeframe, markets__in={s.market_id for s in signals})
        .values("pk")
    )
    bots = list(Bot.objects.filter(pk__in=Subquery(candidates)).select_for_update().order_by("pk"))
    created: list[SignalStart] = []
    kicked: list[Bot] = []
    for bot in bots:
        wanted = set(bot.signal_strategies or [])
        if not wanted:
            continue
        market_ids = set(bot.markets.values_list("pk", flat=True))
        for sig in signals:
            if sig.strategy not in wanted or sig.market_id not in market_ids or sig.score < bot.signal_min_score:
                continue
            key = {"bot": bot, "market": sig.market, "strategy": sig.strategy, "time": sig.time, "side": sig.side}
            if SignalStart.objects.filter(**key).exists():
                continue
            command = start_deal_command(sig)
            reason = (
                f"start {sig.side} {sig.market.symbol} deal: {sig.strategy} signal score {sig.score:.2f} >= "
                f"{bot.signal_min_score:.2f} (scan #{scan.pk}, candle {sig.time:%Y-%m-%d %H:%M} UTC)"
            )
            bot_command_queue(bot=bot, command=command, rule=RULE, reason=reason, symbol=sig.market.symbol, kick=False)
            created.append(SignalStart.objects.create(signal=sig, command=command, **key))
            if not kicked or kicked[-1] is not bot:
                kicked.append(bot)
    if kicked:
        _kick_after_commit(*kicked)
    return created
