"""The bot runner: which bots are due, and one bot step (claim, run the engine, save).

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
   running and not claimed (or its claim is older than :data:`CLAIM_TTL`, i.e. its worker
   died); a second worker gets 0 rows and skips. The claim is committed on its own.
2. a live feed polls the exchange for new closed candles (outside the step's transaction);
3. in **one transaction** (``select_for_update`` on the bot): build the feed from stored
   candles, apply manual commands (close, add funds, change TP/SL: ``Engine.apply_commands``,
   each leaves a decision with its reason), run the *same* ``Engine`` as a backtest with the
   ``PaperBroker`` from the saved ``EngineState``, then write orders (upsert by the unique
   ``client_order_id``), fills, trades, the decision log, balances, equity snapshots and the
   new state + last candle time, and release the claim. Websocket events are published with
   ``transaction.on_commit``. A step killed midway leaves nothing; re-running it recomputes
   the same orders with the same ids (the state's counters did not move).
4. an exception rolls everything back; then, in a separate transaction, the bot goes to
   ``error`` with the message (``bot_status`` published) and the worker goes on.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from market7.events import publish
from market7.timeframes import dt_to_ms, ms_to_dt
from strategies.engine.engine import Engine, EngineState
from strategies.registry import create_strategy
from strategies.risk import risk_manager_from_config
from trading.brokers import amount_dec, avg_price_dec, broker_for, market_spec, money_dec, price_dec
from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Market, Order, PaperBalance, Trade
from trading.selectors.bots import trade_data
from trading.services.feeds import (
    FeedError,
    feed_build,
    feed_live_poll,
    feed_now,
    last_closed_open_ms,
    replay_end_ms,
    trade_start_ms,
    watched_markets,
)

log = logging.getLogger(__name__)

CLAIM_TTL = timedelta(minutes=5)
REPLAY_MIN_COUNTDOWN_S = 1.0
MAX_EVENTS_PER_KIND = 50  # websocket pushes per step and kind (a catch-up step can fill a lot)
END_OF_DATA = "replay reached the end of the stored data"
REJECTION_STREAK = 3  # orders rejected in a row that put a bot in error
ROUTINE_CANCELS = frozenset({"replaced", "deal_closed"})

_ORDER_STATUS = {
    "new": Order.Status.OPEN,
    "open": Order.Status.OPEN,
    "partially_filled": Order.Status.OPEN,
    "filled": Order.Status.CLOSED,
    "canceled": Order.Status.CANCELED,
    "rejected": Order.Status.REJECTED,
}


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


# --- scheduling -----------------------------------------------------------------------------


def bots_kick() -> None:
    """Enqueue ``trading.tasks.bots_due`` now (on the trading queue). Errors are logged: a
    missed kick only delays a bot to the next beat."""
    from market7.celery import TaskQueue, app

    try:
        app.send_task("trading.tasks.bots_due", queue=TaskQueue.TRADING.value, expires=55)
    except Exception:  # pragma: no cover - broker down
        log.exception("bots_kick: cannot enqueue bots_due")


def bot_step_enqueue(*, bot_id: int, countdown: float = 0.0) -> None:
    """Enqueue ``trading.tasks.bot_step(bot_id)`` on the trading queue after ``countdown``
    seconds (a bot that just started steps at once instead of waiting for the next beat).
    Errors are logged: a missed enqueue only delays the bot to the next beat."""
    from market7.celery import TaskQueue, app

    try:
        app.send_task(
            "trading.tasks.bot_step", args=[bot_id], queue=TaskQueue.TRADING.value, countdown=countdown,
            expires=countdown + 55,
        )  # fmt: skip
    except Exception:  # pragma: no cover - broker down
        log.exception("bot_step_enqueue: cannot enqueue bot %s", bot_id)


def bots_due(*, now=None) -> list[int]:
    """Ids of running, unclaimed bots with a new closed candle at their feed's now (pk order).

    Live: the wall clock is past the close of the candle after the last processed one.
    Replay: the replay clock is, and a candle at or after that open time is stored (a replay at
    the end of its data is not due).
    """
    wall = now or timezone.now()
    bots = list(
        Bot.objects.filter(status=Bot.Status.RUNNING)
        .exclude(claimed_at__gte=wall - CLAIM_TTL)
        .prefetch_related("markets")
        .order_by("pk")
    )
    due = []
    ends: dict[tuple, int | None] = {}
    for bot in bots:
        tf = bot.timeframe_ms
        last = bot.last_candle_ms
        if last is None:
            continue
        nxt = last + tf
        if nxt + tf > dt_to_ms(feed_now(bot, wall)):
            continue
        if bot.feed == Bot.FeedKind.REPLAY:
            markets = list(bot.markets.all())
            key = (tuple(sorted(m.pk for m in markets)), bot.timeframe)
            if key not in ends:
                ends[key] = replay_end_ms(markets, bot.timeframe)
            if ends[key] is None or ends[key] < nxt:
                continue
        due.append(bot.pk)
    return due


# --- claim ----------------------------------------------------------------------------------


def bot_claim(*, bot_id: int, now=None) -> str | None:
    """Claim a running bot for one step; returns the claim token, or None when the bot is not
    running or another worker holds a fresh claim. One conditional UPDATE (committed)."""
    wall = now or timezone.now()
    token = secrets.token_hex(8)
    n = (
        Bot.objects.filter(pk=bot_id, status=Bot.Status.RUNNING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=wall - CLAIM_TTL))
        .update(claimed_at=wall, claim_token=token)
    )
    return token if n else None


def bot_release(*, bot_id: int, token: str) -> None:
    Bot.objects.filter(pk=bot_id, claim_token=token).update(claimed_at=None, claim_token="")


# --- the step -------------------------------------------------------------------------------


def bot_step(*, bot_id: int, now=None) -> StepReport:
    """Run one step of bot ``bot_id`` (see the module doc). Never raises for a failing bot: it
    goes to ``error`` and the report says so."""
    wall = now or timezone.now()
    token = bot_claim(bot_id=bot_id, now=wall)
    if token is None:
        return StepReport(bot_id, "skipped", message="not running, or claimed by another worker")
    try:
        bot = Bot.objects.get(pk=bot_id)
        markets = sorted(bot.markets.select_related("exchange"), key=lambda m: m.symbol)
        if bot.feed == Bot.FeedKind.LIVE:
            feed_live_poll(bot=bot, markets=markets + watched_markets(bot, markets), now=wall)
        with transaction.atomic():
            bot = Bot.objects.select_for_update().get(pk=bot_id)
            if bot.claim_token != token or bot.status != Bot.Status.RUNNING:
                bot_release(bot_id=bot_id, token=token)
                return StepReport(bot_id, "skipped", message=f"bot is {bot.status}")
            report = _step_locked(bot, markets, wall)
    except Exception as exc:  # the step rolled back; record the error separately
        message = _error_message(exc)
        log.warning("bot %s step failed: %s", bot_id, message, exc_info=not isinstance(exc, FeedError))
        bot_fail(bot_id=bot_id, token=token, message=message)
        return StepReport(bot_id, "error", message=message)
    if report.outcome == "stepped" and bot.feed == Bot.FeedKind.REPLAY and bot.status == Bot.Status.RUNNING:
        report.next_due_s = _replay_next_due_s(bot, markets, now or timezone.now())
    return report


def _error_message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FeedError):
        return text
    return f"{type(exc).__name__}: {text}"[:1000]


@transaction.atomic
def bot_fail(*, bot_id: int, token: str, message: str) -> None:
    """Put a bot whose step raised into ``error`` with ``message`` and release its claim."""
    bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
    if bot is None:
        return
    if bot.claim_token == token:
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


def _step_locked(bot: Bot, markets: list[Market], wall) -> StepReport:
    """The body of a step, inside the transaction with the bot row locked."""
    tf = bot.timeframe_ms
    now_ms = dt_to_ms(feed_now(bot, wall))
    until = last_closed_open_ms(now_ms, tf)
    last = bot.last_candle_ms
    report = StepReport(bot.pk, "idle", last_candle_ms=last)
    if last is not None and until <= last:
        return _finish_idle(bot, markets, report, now_ms)
    feed = feed_build(bot, markets + watched_markets(bot, markets), until_ms=until)
    new = [
        s
        for s in (m.symbol for m in markets)
        if len(feed.candles(s)) and int(feed.candles(s).time[-1]) > (last if last is not None else -1)
    ]
    if not new:
        return _finish_idle(bot, markets, report, now_ms)

    strategy = create_strategy(bot.strategy, bot.params)
    specs = {m.symbol: market_spec(m) for m in markets}
    engine = Engine(
        strategy,
        list(specs.values()),
        broker=broker_for(bot.mode),
        risk=risk_manager_from_config(bot.risk, markets=specs.values()),  # the backtest's factory
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

    ctx = _Writer(bot, {m.symbol: m for m in markets}, specs, result, feed)
    ctx.write_trades()
    ctx.write_orders()
    ctx.write_fills()
    ctx.write_events([])
    ctx.write_balances_and_equity()

    new_state = result.state
    bot.state = new_state.to_dict()
    if new_state.last_time is not None:
        bot.last_candle_at = ms_to_dt(new_state.last_time)
    bot.steps += 1
    bot.commands = []
    bot.claimed_at, bot.claim_token = None, ""
    status_changed = False
    if bot.status_message.startswith(END_OF_DATA):
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

    report.outcome = "stepped"
    report.candles = int(result.candles_processed)
    report.orders = len(result.orders)
    report.fills = len(result.fills)
    report.trades_opened = ctx.opened
    report.trades_closed = len(result.trades)
    report.decisions = len(result.decisions)
    report.last_candle_ms = bot.last_candle_ms
    return report


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


def _field_differs(row, name: str, value) -> bool:
    """Whether ``row.<name>`` differs from ``value`` (a foreign key by id: no query)."""
    field = row._meta.get_field(name)
    if field.is_relation:
        return getattr(row, field.attname) != (value.pk if value is not None else None)
    return getattr(row, name) != value


class _Writer:
    """Writes one step's engine result as Decimal rows (inside the step's transaction)."""

    def __init__(self, bot: Bot, markets: dict[str, Market], specs: dict, result, feed) -> None:
        self.bot, self.markets, self.specs, self.result = bot, markets, specs, result
        # last close of each market the step saw: {symbol: (open time ms, close)}
        self.price_points: dict[str, tuple[int, float]] = {}
        for symbol in markets:
            c = feed.candles(symbol)
            if len(c):
                self.price_points[symbol] = (int(c.time[-1]), float(c.close[-1]))
        self.trades: dict[str, Trade] = {}
        self.orders: dict[str, Order] = {}
        self.opened: int = 0
        self.new_trades: list[Trade] = []
        self.closed_trades: list[Trade] = []
        self.fills: list[tuple[Fill, Order]] = []
        self.realized_delta = Decimal("0")
        self.max_safety_orders = int((bot.params or {}).get("max_safety_orders") or 0)

    # trades first, so orders can point at them
    def write_trades(self) -> None:
        bot, specs = self.bot, self.specs
        open_deals = self.result.open_deals
        # the open deals' rows in one query; a row whose values did not change is not written
        # (most steps fill nothing, and update_or_create cost a locking SELECT and an UPDATE per
        # open deal per step)
        stored = (
            {t.deal_id: t for t in Trade.objects.filter(bot=bot, deal_id__in=[d["deal_id"] for d in open_deals])}
            if open_deals
            else {}
        )
        for deal in open_deals:
            spec = specs[deal["symbol"]]
            values = {
                "market": self.markets[deal["symbol"]],
                "side": deal["side"],
                "status": Trade.Status.OPEN,
                "opened_at": ms_to_dt(int(deal["opened_at"])),
                "closed_at": None,
                "avg_entry": avg_price_dec(deal["entry_price"]),
                "amount": amount_dec(spec, abs(deal["amount"])),
                "cost": money_dec(deal["cost"]),
                "fees": money_dec(deal["fees"]),
                "take_profit_price": price_dec(spec, deal.get("take_profit_price")),
                "stop_loss_price": price_dec(spec, deal.get("stop_loss_price")),
                "safety_orders_filled": int(deal.get("safety_orders_filled") or 0),
                "safety_orders_max": int(deal.get("max_safety_orders") or 0) or self.max_safety_orders,
                "tags": list(deal.get("tags") or []),
                "info": _json_safe({k: deal[k] for k in ("ladder", "next_so_price") if k in deal}),
            }
            trade = stored.get(deal["deal_id"])
            if trade is None:
                trade = Trade.objects.create(bot=bot, deal_id=deal["deal_id"], **values)
                self.new_trades.append(trade)
            else:
                changed = [name for name, value in values.items() if _field_differs(trade, name, value)]
                if changed:
                    for name in changed:
                        setattr(trade, name, values[name])
                    trade.save(update_fields=[*changed, "updated_at"])
            self.trades[trade.deal_id] = trade
        for ct in self.result.trades:
            spec = specs[ct.symbol]
            existing = (
                Trade.objects.filter(bot=bot, deal_id=ct.deal_id)
                .only("safety_orders_max", "info", "take_profit_price")
                .first()
            )
            values = {
                "market": self.markets[ct.symbol],
                "side": ct.side,
                "status": Trade.Status.CLOSED,
                "opened_at": ms_to_dt(int(ct.opened_at)),
                "closed_at": ms_to_dt(int(ct.closed_at)),
                "avg_entry": avg_price_dec(ct.entry_price),
                "amount": amount_dec(spec, ct.amount),
                "cost": money_dec(ct.cost),
                "fees": money_dec(ct.fees),
                "realized_pnl": money_dec(ct.pnl),
                "exit_price": avg_price_dec(ct.exit_price),
                "exit_reason": ct.exit_reason,
                "safety_orders_filled": int(ct.safety_orders_filled),
                # a deal opened and closed in one step has no open row to inherit it from
                "safety_orders_max": (existing.safety_orders_max if existing else 0) or self.max_safety_orders,
                "tags": list(ct.tags or []),
            }
            trade, created = Trade.objects.update_or_create(bot=bot, deal_id=ct.deal_id, defaults=values)
            if existing is None:
                self.new_trades.append(trade)
            self.trades[trade.deal_id] = trade
            self.closed_trades.append(trade)
            self.realized_delta += trade.realized_pnl
        self.opened = len(self.new_trades)

    def write_orders(self) -> None:
        bot = self.bot
        for od in self.result.orders:
            spec = self.specs[od.symbol]
            trade = self.trades.get(od.deal_id) if od.deal_id else None
            if od.deal_id and trade is None:
                trade = Trade.objects.filter(bot=bot, deal_id=od.deal_id).first()
            values = {
                "bot": bot,
                "market": self.markets[od.symbol],
                "trade": trade,
                "side": od.side,
                "type": od.type,
                "price": price_dec(spec, od.price),
                "stop_price": price_dec(spec, od.stop_price),
                "amount": amount_dec(spec, od.amount),
                "filled": amount_dec(spec, od.filled),
                "average": price_dec(spec, od.average),
                "status": _ORDER_STATUS.get(od.status, Order.Status.OPEN),
                "tag": (od.tag or "")[:64],
                "deal_id": od.deal_id or "",
                "reject_reason": (od.reject_reason or od.cancel_reason or "")[:300],
                "placed_at": ms_to_dt(int(od.created_at)),
            }
            order, _ = Order.objects.update_or_create(client_order_id=od.client_order_id, defaults=values)
            self.orders[od.client_order_id] = order

    def write_fills(self) -> None:
        seqs: dict[int, int] = {}
        rows = []
        for f in self.result.fills:
            order = self.orders.get(f.client_order_id) or Order.objects.get(client_order_id=f.client_order_id)
            if order.pk not in seqs:
                seqs[order.pk] = Fill.objects.filter(order=order).count()
            spec = self.specs[f.symbol]
            fill = Fill(
                order=order,
                seq=seqs[order.pk],
                price=price_dec(spec, f.price),
                amount=amount_dec(spec, f.amount),
                fee=money_dec(f.fee),
                fee_currency=spec.quote,
                time=ms_to_dt(int(f.time)),
            )
            seqs[order.pk] += 1
            rows.append(fill)
            self.fills.append((fill, order))
        if rows:
            Fill.objects.bulk_create(rows)

    def write_events(self, extra: list[BotEvent]) -> None:
        bot = self.bot
        events = list(extra)
        for d in self.result.decisions:
            events.append(
                BotEvent(
                    bot=bot,
                    time=ms_to_dt(int(d.time)),
                    kind=BotEvent.Kind.DECISION,
                    rule=d.rule[:64],
                    outcome=d.outcome[:16],
                    reason=d.reason,
                    symbol=d.symbol,
                    payload=_json_safe(d.payload),
                )  # fmt: skip
            )
        for od in self.result.orders:
            # Rejections always; cancels only when not routine (a TP replaced by a new one, the
            # rest of a deal's orders canceled when it closes).
            if od.status == "rejected" or (od.status == "canceled" and od.cancel_reason not in ROUTINE_CANCELS):
                events.append(
                    BotEvent(
                        bot=bot,
                        time=ms_to_dt(int(od.updated_at or od.created_at)),
                        kind=BotEvent.Kind.ORDER,
                        rule=od.tag or od.type,
                        outcome=od.status,
                        reason=f"{od.side} {od.symbol} {od.client_order_id} {od.status}: {od.reject_reason or od.cancel_reason}",
                        symbol=od.symbol,
                        payload={"client_order_id": od.client_order_id},
                    )  # fmt: skip
                )
        for fill, order in self.fills:
            events.append(
                BotEvent(
                    bot=bot,
                    time=fill.time,
                    kind=BotEvent.Kind.FILL,
                    rule=order.tag or order.type,
                    outcome="filled",
                    reason=f"{order.side} {fill.amount} {order.market.symbol} @ {fill.price} ({order.tag or order.type})",
                    symbol=order.market.symbol,
                    payload={"client_order_id": order.client_order_id, "fee": str(fill.fee)},
                )  # fmt: skip
            )
        for trade in self.new_trades:
            events.append(
                BotEvent(
                    bot=bot,
                    time=trade.opened_at,
                    kind=BotEvent.Kind.TRADE_OPENED,
                    rule="deal",
                    outcome="opened",
                    reason=f"opened {trade.side} {trade.market.symbol} deal {trade.deal_id} at {trade.avg_entry}",
                    symbol=trade.market.symbol,
                    payload={"deal_id": trade.deal_id},
                )  # fmt: skip
            )
        for trade in self.closed_trades:
            events.append(
                BotEvent(
                    bot=bot,
                    time=trade.closed_at,
                    kind=BotEvent.Kind.TRADE_CLOSED,
                    rule=trade.exit_reason or "deal",
                    outcome="closed",
                    reason=f"closed {trade.market.symbol} deal {trade.deal_id} ({trade.exit_reason}): P&L {trade.realized_pnl} {bot.quote}",
                    symbol=trade.market.symbol,
                    payload={"deal_id": trade.deal_id, "pnl": str(trade.realized_pnl)},
                )  # fmt: skip
            )
        if events:
            BotEvent.objects.bulk_create(events)

    def write_balances_and_equity(self) -> None:
        bot, result = self.bot, self.result
        realized_before = bot.realized_pnl
        bot.realized_pnl = realized_before + self.realized_delta
        times, equity = result.equity_time, result.equity
        if len(equity):
            bot.equity = money_dec(float(equity[-1]))
            # realized P&L at each equity point: closed deals whose exit filled before its close
            closed = sorted((int(ct.closed_at), money_dec(ct.pnl)) for ct in result.trades)
            closed_t = np.array([c[0] for c in closed], dtype=np.int64)
            cum = [realized_before]
            for _, pnl in closed:
                cum.append(cum[-1] + pnl)
            idx = np.searchsorted(closed_t, times, side="left") if len(closed) else np.zeros(len(times), dtype=np.int64)
            snaps = []
            for t, e, k in zip(times.tolist(), equity.tolist(), idx.tolist(), strict=True):
                eq = money_dec(e)
                snaps.append(
                    EquitySnapshot(
                        bot=bot,
                        time=ms_to_dt(t),
                        equity=eq,
                        realized_pnl=cum[k],
                        unrealized_pnl=eq - bot.capital - cum[k],
                    )
                )
            EquitySnapshot.objects.bulk_create(snaps, ignore_conflicts=True)
        equity_now = bot.equity if bot.equity is not None else bot.capital
        bot.unrealized_pnl = equity_now - bot.capital - bot.realized_pnl

        pf = result.state.portfolio
        reserved = sum(float(o.get("reserved") or 0.0) for o in result.state.open_orders)
        cash = float(pf.get("cash", float(bot.capital)))
        positions = pf.get("positions", {})
        prices = self.last_closes()
        realized_by_market = dict(
            Trade.objects.filter(bot=bot, status=Trade.Status.CLOSED)
            .values_list("market_id")
            .annotate(s=Sum("realized_pnl"))
        )
        deals_by_symbol = {d["symbol"]: d for d in result.open_deals}
        rows = [
            PaperBalance(
                bot=bot,
                asset=bot.quote,
                free=money_dec(cash - reserved),
                used=money_dec(reserved),
                equity=equity_now,
                realized_pnl=bot.realized_pnl,
                unrealized_pnl=bot.unrealized_pnl,
            )  # fmt: skip
        ]
        for symbol, market in self.markets.items():
            amount = float(positions.get(symbol, {}).get("amount", 0.0))
            price = prices.get(symbol)
            value = money_dec(amount * price) if price is not None else Decimal("0")
            deal = deals_by_symbol.get(symbol)
            unreal = (
                money_dec(amount * price - deal["cost"] - deal["fees"])
                if (deal and price is not None and amount > 0)
                else Decimal("0")
            )
            rows.append(
                PaperBalance(
                    bot=bot,
                    asset=market.base,
                    free=amount_dec(self.specs[symbol], amount),
                    used=Decimal("0"),
                    equity=value,
                    realized_pnl=realized_by_market.get(market.pk) or Decimal("0"),
                    unrealized_pnl=unreal,
                )  # fmt: skip
            )
        PaperBalance.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["bot", "asset"],
            update_fields=["free", "used", "equity", "realized_pnl", "unrealized_pnl", "updated_at"],
        )  # fmt: skip

    def last_closes(self) -> dict[str, float]:
        return {s: close for s, (_, close) in self.price_points.items()}

    def publish(self, status_changed: bool) -> None:
        """Websocket events of this step (sent on commit). Schema: docs/bots.md."""
        from trading.selectors.bots import bot_today_pnl
        from trading.services.bots import bot_status_data

        bot, owner = self.bot, self.bot.owner_id
        for fill, order in self.fills[-MAX_EVENTS_PER_KIND:]:
            publish(owner, "order_filled", {
                "bot_id": bot.pk, "order_id": order.pk, "client_order_id": order.client_order_id, "symbol": order.market.symbol,
                "side": order.side, "type": order.type, "tag": order.tag, "deal_id": order.deal_id, "price": _s(fill.price),
                "amount": _s(fill.amount), "fee": _s(fill.fee), "fee_currency": fill.fee_currency, "time": fill.time.isoformat(),
            })  # fmt: skip
        closed_ids = {t.deal_id for t in self.closed_trades}
        for trade in self.new_trades[-MAX_EVENTS_PER_KIND:]:
            data = trade_data(trade)
            if trade.deal_id in closed_ids:  # opened and closed in one step: announce the opening as it was
                data.update(
                    {
                        "status": "open",
                        "closed_at": None,
                        "exit_price": None,
                        "exit_reason": "",
                        "realized_pnl": None,
                        "pnl_pct": None,
                    }
                )
            publish(owner, "trade_opened", data)
        for trade in self.closed_trades[-MAX_EVENTS_PER_KIND:]:
            publish(owner, "trade_closed", trade_data(trade))
        market_time = bot.last_candle_at
        for symbol, (t, close) in self.price_points.items():
            publish(
                owner,
                "price",
                {
                    "bot_id": bot.pk,
                    "symbol": symbol,
                    "price": _s(Decimal(repr(close))),
                    "time": ms_to_dt(t).isoformat(),
                    "time_ms": t,
                },
            )
        publish(owner, "pnl", {
            "bot_id": bot.pk, "equity": _s(bot.equity), "realized": _s(bot.realized_pnl), "unrealized": _s(bot.unrealized_pnl),
            "today": _s(bot_today_pnl(bot)), "capital": _s(bot.capital), "currency": bot.quote,
            "time": market_time.isoformat() if market_time else None, "time_ms": bot.last_candle_ms,
            "open_trades": len(self.result.open_deals),
        })  # fmt: skip
        if status_changed:
            publish(owner, "bot_status", bot_status_data(bot))


def _s(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
