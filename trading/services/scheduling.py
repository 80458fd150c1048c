"""Scheduling of bot steps: which bots are due, and enqueueing their steps.

No home-made loop — Celery beat and Celery workers do it (``docs/bots.md``):

- beat runs ``trading.tasks.bots_due`` every minute; :func:`bots_kick` enqueues it on demand
  (after a bot starts, resumes or is asked to close positions, so it acts at once);
- :func:`bots_due` lists the running, unclaimed bots with a new closed candle at their feed's
  "now" (``trading.services.feeds``), and the task enqueues ``trading.tasks.bot_step(bot_id)``
  on the ``trading`` queue for each;
- :func:`bot_step_enqueue` enqueues one bot's step (a bot that just started steps at once);
- a worker that starts kicks ``bots_due`` at once and after one claim lease
  (:func:`bots_kick_on_worker_start`, from ``market7.celery``'s ``worker_ready`` handler).
"""

from __future__ import annotations

import logging

from django.utils import timezone

from market7.timeframes import dt_to_ms
from trading.models import Bot
from trading.services.claims import claim_lease
from trading.services.feeds import feed_now, replay_end_ms

log = logging.getLogger(__name__)


def bots_kick(*, countdown: float = 0.0) -> None:
    """Enqueue ``trading.tasks.bots_due`` on the trading queue, after ``countdown`` seconds.
    Errors are logged: a missed kick only delays a bot to the next beat."""
    from market7.celery import TaskQueue, app

    try:
        app.send_task(
            "trading.tasks.bots_due", queue=TaskQueue.TRADING.value, countdown=countdown, expires=countdown + 55
        )
    except Exception:  # pragma: no cover - broker down
        log.exception("bots_kick: cannot enqueue bots_due")


def bots_kick_on_worker_start() -> None:
    """A worker just started (``worker_ready``): kick ``bots_due`` now — the steps and replay
    chains a dead worker held are lost with it — and again once a claim it left has run out
    (lease + 1 s), so its bots are taken over within seconds instead of at the next beat."""
    bots_kick()
    bots_kick(countdown=claim_lease().total_seconds() + 1)


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
