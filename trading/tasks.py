"""Celery tasks of the trading app: thin — take ids, call one service (DESIGN.md §2).

- ``trading.tasks.bots_due`` (beat, every 60 s, and on demand through
  ``trading.services.runner.bots_kick``; a worker that starts kicks it too, see
  ``market7.celery``): enqueue ``bot_step`` for every due bot.
- ``trading.tasks.bot_step(bot_id)``: one step of one bot; a replay bot that processed candles
  re-enqueues itself with the countdown the step returned (see ``trading.services.runner``).
  When the pool process running it dies (killed, out of memory) the worker re-sends it once
  the dead claim's lease has run out (``retry_on_worker_lost``, at most
  :data:`STEP_LOST_RETRIES` times, so a step that kills its worker does not loop).

Both run on the ``trading`` queue.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from market7.celery import TaskQueue

STEP_EXPIRES_S = 300  # a step enqueued long ago is pointless: beat enqueues a fresh one
STEP_LOST_RETRIES = 2


@shared_task(name="trading.tasks.bots_due", ignore_result=True)
def bots_due() -> list[int]:
    """Enqueue ``bot_step`` for each bot with a new closed candle; returns their ids."""
    from trading.services.runner import bots_due as due

    ids = due()
    for bot_id in ids:
        bot_step.apply_async(args=[bot_id], queue=TaskQueue.TRADING.value, expires=STEP_EXPIRES_S)
    return ids


@shared_task(
    name="trading.tasks.bot_step",
    ignore_result=True,
    retry_on_worker_lost=True,
    max_retries=STEP_LOST_RETRIES,
    # the dead worker's claim must have run out when the retry runs: lease + 1 s
    default_retry_delay=settings.MARKET7_BOT_CLAIM_LEASE_S + 1,
)
def bot_step(bot_id: int) -> dict:
    """One step of bot ``bot_id`` (claim, engine, save; errors put the bot in ``error``)."""
    from trading.services.runner import bot_step as step

    report = step(bot_id=int(bot_id))
    if report.next_due_s is not None:
        bot_step.apply_async(
            args=[bot_id], queue=TaskQueue.TRADING.value, countdown=report.next_due_s, expires=STEP_EXPIRES_S
        )
    return report.as_dict()
