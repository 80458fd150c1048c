"""Scheduling of bot steps: which bots are due, and enqueueing their steps.

No home-made loop — Celery beat and Celery workers do it (``docs/bots.md``):

- beat runs ``trading.tasks.bots_due`` every minute; :func:`bots_kick` enqueues it on demand
  (after a bot starts, resumes or is asked to close positions, so it acts at once);
- :func:`bots_due` lists the running, unclaimed bots with a new closed candle at their feed's
  "now" (``trading.services.feeds``), and the task enqueues ``trading.tasks.bot_step(bot_id)``
  on the ``trading`` queue for each;
- :func:`bot_step_enqueue` enqueues one bot's step (a bot that just started steps at once);
- enqueueing is bounded (``MARKET7_ENQUEUE_TIMEOUT_MS``, no retries): a request whose
  enqueue fails still commits its change, and the bot says its step was not queued
  (:func:`bots_not_queued`) until beat steps it;
- a worker that starts kicks ``bots_due`` at once and after one claim lease
  (:func:`bots_kick_on_worker_start`, from ``market7.celery``'s ``worker_ready`` handler).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from market7.timeframes import dt_to_ms
from trading.models import Bot, BotEvent
from trading.services.claims import claim_lease
from trading.services.feeds import feed_now, replay_end_ms

log = logging.getLogger(__name__)


#: Start of a bot's ``status_message`` when a request could not queue its step (cleared by
#: the bot's next step that processes candles).
NOT_QUEUED = "not queued"


def _send(name: str, *, args: list | None = None, countdown: float = 0.0, expires: float) -> str | None:
    """Publish task ``name`` on the trading queue after ``countdown`` seconds, **bounded**:
    one connection attempt with socket connect/read timeouts of ``MARKET7_ENQUEUE_TIMEOUT_MS``
    and no retries (Celery's default retry policy and kombu's connection retries made a request
    wait ~20 s for a Redis that was down). Returns None when sent, else the error's text
    (logged; never raised)."""
    from market7.celery import TaskQueue, app

    timeout_s = settings.MARKET7_ENQUEUE_TIMEOUT_MS / 1000.0
    options = {"max_retries": 0, "socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    try:
        with app.connection_for_write(transport_options=options) as conn:
            app.send_task(
                name, args=args, queue=TaskQueue.TRADING.value, countdown=countdown, expires=countdown + expires,
                connection=conn, retry=False, ignore_result=True,
            )  # fmt: skip
    except Exception as exc:
        log.warning("cannot enqueue %s%s: %s", name, args or "", exc)
        return str(exc) or type(exc).__name__
    return None


def bots_kick(*, countdown: float = 0.0) -> str | None:
    """Enqueue ``trading.tasks.bots_due`` on the trading queue, after ``countdown`` seconds.
    Bounded (:func:`_send`); returns None, or the error's text when the broker is unreachable:
    a missed kick only delays a bot to the next beat."""
    return _send("trading.tasks.bots_due", countdown=countdown, expires=55)


def bots_kick_on_worker_start() -> None:
    """A worker just started (``worker_ready``): kick ``bots_due`` now — the steps and replay
    chains a dead worker held are lost with it — and again once a claim it left has run out
    (lease + 1 s), so its bots are taken over within seconds instead of at the next beat."""
    bots_kick()
    bots_kick(countdown=claim_lease().total_seconds() + 1)


def bot_step_enqueue(*, bot_id: int, countdown: float = 0.0) -> str | None:
    """Enqueue ``trading.tasks.bot_step(bot_id)`` on the trading queue after ``countdown``
    seconds (a bot that just started steps at once instead of waiting for the next beat).
    Bounded (:func:`_send`); returns None, or the error's text: a missed enqueue only delays
    the bot to the next beat."""
    return _send("trading.tasks.bot_step", args=[bot_id], countdown=countdown, expires=55)


def bots_not_queued(*, bot_ids: list[int], error: str) -> str:
    """Record that the steps of bots ``bot_ids`` could not be queued: an ``error`` event in each
    bot's log (rule ``enqueue``) and, on a bot with no other status message, its
    ``status_message``; the bot keeps its status and beat steps it once the broker is back.
    Returns the message."""
    message = (
        f"{NOT_QUEUED}: the next step could not be queued (task broker unreachable: {error[:200]}); "
        "the scheduler runs it when the broker is back"
    )
    now = timezone.now()
    with transaction.atomic():
        BotEvent.objects.bulk_create(
            BotEvent(bot_id=pk, time=now, kind=BotEvent.Kind.ERROR, rule="enqueue", outcome="not_queued", reason=message)
            for pk in bot_ids
        )  # fmt: skip
        Bot.objects.filter(pk__in=bot_ids, status_message="").update(status_message=message)
    return message


def bots_due(*, now=None) -> list[int]:
    """Ids of running bots without a live claim with a new closed candle at their feed's now (pk order).

    Live: the wall clock is past the close of the candle after the last processed one.
    Replay: the replay clock is, and a candle at or after that open time is stored (a replay at
    the end of its data is not due).
    """
    wall = now or timezone.now()
    bots = list(
        Bot.objects.filter(status=Bot.Status.RUNNING)
        .exclude(claimed_at__gte=wall - claim_lease())
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
