"""Bot services: create/update with the strategy's schema, the status machine, manual closes.

Every function here is one transaction, takes keyword-only arguments and an acting ``user``
(or :data:`SYSTEM` for operator tools: management commands, tasks). The bot is always re-read
through the ownership gate ``Bot.objects.for_user(user)`` with ``select_for_update`` — another
user's bot raises ``Bot.DoesNotExist`` (a 404 in views), never a leak; a user without the
permission raises :class:`BotPermissionDenied` (a ``PermissionDenied``: 403) and nothing is
written. Every operation writes an :class:`accounts.models.AuditLog` entry and a ``status``
:class:`BotEvent`; websocket events (``bot_status``) go out after commit through
``market7.events.publish``.

Status machine (``docs/bots.md``)::

    created --start--> running --pause--> paused --resume--> running
    running | paused | error --stop--> stopped
    stopped | error --restart--> running

Errors: :class:`BotValidationError` (``.errors`` = ``{field: message}``, nothing saved),
:class:`BotTransitionError` (invalid transition, e.g. "cannot pause a stopped bot"),
:class:`BotPermissionDenied`, :class:`LiveTradingDisabled` (live mode refuses to start).
They, :data:`SYSTEM` and the input validators live in :mod:`trading.services.bot_validation`
and are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import AuditLog
from market7.events import publish
from market7.timeframes import dt_to_ms, ms_to_dt
from trading.models import Bot, BotEvent, Market, Timeframe
from trading.services.bot_commands import _kick_after_commit, _queue_command  # noqa: F401  (re-exported)

# Errors, SYSTEM, the permission check and the validators live one floor down; they stay
# importable from here (``from trading.services.bots import BotValidationError``).
from trading.services.bot_perpetuals import bot_perpetual_apply, bot_perpetual_validate
from trading.services.bot_validation import (  # noqa: F401  (re-exported)
    ADD_PERM,
    CHANGE_PERM,
    MAX_CAPITAL,
    OPERATE_PERM,
    ORDER_SIZE_PARAMS,
    SYSTEM,
    BotError,
    BotPermissionDenied,
    BotTransitionError,
    BotValidationError,
    LiveTradingDisabled,
    _check_order_sizes,
    _check_replay,
    _is_system,
    _json_safe,
    _parse_capital,
    _require,
    _resolve_markets,
    bot_validate_risk,
    params_and_risk_validate,
    signal_settings_validate,
    strategy_validate_params,
    watched_symbols_check,
)
from trading.services.live_bots import live_account_validate, live_start_check

log = logging.getLogger(__name__)


def _locked_bot(user, bot: Bot | int) -> Bot:
    """Re-read ``bot`` through the ownership gate, row-locked for this transaction."""
    pk = bot.pk if isinstance(bot, Bot) else int(bot)
    qs = Bot.objects.all() if _is_system(user) else Bot.objects.for_user(user)
    return qs.select_for_update().get(pk=pk)


def _audit(user, action: str, bot: Bot, message: str = "", payload: dict | None = None) -> None:
    AuditLog.objects.create(
        user=None if _is_system(user) else user,
        action=action,
        object_type="trading.bot",
        object_id=str(bot.pk),
        message=message,
        payload=payload or {},
    )


def bot_status_data(bot: Bot) -> dict[str, Any]:
    """The ``bot_status`` websocket event's data (JSON-safe). Schema: docs/bots.md."""
    return {
        "bot_id": bot.pk,
        "name": bot.name,
        "status": bot.status,
        "status_message": bot.status_message,
        "mode": bot.mode,
        "feed": bot.feed,
        "last_candle_at": bot.last_candle_at.isoformat() if bot.last_candle_at else None,
        "time": timezone.now().isoformat(),
    }


def _status_changed(user, bot: Bot, action: str, message: str = "") -> None:
    """Save the bot, write the status event + audit entry, publish ``bot_status`` on commit."""
    bot.save()
    now = timezone.now()
    BotEvent.objects.create(
        bot=bot,
        time=now,
        kind=BotEvent.Kind.STATUS,
        rule=action,
        outcome=bot.status,
        reason=message or f"{action}: bot is {bot.status}",
        payload={"by": getattr(user, "username", "")},
    )
    _audit(user, action, bot, message or f"bot is {bot.status}")
    publish(bot.owner_id, "bot_status", bot_status_data(bot))


def _freeze_replay_clock(bot: Bot, now: datetime) -> None:
    if bot.feed == Bot.FeedKind.REPLAY and bot.replay_clock is not None and bot.replay_clock_wall is not None:
        bot.replay_clock = bot.replay_now(now)
        bot.replay_clock_wall = None


def _run_replay_clock(bot: Bot, now: datetime) -> None:
    if bot.feed == Bot.FeedKind.REPLAY:
        if bot.replay_clock is None:
            bot.replay_clock = bot.replay_start
        bot.replay_clock_wall = now


# --- create / update ------------------------------------------------------------------------


@transaction.atomic
def bot_create(
    *,
    user,
    name: str,
    strategy: str,
    markets: Iterable[Market | str | int],
    capital: Decimal | str | float,
    params: dict | None = None,
    timeframe: str = "1h",
    mode: str = Bot.Mode.PAPER,
    feed: str = Bot.FeedKind.LIVE,
    replay_start: datetime | None = None,
    replay_speed: float = 3600.0,
    exchange: str = "binance",
    owner=None,
    risk: dict | None = None,
    signal_strategies: list[str] | None = None,
    signal_min_score: float | None = None,
    perpetual: dict | None = None,
    exchange_account=None,
) -> Bot:
    """Create a bot in status ``created`` after validating everything (nothing saved on error).

    ``markets``: ccxt symbols on ``exchange`` (``["BTC/USDT", "ETH/USDT"]``), Market ids or rows.
    ``capital``: quote currency (Decimal or a string like ``"1000"``). ``params`` are validated
    by the strategy's schema (defaults filled in); ``risk`` (a ``RiskConfig`` dict, ``None`` =
    no portfolio risk) by :func:`bot_validate_risk`; ``signal_strategies`` / ``signal_min_score``
    (signal starts) by :func:`signal_settings_validate`; ``perpetual`` by ``bot_perpetual_validate``.
    ``owner`` defaults to ``user``; only
    :data:`SYSTEM` may create for someone else. Needs ``trading.add_bot``.
    Raises BotValidationError / BotPermissionDenied.
    """
    _require(user, ADD_PERM, "create bots")
    owner = owner if owner is not None else (None if _is_system(user) else user)
    if owner is None:
        raise BotValidationError({"owner": "a bot needs an owner"})
    if not _is_system(user) and owner.pk != user.pk:
        raise BotPermissionDenied("you can only create bots for yourself")

    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "give the bot a name"
    elif len(name) > 120:
        errors["name"] = "at most 120 characters"
    if timeframe not in Timeframe.values:
        errors["timeframe"] = f"unsupported timeframe {timeframe!r}; use one of {', '.join(Timeframe.values)}"
    if mode not in Bot.Mode.values:
        errors["mode"] = f"mode must be one of {', '.join(Bot.Mode.values)}"
    if feed not in Bot.FeedKind.values:
        errors["feed"] = f"feed must be one of {', '.join(Bot.FeedKind.values)}"
    if mode == Bot.Mode.LIVE and feed == Bot.FeedKind.REPLAY:
        errors["feed"] = "a live bot cannot trade a replay"
    for _key, check in (
        ("capital", lambda: _parse_capital(capital)),
        ("markets", lambda: _resolve_markets(markets, exchange)),
        ("signal", lambda: signal_settings_validate(signal_strategies, signal_min_score)),
    ):
        try:
            check()
        except BotValidationError as exc:
            errors.update(exc.errors)
    validated, risk = params_and_risk_validate(strategy, params, risk, errors)
    if errors:
        raise BotValidationError(errors)
    market_rows = _resolve_markets(markets, exchange)
    account = live_account_validate(owner=owner, value=exchange_account, mode=mode, markets=market_rows)
    _check_order_sizes(validated, market_rows)
    watched = watched_symbols_check(validated, params, market_rows[0].exchange_id, market_rows[0].exchange.code)
    if watched:
        raise BotValidationError(watched)
    start = None
    speed = float(replay_speed or 3600.0)
    if feed == Bot.FeedKind.REPLAY:
        start, speed = _check_replay(market_rows, timeframe, replay_start, replay_speed)
    perp = bot_perpetual_validate(markets=market_rows, perpetual=perpetual, replay_start_ms=start and dt_to_ms(start))

    signal_names, min_score = signal_settings_validate(signal_strategies, signal_min_score)
    bot = Bot.objects.create(
        **perp,
        owner=owner,
        name=name,
        strategy=strategy,
        params=validated,
        risk=risk,
        timeframe=timeframe,
        mode=mode,
        capital=_parse_capital(capital),
        quote=market_rows[0].quote,
        feed=feed,
        replay_start=start,
        replay_speed=speed,
        replay_clock=start,
        signal_strategies=signal_names,
        signal_min_score=min_score,
        exchange_account=account,
    )
    bot.markets.set(market_rows)
    _audit(
        user,
        "bot_create",
        bot,
        f"created {bot.name}",
        {"strategy": strategy, "markets": [m.symbol for m in market_rows]},
    )
    return bot


_ANY_TIME_FIELDS = {"name", "signal_strategies", "signal_min_score"}
_NOT_RUNNING_FIELDS = {"params", "risk", "exchange_account"}
_CREATED_ONLY_FIELDS = {"strategy", "markets", "timeframe", "mode", "capital", "feed", "replay_start", "replay_speed"}
_CREATED_ONLY_FIELDS.add("perpetual")  # {"leverage", "margin_mode", "liquidation_buffer_pct"}


@transaction.atomic
def bot_update(*, user, bot: Bot | int, **changes: Any) -> Bot:
    """Change a bot. ``name`` and the signal starts any time; ``params`` and ``risk`` when not running; ``strategy``, ``markets``,
    ``timeframe``, ``mode``, ``capital``, ``feed``, ``replay_start``, ``replay_speed`` only
    before the first start (status ``created``) — the engine state depends on them.

    Same validation as :func:`bot_create`. Needs ``trading.change_bot``.
    """
    _require(user, CHANGE_PERM, "edit bots")
    bot = _locked_bot(user, bot)
    unknown = set(changes) - _ANY_TIME_FIELDS - _NOT_RUNNING_FIELDS - _CREATED_ONLY_FIELDS
    if unknown:
        raise BotValidationError({k: "cannot be changed" for k in sorted(unknown)})
    errors: dict[str, str] = {}
    for key in changes:
        if key in _CREATED_ONLY_FIELDS and bot.status != Bot.Status.CREATED:
            errors[key] = f"can only be changed before the bot first starts (bot is {bot.status})"
        if key in _NOT_RUNNING_FIELDS and bot.status == Bot.Status.RUNNING:
            errors[key] = "pause or stop the bot first"
    if errors:
        raise BotValidationError(errors)

    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name or len(name) > 120:
            raise BotValidationError({"name": "give the bot a name of at most 120 characters"})
        bot.name = name
    if {"signal_strategies", "signal_min_score"} & set(changes):
        bot.signal_strategies, bot.signal_min_score = signal_settings_validate(
            changes.get("signal_strategies", bot.signal_strategies),
            changes.get("signal_min_score", bot.signal_min_score),
        )
    strategy = changes.get("strategy", bot.strategy)
    if "params" in changes or "strategy" in changes:
        bot.params = strategy_validate_params(strategy, changes.get("params", bot.params))
        bot.strategy = strategy
    if "risk" in changes:
        bot.risk = bot_validate_risk(changes["risk"])
    if "timeframe" in changes:
        if changes["timeframe"] not in Timeframe.values:
            raise BotValidationError({"timeframe": f"unsupported timeframe {changes['timeframe']!r}"})
        bot.timeframe = changes["timeframe"]
    if "mode" in changes:
        if changes["mode"] not in Bot.Mode.values:
            raise BotValidationError({"mode": f"mode must be one of {', '.join(Bot.Mode.values)}"})
        bot.mode = changes["mode"]
    if "capital" in changes:
        bot.capital = _parse_capital(changes["capital"])
    market_rows = list(bot.markets.all())
    if "markets" in changes:
        exchange = market_rows[0].exchange.code if market_rows else "binance"
        market_rows = _resolve_markets(changes["markets"], exchange)
        bot.markets.set(market_rows)
        bot.quote = market_rows[0].quote
    if {"params", "strategy", "markets"} & set(changes):
        _check_order_sizes(bot.params, market_rows)
        if market_rows:
            watched = watched_symbols_check(
                bot.params, changes.get("params"), market_rows[0].exchange_id, market_rows[0].exchange.code
            )
            if watched:
                raise BotValidationError(watched)
    if "feed" in changes:
        if changes["feed"] not in Bot.FeedKind.values:
            raise BotValidationError({"feed": f"feed must be one of {', '.join(Bot.FeedKind.values)}"})
        bot.feed = changes["feed"]
    if bot.feed == Bot.FeedKind.REPLAY and (
        {"replay_start", "replay_speed", "feed", "markets", "timeframe"} & set(changes)
    ):
        start, speed = _check_replay(
            market_rows,
            bot.timeframe,
            changes.get("replay_start", bot.replay_start),
            changes.get("replay_speed", bot.replay_speed),
        )
        bot.replay_start = bot.replay_clock = start
        bot.replay_speed = speed
    if bot.mode == Bot.Mode.LIVE and bot.feed == Bot.FeedKind.REPLAY:
        raise BotValidationError({"feed": "a live bot cannot trade a replay"})
    if "exchange_account" in changes or ("mode" in changes and bot.exchange_account_id):
        bot.exchange_account = live_account_validate(
            owner=bot.owner,
            value=changes.get("exchange_account", bot.exchange_account_id),
            mode=bot.mode,
            markets=market_rows,
        )
    bot_perpetual_apply(bot, market_rows, changes)
    bot.save()
    _audit(user, "bot_update", bot, "changed " + ", ".join(sorted(changes)), {"fields": sorted(changes)})
    return bot


# --- the status machine ---------------------------------------------------------------------

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    # action: (from statuses, to status)
    "start": ((Bot.Status.CREATED,), Bot.Status.RUNNING),
    "pause": ((Bot.Status.RUNNING,), Bot.Status.PAUSED),
    "resume": ((Bot.Status.PAUSED,), Bot.Status.RUNNING),
    "stop": ((Bot.Status.RUNNING, Bot.Status.PAUSED, Bot.Status.ERROR), Bot.Status.STOPPED),
    "restart": ((Bot.Status.STOPPED, Bot.Status.ERROR), Bot.Status.RUNNING),
}


def _check_transition(bot: Bot, action: str) -> str:
    allowed, target = TRANSITIONS[action]
    if bot.status not in allowed:
        raise BotTransitionError(f"cannot {action} a bot that is {bot.status} (allowed from: {', '.join(allowed)})")
    return target


def _check_can_run(bot: Bot) -> None:
    live_start_check(bot)  # a live bot needs a tested account with trade permission


def _initial_last_candle(bot: Bot, now: datetime) -> datetime:
    """Where a fresh bot starts: a replay before its first candle; a live bot after the last
    candle already closed (it trades from now on, it does not back-trade history)."""
    tf = bot.timeframe_ms
    if bot.feed == Bot.FeedKind.REPLAY:
        return ms_to_dt(dt_to_ms(bot.replay_start) - tf)
    now_ms = dt_to_ms(now)
    return ms_to_dt(now_ms - now_ms % tf - tf)


@transaction.atomic
def bot_start(*, user, bot: Bot | int) -> Bot:
    """created -> running. Live mode: LiveTradingDisabled. Enqueues the bot's first step after
    commit (:func:`_step_after_commit`), so it does not wait for the minute beat."""
    _require(user, OPERATE_PERM, "start bots")
    bot = _locked_bot(user, bot)
    bot.status = _check_transition(bot, "start")
    _check_can_run(bot)
    now = timezone.now()
    bot.last_candle_at = _initial_last_candle(bot, now)
    bot.state = {}
    bot.started_at = now
    bot.stopped_at = None
    bot.status_message = ""
    bot.equity = bot.capital
    _run_replay_clock(bot, now)
    _status_changed(user, bot, "bot_start")
    _step_after_commit(bot)
    return bot


def _step_after_commit(bot: Bot) -> None:
    """Enqueue the bot's first step once the start is committed: at once for a live feed (its
    first candle has closed), and when the first replay candle closes on the replay clock."""
    from trading.services.runner import bot_step_enqueue_after_request

    countdown = bot.timeframe_ms / 1000.0 / bot.replay_speed if bot.feed == Bot.FeedKind.REPLAY else 0.0
    bot_id = bot.pk
    transaction.on_commit(lambda: bot_step_enqueue_after_request(bot_id=bot_id, countdown=countdown))


@transaction.atomic
def bot_pause(*, user, bot: Bot | int) -> Bot:
    """running -> paused: no new steps; open orders and deals stay; the replay clock freezes."""
    _require(user, OPERATE_PERM, "pause bots")
    bot = _locked_bot(user, bot)
    bot.status = _check_transition(bot, "pause")
    _freeze_replay_clock(bot, timezone.now())
    _status_changed(user, bot, "bot_pause")
    return bot


@transaction.atomic
def bot_resume(*, user, bot: Bot | int) -> Bot:
    """paused -> running; the replay clock runs on from where it froze. A live-feed bot
    catches up on the candles that closed while paused (decisions on each, as a backtest)."""
    _require(user, OPERATE_PERM, "resume bots")
    bot = _locked_bot(user, bot)
    bot.status = _check_transition(bot, "resume")
    _check_can_run(bot)
    _run_replay_clock(bot, timezone.now())
    bot.status_message = ""
    _status_changed(user, bot, "bot_resume")
    _kick_after_commit(bot)
    return bot


@transaction.atomic
def bot_stop(*, user, bot: Bot | int, message: str = "") -> Bot:
    """running | paused | error -> stopped. Open deals stay open (close them with
    :func:`bot_close_all` first, or restart later); the replay clock freezes."""
    _require(user, OPERATE_PERM, "stop bots")
    bot = _locked_bot(user, bot)
    bot.status = _check_transition(bot, "stop")
    now = timezone.now()
    _freeze_replay_clock(bot, now)
    bot.stopped_at = now
    bot.status_message = message
    _status_changed(user, bot, "bot_stop", message)
    return bot


@transaction.atomic
def bot_restart(*, user, bot: Bot | int) -> Bot:
    """stopped | error -> running, continuing from the saved state (an error's message is
    cleared; the step that failed runs again)."""
    _require(user, OPERATE_PERM, "restart bots")
    bot = _locked_bot(user, bot)
    bot.status = _check_transition(bot, "restart")
    _check_can_run(bot)
    _run_replay_clock(bot, timezone.now())
    bot.status_message = ""
    bot.stopped_at = None
    bot.claimed_at = None
    bot.claim_token = ""
    _status_changed(user, bot, "bot_restart")
    _kick_after_commit(bot)
    return bot


@transaction.atomic
def bot_resume_trading(*, user, bot: Bot | int) -> str:
    """Lift a drawdown pause or a daily-loss halt of the bot's portfolio risk
    (``RiskManager.resume(by=<username>, daily=True)`` on the saved risk state). The decision
    with its reason is queued in the risk state and logged by the next step; a ``status`` event
    says who asked now. Returns the reason. Errors: BotTransitionError when no risk rule blocks
    entries, BotPermissionDenied.
    """
    from strategies.risk import risk_manager_from_config

    _require(user, OPERATE_PERM, "resume trading")
    bot = _locked_bot(user, bot)
    state = dict(bot.state or {})
    if bot.risk is None or not state.get("risk"):
        raise BotTransitionError("trading is not paused: no portfolio risk rule blocks new entries")
    manager = risk_manager_from_config(bot.risk)
    manager.load_state(state["risk"])
    decision = manager.resume(by=getattr(user, "username", "") or "system", daily=True)
    if decision is None:
        raise BotTransitionError("trading is not paused: no portfolio risk rule blocks new entries")
    state["risk"] = manager.state_dict()
    bot.state = state
    bot.save(update_fields=["state", "updated_at"])
    BotEvent.objects.create(
        bot=bot, time=timezone.now(), kind=BotEvent.Kind.STATUS, rule="resume_trading", outcome="resumed",
        reason=decision.reason, payload={"by": getattr(user, "username", "")},
    )  # fmt: skip
    _audit(user, "bot_resume_trading", bot, decision.reason)
    publish(bot.owner_id, "bot_status", bot_status_data(bot))
    return decision.reason


BOT_ACTIONS = {"start": bot_start, "pause": bot_pause, "resume": bot_resume, "stop": bot_stop, "restart": bot_restart}


def bot_allowed_actions(bot: Bot) -> list[str]:
    """The transitions the bot's status allows now, e.g. ``["pause", "stop"]`` (for buttons)."""
    return [action for action, (allowed, _) in TRANSITIONS.items() if bot.status in allowed]


@transaction.atomic
def bot_delete(*, user, bot: Bot | int) -> None:
    """Delete a bot that is not running or paused (its orders, trades and log go with it)."""
    _require(user, "trading.delete_bot", "delete bots")
    bot = _locked_bot(user, bot)
    if bot.is_active:
        raise BotTransitionError(f"stop the bot before deleting it (it is {bot.status})")
    _audit(user, "bot_delete", bot, f"deleted {bot.name}")
    bot.delete()
