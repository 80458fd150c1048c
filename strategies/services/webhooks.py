"""TradingView webhooks: per-user secret tokens and the alerts they deliver (issue 11 §4).

A user holds one active :class:`~strategies.models.WebhookToken`; :func:`webhook_token_rotate`
revokes it and returns a new secret, shown once (only its SHA-256 digest is stored).

:func:`webhook_receive` handles one ``POST /webhooks/tradingview/<token>/``: the JSON alert
``{"symbol": "BTCUSDT", "action": "buy"|"sell"|"close", "bot": id, "price": ..., "id": "<message
id>"}``. Checks, in order, each failure a :class:`WebhookError` with an HTTP status and a
one-line reason, and nothing written:

* 403 unknown or revoked token;
* 429 more than :data:`RATE_LIMIT` posts in the current minute for this token (Django's cache);
* 400 body not a JSON object, missing / bad ``id``, ``symbol``, ``action``, ``bot``, ``price``;
  ``close`` without a bot; a symbol that names no stored market;
* 404 ``bot`` not one of the token user's bots (the ownership gate ``Bot.objects.for_user``);
* 403 the user's role may not operate bots (``close``); 409 the bot is not running (``close``).

A (token, message id) seen before answers 200 ``{"status": "duplicate"}`` and writes nothing.
Otherwise a :class:`~strategies.models.WebhookSignal` (source ``"tradingview"``) is stored and,
for ``close``, the bot's close-all is queued through ``trading.services.bots.bot_close_all``,
in the same transaction (a refused close stores nothing).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from strategies.models import WebhookSignal, WebhookToken
from trading.models import Bot, Market

RATE_LIMIT = 30  # accepted + refused posts per token per clock minute
TOKEN_BYTES = 24  # secrets.token_urlsafe(24): 32 characters
PREFIX_LEN = 8


class WebhookError(Exception):
    """A refused post: ``status`` (HTTP 4xx) and ``reason`` (one line, for the sender)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class WebhookResult:
    """``status``: ``"recorded"`` or ``"duplicate"``; ``signal``: the stored (or earlier) row."""

    status: str
    signal: WebhookSignal


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_token_rotate(*, user) -> str:
    """Revoke ``user``'s active tokens and create a new one; returns the secret (shown once)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        WebhookToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        WebhookToken.objects.create(user=user, token_hash=token_hash(token), prefix=token[:PREFIX_LEN])
    return token


def webhook_token_active(*, user) -> WebhookToken | None:
    return WebhookToken.objects.filter(user=user, revoked_at__isnull=True).first()


def _minute() -> int:
    """The rate-limit window: minutes since the epoch."""
    return int(time.time()) // 60


def _rate_limited(tok: WebhookToken) -> bool:
    key = f"webhook-rate:{tok.token_hash[:16]}:{_minute()}"
    cache.add(key, 0, timeout=120)
    try:
        n = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        n = 1
    return n > RATE_LIMIT


def _parse(body: bytes) -> dict:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookError(400, "body must be a JSON object")
    msg_id = data.get("id")
    if not isinstance(msg_id, str | int) or isinstance(msg_id, bool) or not str(msg_id).strip():
        raise WebhookError(400, 'missing "id" (the message id, a string)')
    msg_id = str(msg_id).strip()
    if len(msg_id) > 128:
        raise WebhookError(400, '"id" longer than 128 characters')
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise WebhookError(400, 'missing "symbol" (e.g. "BTCUSDT")')
    action = data.get("action")
    if action not in WebhookSignal.Action.values:
        raise WebhookError(400, f'"action" must be one of buy, sell, close (got {action!r})')
    bot = data.get("bot")
    if bot is not None and (isinstance(bot, bool) or not str(bot).isdigit()):
        raise WebhookError(400, '"bot" must be a bot id (an integer)')
    if action == "close" and bot is None:
        raise WebhookError(400, '"close" needs "bot" (the id of the bot to close)')
    price = data.get("price")
    if price is not None:
        try:
            price = Decimal(str(price))
        except InvalidOperation:
            raise WebhookError(400, f'"price" is not a number ({price!r})') from None
        if not price.is_finite() or price <= 0:
            raise WebhookError(400, f'"price" must be a positive number ({data.get("price")!r})')
    return {"id": msg_id, "symbol": symbol.strip(), "action": action, "bot": bot, "price": price, "raw": data}


def _market(symbol: str, bot: Bot | None) -> Market:
    """``BTCUSDT``, ``BINANCE:BTCUSDT`` or ``BTC/USDT`` -> the stored market (one of the bot's
    markets first when a bot is named)."""
    name = symbol.split(":", 1)[1] if ":" in symbol and "/" not in symbol else symbol
    qs = Market.objects.filter(Q(exchange_symbol__iexact=name) | Q(symbol__iexact=name)).order_by("pk")
    market = (qs.filter(bots=bot).first() if bot is not None else None) or qs.first()
    if market is None:
        raise WebhookError(400, f"unknown symbol {symbol!r}: no stored market")
    return market


def webhook_receive(*, token: str, body: bytes) -> WebhookResult:
    """Authenticate, rate-limit, validate and record one alert (see the module docstring)."""
    from trading.services import bots as bot_services
    from trading.services.bot_validation import BotPermissionDenied, BotTransitionError

    tok = WebhookToken.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    if tok is None or tok.revoked_at is not None or not tok.user.is_active:
        raise WebhookError(403, "unknown or revoked token")
    if _rate_limited(tok):
        raise WebhookError(429, f"rate limit: more than {RATE_LIMIT} posts a minute for this token")
    alert = _parse(body)
    earlier = WebhookSignal.objects.filter(token=tok, message_id=alert["id"]).first()
    if earlier is not None:
        return WebhookResult("duplicate", earlier)
    bot = None
    if alert["bot"] is not None:
        bot = Bot.objects.for_user(tok.user).filter(pk=int(alert["bot"])).first()
        if bot is None:
            raise WebhookError(404, f"bot {alert['bot']} not found")
    market = _market(alert["symbol"], bot)
    try:
        with transaction.atomic():
            signal = WebhookSignal.objects.create(
                token=tok, owner=tok.user, message_id=alert["id"], symbol=alert["symbol"], market=market,
                action=alert["action"], bot=bot, price=alert["price"], payload=alert["raw"], result="recorded",
            )  # fmt: skip
            if alert["action"] == "close":
                n = bot_services.bot_close_all(user=tok.user, bot=bot)
                signal.result = f"close_all queued ({n} open deal{'s' if n != 1 else ''})"
                signal.save(update_fields=["result"])
            WebhookToken.objects.filter(pk=tok.pk).update(last_used=timezone.now())
    except IntegrityError:  # the same id raced in from a concurrent post
        return WebhookResult("duplicate", WebhookSignal.objects.get(token=tok, message_id=alert["id"]))
    except BotPermissionDenied as exc:
        raise WebhookError(403, str(exc)) from None
    except BotTransitionError as exc:
        raise WebhookError(409, str(exc)) from None
    return WebhookResult("recorded", signal)
