"""A user's 3Commas DCA bot that receives our deal decisions as custom-signal webhooks.

:class:`ThreeCommasConnection`: one 3Commas bot (its ``bot_id``) and its secret
``email_token``, stored only as a Fernet token (``market7.secretbox``, the same key and rotation
as exchange accounts); ``token_hint`` keeps the last 4 characters for pages. Read the token
only through :meth:`ThreeCommasConnection.email_token`, to put it into a message being sent.

:class:`ThreeCommasSignal`: one decision sent (or being sent) for one of our deals — the
idempotency record. ``(connection, deal_id, action, seq)`` is unique: the row is claimed
before the webhook is posted, so a retry of the same decision finds it and never starts a
deal twice. ``payload`` is the message without the token.
"""

from __future__ import annotations

from django.db import models

from accounts.models import OwnedModel
from accounts.ownership import OwnedQuerySet
from market7 import secretbox


class ThreeCommasConnection(OwnedModel):
    label = models.CharField(max_length=64)
    bot_id = models.PositiveBigIntegerField(help_text="the 3Commas DCA bot's id")
    email_token_enc = models.TextField(editable=False)
    token_hint = models.CharField(max_length=4, editable=False, help_text="last 4 characters of the email token")
    delay_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner", "label"]
        constraints = [models.UniqueConstraint(fields=["owner", "label"], name="threecommas_unique_label")]

    def __str__(self) -> str:
        return f"{self.label} (3Commas bot {self.bot_id})"

    def email_token(self) -> str:
        """The decrypted token (``secretbox.SecretUndecryptable`` when no key opens it)."""
        return secretbox.decrypt(self.email_token_enc)


class ThreeCommasSignalQuerySet(OwnedQuerySet):
    owner_field = "connection__owner"


class ThreeCommasSignal(models.Model):
    class Action(models.TextChoices):
        START = "start_deal", "start deal"
        ADD_FUNDS = "add_funds", "add funds"
        CLOSE = "close", "close at market"

    class State(models.TextChoices):
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        REJECTED = "rejected", "rejected by 3Commas"
        NOT_SENT = "not_sent", "not sent (unreachable)"
        UNKNOWN = "unknown", "unknown (sent, no answer)"

    connection = models.ForeignKey(ThreeCommasConnection, on_delete=models.CASCADE, related_name="signals")
    deal_id = models.CharField(max_length=64, help_text="our deal id (the engine's)")
    action = models.CharField(max_length=16, choices=Action.choices)
    seq = models.PositiveIntegerField(default=0, help_text="safety-order number of an add_funds, else 0")
    symbol = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, help_text="the message sent, email_token redacted")
    state = models.CharField(max_length=8, choices=State.choices, default=State.SENDING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ThreeCommasSignalQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "deal_id", "action", "seq"], name="threecommas_signal_once")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.deal_id} ({self.state})"
