"""Claims: which worker is stepping a bot right now, as a short lease kept alive by a heartbeat.

A claim is one conditional ``UPDATE`` on the bot row (healthchecks' ``sendalerts`` style): it
sets ``claim_token`` and ``claimed_at`` only when the bot is running and not claimed, or its
lease ran out; a second worker gets 0 rows and skips. ``claimed_at`` is the time the lease was
last renewed, on the real (wall) clock: a claim is live for :func:`claim_lease` seconds
(``MARKET7_BOT_CLAIM_LEASE_S``, default 15) after it. While a step works outside its
transaction (loading the bot, polling a live exchange) :func:`claim_heartbeat` renews the lease
every third of it from a thread; inside the transaction the bot row is locked, so no other
worker can take the claim over before the step commits or its connection dies with it.

A worker killed mid-step leaves its claim set: its lease runs out within
``MARKET7_BOT_CLAIM_LEASE_S`` and the next worker takes the bot over (``docs/bots.md``,
"Recovery"). The step re-checks its token with the bot row locked, so a worker that stalled
past its lease while another took over writes nothing.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from trading.models import Bot

log = logging.getLogger(__name__)


def claim_lease() -> timedelta:
    """How long a claim lives after its last renewal (``MARKET7_BOT_CLAIM_LEASE_S``)."""
    return timedelta(seconds=settings.MARKET7_BOT_CLAIM_LEASE_S)


def bot_claim(*, bot_id: int, now: datetime | None = None) -> str | None:
    """Claim a running bot for one step; returns the claim token (16 hex chars), or None when
    the bot is not running or another worker holds a live lease. ``now``: the lease clock (wall
    time, default ``timezone.now()``). One conditional UPDATE, committed on its own."""
    wall = now or timezone.now()
    token = secrets.token_hex(8)
    n = (
        Bot.objects.filter(pk=bot_id, status=Bot.Status.RUNNING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=wall - claim_lease()))
        .update(claimed_at=wall, claim_token=token)
    )
    return token if n else None


def bot_claim_renew(*, bot_id: int, token: str, now: datetime | None = None) -> bool:
    """Renew the lease of claim ``token`` (``claimed_at = now``); False when the claim is no
    longer ours (released, or taken over after its lease ran out)."""
    return bool(Bot.objects.filter(pk=bot_id, claim_token=token).update(claimed_at=now or timezone.now()))


def bot_release(*, bot_id: int, token: str) -> None:
    """Release the claim ``token`` on bot ``bot_id`` (a no-op when another worker holds it)."""
    Bot.objects.filter(pk=bot_id, claim_token=token).update(claimed_at=None, claim_token="")


class ClaimHeartbeat:
    """A daemon thread renewing claim ``token`` every ``interval_s`` seconds until stopped.

    ``lost`` turns True when a renewal finds the claim gone (the step will then skip at its
    token re-check). A renewal that fails (database unreachable) is logged and retried at the
    next beat. The thread closes its own database connection when it ends.
    """

    def __init__(self, *, bot_id: int, token: str, interval_s: float) -> None:
        self.bot_id, self.token, self.interval_s = bot_id, token, interval_s
        self.lost = False
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"claim-heartbeat-{bot_id}", daemon=True)

    def start(self) -> ClaimHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    if not bot_claim_renew(bot_id=self.bot_id, token=self.token):
                        self.lost = True
                        return
                    self.renewals += 1
                except Exception:
                    log.warning("bot %s: cannot renew the claim lease", self.bot_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)


@contextmanager
def claim_heartbeat(*, bot_id: int, token: str) -> Iterator[ClaimHeartbeat]:
    """Keep claim ``token`` alive while the block runs: renews the lease every third of
    :func:`claim_lease` from a thread. Use it around work done *outside* the step's
    transaction (inside, the locked bot row protects the claim)."""
    beat = ClaimHeartbeat(bot_id=bot_id, token=token, interval_s=claim_lease().total_seconds() / 3).start()
    try:
        yield beat
    finally:
        beat.stop()
