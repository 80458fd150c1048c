"""The bot runner: one bot step (claim, run the engine, save).

Its parts live in three modules beside this one, re-exported here for callers:
:mod:`trading.services.scheduling` (due bots, kicks, enqueueing steps),
:mod:`trading.services.claims` (claim and release) and :mod:`trading.services.step_writer`
(the step's rows and websocket events).

Scheduling (no home-made loop — Celery beat and Celery workers do it):

- beat runs ``trading.tasks.bots_due`` every minute; :func:`bots_kick` enqueues it on demand
  (after a bot starts, resumes or is asked to close positions, so it acts at once);
- :func:`bots_due` lists the running, unclaimed bots with a new closed candle at their feed's
  "now" (``trading.services.feeds``), and the task enqueues ``trading.tasks.bot_step(bot_id)``
  on the ``trading`` queue for each;
- a **replay** bot's step that processed candles returns ``next_due_s`` (wall seconds until its
  next candle closes on the replay clock, at least :data:`REPLAY_MIN_COUNTDOWN_S`) and the
  task re-enqueues itself with that countdown, so a replay at 3600x trades every second rather
  than every minute. Idle or skipped steps do not re-enqueue, so duplicate chains (beat + self)
  die out after one step.

One step (:func:`bot_step`):

1. **claim** — a conditional UPDATE sets ``claimed_at``/``claim_token`` only when the bot is
   running and not claimed (or its lease ran out: ``claimed_at`` older than
   ``MARKET7_BOT_CLAIM_LEASE_S``, i.e. its worker died); a second worker gets 0 rows and
   skips. The claim is committed on its own (:mod:`trading.services.claims`).
2. under the claim's heartbeat (a thread renewing the lease): load the bot; a live feed polls
   the exchange for new closed candles (outside the step's transaction);
3. in **one transaction** (``select_for_update`` on the bot): re-check the claim token (a
   worker that stalled past its lease while another took the bot over writes nothing), build the feed from stored
   candles, apply manual commands (close, add funds, change TP/SL: ``Engine.apply_commands``,
   each leaves a decision with its reason), run the *same* ``Engine`` as a backtest with the
   ``PaperBroker`` from the saved ``EngineState`` (risk: the bot's block plus its owner's
   watchlist multipliers, :func:`bot_risk_config`), then write orders (upsert by the unique
   ``client_order_id``), fills, trades, the decision log, balances, equity snapshots and the
   new state + last candle time, and release the claim. Websocket events are published with
   ``transaction.on_commit``. A step killed midway leaves nothing; re-running it recomputes
   the same orders with the same ids (the state's counters did not move).
4. an exception rolls everything back; then, in a separate transaction, the bot goes to
   ``error`` with the message (``bot_status`` published) and the worker goes on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from market7 import metrics
from market7.events import publish
from market7.timeframes import dt_to_ms, ms_to_dt
from strategies.engine.engine import Engine, EngineState
from strategies.providers import providers_for, step_observed
from strategies.registry import create_strategy
from strategies.risk import risk_config_with_symbol_multipliers, risk_manager_from_config
from trading.brokers import broker_for
from trading.models import Bot, BotEvent, Market, Order
from trading.selectors.watchlist import watchlist_risk_multipliers
from trading.services.bot_perpetuals import bot_specs
from trading.services.claims import bot_claim, bot_claim_renew, bot_release, claim_heartbeat, claim_lease
from trading.services.feeds import (
    FeedError,
    feed_build,
    feed_live_poll,
    feed_now,
    last_closed_open_ms,
    reference_markets,
    replay_end_ms,
    trade_start_ms,
    watched_markets,
)
from trading.services.live_step import LiveStep, live_after_run, live_error_message, live_prepare
from trading.services.scheduling import (
    NOT_QUEUED,
    bot_step_enqueue,
    bots_due,
    bots_kick,
    bots_kick_on_worker_start,
    bots_not_queued,
)
from trading.services.step_writer import MAX_EVENTS_PER_KIND, ROUTINE_CANCELS, StepWriter

__all__ = [
    "CLAIM_LOST",
    "END_OF_DATA",
    "NOT_QUEUED",
    "MAX_EVENTS_PER_KIND",
    "REJECTION_STREAK",
    "REPLAY_MIN_COUNTDOWN_S",
    "ROUTINE_CANCELS",
    "StepReport",
    "StepWriter",
    "bot_claim",
    "bot_claim_renew",
    "bot_fail",
    "bot_release",
    "bot_step",
    "bot_step_enqueue",
    "bot_step_enqueue_after_request",
    "bots_due",
    "bots_kick",
    "bots_kick_after_request",
    "bots_kick_on_worker_start",
    "bots_not_queued",
    "claim_heartbeat",
    "claim_lease",
]

log = logging.getLogger(__name__)

REPLAY_MIN_COUNTDOWN_S = 1.0
END_OF_DATA = "replay reached the end of the stored data"
REJECTION_STREAK = 3  # orders rejected in a row that put a bot in error
CLAIM_LOST = "claim taken over by another worker (this one stalled past its lease)"

_Writer = StepWriter  # the name tests and benchmarks patch


@dataclass
class StepReport:
    """What one :func:`bot_step` did. ``outcome``: ``stepped`` (candles processed),
    ``idle`` (nothing new), ``skipped`` (not running / claimed elsewhere) or ``error``."""

    bot_id: int
    outcome: str
    candles: int = 0
    orders: int = 0
    fills: int = 0
    trades_opened: int = 0
    trades_closed: int = 0
    decisions: int = 0
    last_candle_ms: int | None = None
    message: str = ""
    next_due_s: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- enqueue from requests ------------------------------------------------------------------
# On-commit callbacks of the bot services (start, resume, restart, closes, emergency stop).
# They call the kick/enqueue through this module's names, which tests patch
# (``trading.services.runner.bots_kick``) to keep requests off the real broker.


def bots_kick_after_request(*, bot_ids: list[int]) -> None:
    """Kick ``bots_due`` after a request changed bots ``bot_ids``; when the broker is
    unreachable (bounded: ``MARKET7_ENQUEUE_TIMEOUT_MS``, no retries) say so on each bot
    (:func:`bots_not_queued`). Never raises."""
    error = bots_kick()
    if isinstance(error, str):
        bots_not_queued(bot_ids=bot_ids, error=error)


def bot_step_enqueue_after_request(*, bot_id: int, countdown: float = 0.0) -> None:
    """Enqueue a started bot's first step; when the broker is unreachable say so on the bot
    (:func:`bots_not_queued`). Never raises."""
    error = bot_step_enqueue(bot_id=bot_id, countdown=countdown)
    if isinstance(error, str):
        bots_not_queued(bot_ids=[bot_id], error=error)


# --- the step -------------------------------------------------------------------------------


@metrics.observe_bot_step  # market7_bot_steps_total{outcome}, market7_bot_step_seconds; logs get bot_id
def bot_step(*, bot_id: int, now=None) -> StepReport:
    """Run one step of bot ``bot_id`` (see the module doc). ``now``: the feed's clock (default
    the wall clock; tests move it); the claim's lease always runs on the wall clock. Never
    raises for a failing bot: it goes to ``error`` and the report says so."""
    wall = now or timezone.now()
    token = bot_claim(bot_id=bot_id)
    if token is None:
        return StepReport(bot_id, "skipped", message="not running, or claimed by another worker")
    try:
        with claim_heartbeat(bot_id=bot_id, token=token):
            bot, markets, *live = _step_prepare(bot_id, wall)
        with transaction.atomic():
            bot = Bot.objects.select_for_update().get(pk=bot_id)
            if bot.claim_token != token:  # our lease ran out and another worker took the bot over
                return StepReport(bot_id, "skipped", message=CLAIM_LOST)
            if bot.status != Bot.Status.RUNNING:
                bot_release(bot_id=bot_id, token=token)
                return StepReport(bot_id, "skipped", message=f"bot is {bot.status}")
            report = _step_locked(bot, markets, wall, live[0] if live else None)
    except Exception as exc:  # the step rolled back; record the error separately
        message = _error_message(exc)
        log.warning("bot %s step failed: %s", bot_id, message, exc_info=not isinstance(exc, FeedError))
        bot_fail(bot_id=bot_id, token=token, message=message)
        return StepReport(bot_id, "error", message=message)
    if report.outcome == "stepped" and bot.feed == Bot.FeedKind.REPLAY and bot.status == Bot.Status.RUNNING:
        report.next_due_s = _replay_next_due_s(bot, markets, now or timezone.now())
    return report


def _step_prepare(bot_id: int, wall) -> tuple:
    """The part of a step before its transaction (under the claim's heartbeat): the bot, its
    markets in symbol order, and for a live feed the exchange poll for new closed candles; a
    live bot's broker and reconciliation come third (``trading.services.live_step``)."""
    bot = Bot.objects.get(pk=bot_id)
    markets = sorted(bot.markets.select_related("exchange"), key=lambda m: m.symbol)
    if bot.feed == Bot.FeedKind.LIVE:
        feed_live_poll(bot=bot, markets=markets + watched_markets(bot, markets), now=wall)
        # the poll refreshes the markets' precision and limits from the exchange
        # (market_upsert_ccxt): the step's specs round to those, as a replay of the rows does
        markets = sorted(bot.markets.select_related("exchange"), key=lambda m: m.symbol)
    if bot.mode == Bot.Mode.LIVE:
        return bot, markets, live_prepare(bot=bot, markets=markets)
    return bot, markets


def _error_message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FeedError):
        return text
    live = live_error_message(exc)
    if live is not None:
        return live
    return f"{type(exc).__name__}: {text}"[:1000]


@transaction.atomic
def bot_fail(*, bot_id: int, token: str, message: str) -> None:
    """Put a bot whose step raised into ``error`` with ``message`` and release its claim. A
    worker whose claim was taken over meanwhile (its lease ran out) leaves the bot alone: its
    view of the bot is stale and the new holder decides."""
    bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
    if bot is None or bot.claim_token != token:
        return
    bot.claimed_at, bot.claim_token = None, ""
    if bot.status == Bot.Status.RUNNING:
        if bot.feed == Bot.FeedKind.REPLAY and bot.replay_clock_wall is not None:
            bot.replay_clock, bot.replay_clock_wall = bot.replay_now(timezone.now()), None
        bot.status = Bot.Status.ERROR
        bot.status_message = message
    bot.save()
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.ERROR, rule="step", outcome="error", reason=message
    )
    from trading.services.bots import bot_status_data

    publish(bot.owner_id, "bot_status", bot_status_data(bot))


def _replay_next_due_s(bot: Bot, markets: list[Market], wall) -> float | None:
    """Wall seconds until the next candle closes on the bot's replay clock (None at the end)."""
    bot.refresh_from_db(
        fields=["replay_clock", "replay_clock_wall", "replay_speed", "last_candle_at", "status", "status_message"]
    )
    if bot.status != Bot.Status.RUNNING or bot.status_message.startswith(END_OF_DATA) or bot.last_candle_at is None:
        return None
    tf = bot.timeframe_ms
    end = replay_end_ms(markets, bot.timeframe)
    if end is None or end <= bot.last_candle_ms:
        return None  # the end of the stored data: nothing more will come
    next_close = bot.last_candle_ms + 2 * tf
    clock = dt_to_ms(bot.replay_now(wall))
    return max((next_close - clock) / 1000.0 / bot.replay_speed, REPLAY_MIN_COUNTDOWN_S)


def _step_locked(bot: Bot, markets: list[Market], wall, live: LiveStep | None = None) -> StepReport:
    """The body of a step, inside the transaction with the bot row locked. ``live``: a live
    bot's broker and reconciliation (``trading.services.live_step``)."""
    tf = bot.timeframe_ms
    now_ms = dt_to_ms(feed_now(bot, wall))
    until = last_closed_open_ms(now_ms, tf)
    last = bot.last_candle_ms
    report = StepReport(bot.pk, "idle", last_candle_ms=last)
    if last is not None and until <= last:
        return _finish_idle(bot, markets, report, now_ms)
    # the owner's active ML models serve the strategy's confidence, SAFU exit score and spend
    # guard (strategies.providers); their BTC features read BTC/USDT, as in training
    providers = providers_for(owner_id=bot.owner_id, strategy=bot.strategy, params=bot.params)
    provider = providers.get("confidence_provider")
    watched = watched_markets(bot, markets)
    refs = tuple(dict.fromkeys(s for p in providers.values() for s in getattr(p, "reference_symbols", ())))
    if refs:
        watched += reference_markets(markets + watched, refs)
    feed = feed_build(bot, markets + watched, until_ms=until)
    new = [
        s
        for s in (m.symbol for m in markets)
        if len(feed.candles(s)) and int(feed.candles(s).time[-1]) > (last if last is not None else -1)
    ]
    if not new:
        return _finish_idle(bot, markets, report, now_ms)

    strategy = create_strategy(bot.strategy, bot.params, **providers)
    specs = bot_specs(bot, markets)  # spot, or swap with the bot's leverage (as a backtest)
    engine = Engine(
        strategy,
        list(specs.values()),
        broker=live.broker if live is not None else broker_for(bot.mode),
        risk=risk_manager_from_config(bot_risk_config(bot, markets), markets=specs.values()),  # the backtest's factory
        capital=float(bot.capital),
        order_prefix=bot.order_prefix,
    )
    state = EngineState.from_dict(bot.state) if bot.state else None
    commanded, stop_after = _apply_commands(bot, engine, state, feed)
    if commanded is not None:
        state = commanded.state
    result = engine.run(feed, start_ms=trade_start_ms(bot), state=state)
    if commanded is not None:
        _merge_command_result(result, commanded)
    stopping = stop_after and not result.state.portfolio.get("deals")
    if stopping:
        _cancel_resting_orders(result, "bot stopped after closing all positions")

    ctx = StepWriter(bot, {m.symbol: m for m in markets}, specs, result, feed)
    ctx.write_trades()
    ctx.write_orders()
    if live is not None:
        live_after_run(bot=bot, live=live)  # in-flight orders adopted, exchange ids stored
    ctx.write_fills()
    ctx.write_events([])
    ctx.write_balances_and_equity()
    step_observed(bot=bot, provider=provider, result=result, feed=feed, providers=providers)

    new_state = result.state
    bot.state = new_state.to_dict()
    if new_state.last_time is not None:
        bot.last_candle_at = ms_to_dt(new_state.last_time)
    bot.steps += 1
    bot.commands = []
    bot.claimed_at, bot.claim_token = None, ""
    status_changed = False
    if bot.status_message.startswith((END_OF_DATA, NOT_QUEUED)):
        bot.status_message = ""
    rejected = _rejection_streak(bot) if result.orders else None
    if rejected is not None:
        bot.status = Bot.Status.ERROR
        if bot.replay_clock_wall is not None:
            bot.replay_clock, bot.replay_clock_wall = bot.replay_now(wall), None
        bot.status_message = rejected
        BotEvent.objects.create(
            bot=bot, time=timezone.now(), kind=BotEvent.Kind.ERROR, rule="orders_rejected", outcome="error", reason=rejected
        )  # fmt: skip
        status_changed = True
    elif stopping:
        bot.status = Bot.Status.STOPPED
        bot.stopped_at = timezone.now()
        if bot.replay_clock_wall is not None:
            bot.replay_clock, bot.replay_clock_wall = bot.replay_now(wall), None
        bot.status_message = "stopped after closing all positions"
        status_changed = True
    bot.save()
    ctx.publish(status_changed)
    transaction.on_commit(
        lambda: metrics.step_trading_observed(
            mode=bot.mode, exchange=markets[0].exchange.code, orders=ctx.placed, fills=len(ctx.fills)
        )
    )

    report.outcome = "stepped"
    report.candles = int(result.candles_processed)
    report.orders = len(result.orders)
    report.fills = len(result.fills)
    report.trades_opened = ctx.opened
    report.trades_closed = len(result.trades)
    report.decisions = len(result.decisions)
    report.last_candle_ms = bot.last_candle_ms
    return report


def bot_risk_config(bot: Bot, markets: list[Market]) -> dict | None:
    """The risk block a step runs with: the bot's ``risk`` plus its owner's watchlist risk
    multipliers of the bot's markets as ``symbol_multipliers``, under the ones the block sets
    itself (``strategies.risk.risk_config_with_symbol_multipliers``; ``docs/risk.md``). None
    without a risk block (no query then)."""
    if bot.risk is None:
        return None
    return risk_config_with_symbol_multipliers(
        bot.risk, watchlist_risk_multipliers(owner_id=bot.owner_id, markets=markets)
    )


def _rejection_streak(bot: Bot) -> str | None:
    """The error message when the bot's last :data:`REJECTION_STREAK` orders were all rejected
    (the bot would only log rejections every step), else None."""
    last = list(Order.objects.filter(bot=bot).order_by("-pk").values_list("status", "reject_reason")[:REJECTION_STREAK])
    if len(last) < REJECTION_STREAK or any(status != Order.Status.REJECTED for status, _ in last):
        return None
    return f"stopped trading: the last {REJECTION_STREAK} orders were rejected ({last[0][1] or 'no reason given'}); fix the bot's settings and restart it"


def _finish_idle(bot: Bot, markets: list[Market], report: StepReport, now_ms: int) -> StepReport:
    """Nothing new: release the claim; a replay past its last stored candle says so once."""
    fields = ["claimed_at", "claim_token"]
    bot.claimed_at, bot.claim_token = None, ""
    if bot.feed == Bot.FeedKind.REPLAY:
        end = replay_end_ms(markets, bot.timeframe)
        last = bot.last_candle_ms
        if end is not None and last is not None and last >= end and now_ms >= end + 2 * bot.timeframe_ms:
            message = f"{END_OF_DATA} ({ms_to_dt(end):%Y-%m-%d %H:%M} UTC); import more candles to continue"
            if bot.status_message != message:
                bot.status_message = message
                fields.append("status_message")
                from trading.services.bots import bot_status_data

                publish(bot.owner_id, "bot_status", bot_status_data(bot))
    Bot.objects.filter(pk=bot.pk).update(**{f: getattr(bot, f) for f in fields})
    report.message = bot.status_message
    return report


def _cancel_resting_orders(result, reason: str) -> None:
    """Cancel every order still resting in ``result.state`` (entries the strategy placed after
    the close), in the state and in ``result.orders`` so the rows say so."""
    from strategies.engine.orders import Order as EngineOrder

    touched = {o.client_order_id: o for o in result.orders}
    for data in result.state.open_orders:
        od = touched.get(data["client_order_id"])
        if od is None:
            od = EngineOrder.from_dict(data)
            result.orders.append(od)
        od.status = "canceled"
        od.cancel_reason = reason
        od.reserved = 0.0
    result.state.open_orders = []


def _apply_commands(bot: Bot, engine: Engine, state: EngineState | None, feed):
    """Apply the bot's queued manual commands (``close``/``close_all``, ``add_funds``,
    ``set_exits``; see :mod:`strategies.engine.commands`) through ``Engine.apply_commands``:
    orders resting in the state that the run fills like any other, strategy state changes, and
    a decision with a reason for each (refusals included). Returns (CommandResult or None when
    there are no commands, stop_after)."""
    commands = list(bot.commands or [])
    stop_after = any(c.get("stop") for c in commands)
    if not commands:
        return None, stop_after
    return engine.apply_commands(state, commands, feed), stop_after


def _merge_command_result(result, commanded) -> None:
    """Put the commands' orders and decisions into the run's result, so the writer stores them
    with the step's (an order the run touched again keeps the run's final version)."""
    touched = {o.client_order_id for o in result.orders}
    result.orders[:0] = [o for o in commanded.orders if o.client_order_id not in touched]
    result.decisions[:0] = commanded.decisions
