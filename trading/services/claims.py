"""Claims: which worker is stepping a bot right now.

A claim is one conditional ``UPDATE`` on the bot row (healthchecks' ``sendalerts`` style): it
sets ``claimed_at``/``claim_token`` only when the bot is running and not claimed (or its claim
is older than :data:`CLAIM_TTL`, i.e. its worker died); a second worker gets 0 rows and skips.
The claim is committed on its own, before the step's transaction; the step re-checks the token
with the bot row locked and releases the claim in its own commit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from trading.models import Bot

CLAIM_TTL = timedelta(minutes=5)


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
    """Release the claim ``token`` on bot ``bot_id`` (a no-op when another worker holds it)."""
    Bot.objects.filter(pk=bot_id, claim_token=token).update(claimed_at=None, claim_token="")
