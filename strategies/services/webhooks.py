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
* with a bot: 403 the user's role may not operate bots; 409 the bot is not running; 400 the bot
  does not trade the alert's market.

A (token, message id) seen before answers 200 ``{"status": "duplicate"}`` and writes nothing.
Otherwise a :class:`~strategies.models.WebhookSignal` (source ``"tradingview"``) is stored and,
when the alert names a bot, a command is queued on it in the same transaction
(``trading.services.bot_commands``; the bot's next step applies it through
``Engine.apply_commands``; a ``status`` event ``tradingview`` "requested" in its log; a
scheduler kick after commit):

* ``buy``: ``{"cmd": "start_deal", "symbol": "BTC/USDT", "side": "long", "source":
  "tradingview", "score": null, "reason": "TradingView alert <message id>", "signal_time": null}``;
* ``sell``: the same with ``"side": "short"`` on a short-side bot (params ``direction`` =
  ``"short"``), else ``{"cmd": "close_symbol", "symbol": "BTC/USDT", "source": "tradingview"}``
  (close the long);
* ``close``: that ``close_symbol``.

``result`` says what was queued (``"start_deal long BTC/USDT queued"``). An alert without a
bot is only recorded.
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


def bot_action_command(action: str, bot: Bot, market: Market, message_id: str) -> dict:
    """The command an alert's ``action`` queues on ``bot`` for ``market`` (see the module
    docstring): ``buy`` a long ``start_deal``; ``sell`` a short ``start_deal`` on a short-side
    bot (params ``direction`` = ``"short"``), else a ``close_symbol`` (close the long);
    ``close`` a ``close_symbol``."""
    short_bot = (bot.params or {}).get("direction") == "short"
    if action == "buy" or (action == "sell" and short_bot):
        return {
            "cmd": "start_deal", "symbol": market.symbol, "side": "long" if action == "buy" else "short",
            "source": "tradingview", "score": None, "reason": f"TradingView alert {message_id}", "signal_time": None,
        }  # fmt: skip
    return {"cmd": "close_symbol", "symbol": market.symbol, "source": "tradingview"}


def _check_bot(user, bot: Bot, market: Market) -> None:
    """The alert's bot may take a command now: the user may operate bots (403), the bot runs
    (409: a bot that takes no step would never act on it) and trades the alert's market (400)."""
    from trading.services.bot_validation import OPERATE_PERM

    if not user.has_perm(OPERATE_PERM):
        raise WebhookError(403, "your role may not operate bots")
    if bot.status != Bot.Status.RUNNING:
        raise WebhookError(409, f"bot {bot.pk} is {bot.status}: only a running bot acts on alerts; start it first")
    if not bot.markets.filter(pk=market.pk).exists():
        raise WebhookError(400, f"bot {bot.pk} does not trade {market.symbol}")


def webhook_receive(*, token: str, body: bytes) -> WebhookResult:
    """Authenticate, rate-limit, validate and record one alert (see the module docstring)."""
    from trading.services.bot_commands import bot_command_queue

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
            if bot is not None:
                bot = Bot.objects.select_for_update().get(pk=bot.pk)  # the gate passed above; lock it now
                _check_bot(tok.user, bot, market)
            signal = WebhookSignal.objects.create(
                token=tok, owner=tok.user, message_id=alert["id"], symbol=alert["symbol"], market=market,
                action=alert["action"], bot=bot, price=alert["price"], payload=alert["raw"], result="recorded",
            )  # fmt: skip
            if bot is not None:
                command = bot_action_command(alert["action"], bot, market, alert["id"])
                what = command["cmd"] + (f" {command['side']}" if "side" in command else "") + f" {market.symbol}"
                queued = bot_command_queue(
                    bot=bot, command=command, rule="tradingview", symbol=market.symbol,
                    reason=f"TradingView alert {alert['id']} ({alert['action']}): {what} requested",
                )  # fmt: skip
                signal.result = f"{what} {'queued' if queued else 'already queued'}"
                signal.save(update_fields=["result"])
            WebhookToken.objects.filter(pk=tok.pk).update(last_used=timezone.now())
    except IntegrityError:  # the same id raced in from a concurrent post
        return WebhookResult("duplicate", WebhookSignal.objects.get(token=tok, message_id=alert["id"]))
    return WebhookResult("recorded", signal)
