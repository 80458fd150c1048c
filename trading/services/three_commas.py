"""3Commas connection services: a user's 3Commas DCA bots (``ThreeCommasConnection``, the
email token encrypted at rest) and the idempotent sending of our deal decisions to them.

:func:`three_commas_send` is idempotent by our deal id: the ``ThreeCommasSignal`` row of
``(connection, deal_id, action, seq)`` is claimed in its own transaction *before* the webhook
is posted (the unique constraint settles two racing workers), and the outcome is stored after.
A retry of the same decision then:

- ``sent`` / ``rejected``: does nothing (returns the row) — a deal is never started twice;
- ``not_sent`` (connection refused: the message never left): sends again;
- ``unknown`` (timeout or 5xx after the request went out) or ``sending`` (a crash mid-send):
  sends a **close** again (closing a closed deal is harmless at 3Commas) but never a start or
  an add-funds — those stay ``unknown`` for the user to check on 3Commas.

Writes need the trader role (``trading.add/change/delete_threecommasconnection``):
:class:`ThreeCommasPermissionDenied`; a connection is reached only through
``ThreeCommasConnection.objects.for_user(user)`` (another user's: ``DoesNotExist``). No message,
audit entry, payload or log line holds the token.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditLog
from market7 import secretbox
from trading.brokers import three_commas as tc
from trading.models import ThreeCommasConnection, ThreeCommasSignal
from trading.services.bot_validation import _is_system

RESEND = {
    ThreeCommasSignal.State.NOT_SENT: set(tc.ACTIONS),
    ThreeCommasSignal.State.UNKNOWN: {tc.CLOSE},
    ThreeCommasSignal.State.SENDING: {tc.CLOSE},
}


class ThreeCommasValidationError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class ThreeCommasPermissionDenied(PermissionError):
    """The user's role may not manage 3Commas connections."""


def _require(user, action: str) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise ThreeCommasPermissionDenied("sign in to manage 3Commas connections")
    if not user.has_perm(f"trading.{action}_threecommasconnection"):
        raise ThreeCommasPermissionDenied("your role cannot manage 3Commas connections (trader role needed)")


def webhook_url() -> str:
    """Where signals go: ``settings.MARKET7_THREECOMMAS_URL`` (tests: a loopback receiver),
    3Commas' endpoint by default. Not per connection: a user cannot point the server elsewhere."""
    return getattr(settings, "MARKET7_THREECOMMAS_URL", "") or tc.DEFAULT_URL


@transaction.atomic
def three_commas_connection_create(
    *, user, label: str, bot_id: int | str, email_token: str, delay_seconds: int = 0
) -> ThreeCommasConnection:
    """A new connection of ``user`` to the 3Commas bot ``bot_id``; the token is encrypted."""
    _require(user, "add")
    errors: dict[str, str] = {}
    label = (label or "").strip()
    token = (email_token or "").strip()
    if not label or len(label) > 64:
        errors["label"] = "required, at most 64 characters"
    try:
        bot_id = int(bot_id)
        if bot_id <= 0:
            raise ValueError
    except (TypeError, ValueError):
        errors["bot_id"] = "the 3Commas bot id, a positive whole number"
    if not token or len(token) > 200 or any(c.isspace() for c in token):
        errors["email_token"] = "required: the bot's email_token, one word"
    if not 0 <= int(delay_seconds or 0) <= 3600:
        errors["delay_seconds"] = "0 to 3600"
    if label and ThreeCommasConnection.objects.for_user(user).filter(label=label).exists():
        errors["label"] = "you already have a 3Commas connection with this label"
    if errors:
        raise ThreeCommasValidationError(errors)
    conn = ThreeCommasConnection.objects.create(
        owner=user, label=label, bot_id=bot_id, email_token_enc=secretbox.encrypt(token),
        token_hint=token[-4:], delay_seconds=int(delay_seconds or 0),
    )  # fmt: skip
    AuditLog.objects.create(
        user=user, action="threecommas_connection_create", object_type="threecommas_connection",
        object_id=str(conn.pk), message=f"{conn.label} (bot {conn.bot_id}, token …{conn.token_hint})",
    )  # fmt: skip
    return conn


def _claim(conn: ThreeCommasConnection, d: tc.Decision, payload: dict) -> tuple[ThreeCommasSignal, bool]:
    """The decision's row, and whether this call may send it now (one transaction)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                sig = ThreeCommasSignal.objects.create(
                    connection=conn, deal_id=d.deal_id, action=d.action, seq=d.seq, symbol=d.symbol,
                    payload=payload, state=ThreeCommasSignal.State.SENDING, attempts=1,
                )  # fmt: skip
            return sig, True
        except IntegrityError:
            pass
        sig = ThreeCommasSignal.objects.select_for_update().get(
            connection=conn, deal_id=d.deal_id, action=d.action, seq=d.seq
        )
        if d.action not in RESEND.get(sig.state, set()):
            return sig, False
        sig.state, sig.attempts = ThreeCommasSignal.State.SENDING, sig.attempts + 1
        sig.save(update_fields=["state", "attempts"])
        return sig, True


def three_commas_send(
    *, user, connection: ThreeCommasConnection | int, decision: tc.Decision, session=None
) -> ThreeCommasSignal:
    """Send ``decision`` to the connection's 3Commas bot, at most once per (deal, action,
    step) — module doc. ``user``: the owner, or ``SYSTEM`` (the bot runner). The webhook is posted outside any transaction. Returns the row
    (``state`` says what happened). Errors: ``ThreeCommasConnection.DoesNotExist`` (not the
    user's), ``ValueError`` (a malformed decision), ``secretbox.SecretUndecryptable``."""
    pk = connection.pk if isinstance(connection, ThreeCommasConnection) else int(connection)
    qs = ThreeCommasConnection.objects.all() if _is_system(user) else ThreeCommasConnection.objects.for_user(user)
    conn = qs.get(pk=pk)
    message = tc.signal_message(decision, bot_id=conn.bot_id, email_token="", delay_seconds=conn.delay_seconds)
    sig, go = _claim(conn, decision, tc.redacted(message))
    if not go:
        return sig
    message["email_token"] = conn.email_token()
    timeout = float(getattr(settings, "MARKET7_THREECOMMAS_TIMEOUT_S", 10.0))
    out = tc.send_signal(webhook_url(), message, timeout=timeout, session=session)
    sig.state, sig.http_status, sig.detail = out.state, out.http_status, out.detail[:300]
    sig.sent_at = timezone.now() if out.state == ThreeCommasSignal.State.SENT else sig.sent_at
    sig.save(update_fields=["state", "http_status", "detail", "sent_at"])
    return sig
