"""The 3Commas adapter: our deal decisions sent to a 3Commas DCA bot as its custom-signal
webhook messages (3Commas "Deal start condition: TradingView custom signal" / "Manually").

3Commas' custom-signal JSON (``POST https://app.3commas.io/trade_signal/trading_view``,
``Content-Type: application/json``), the shapes we send and nothing else:

- start a deal::

    {"message_type": "bot", "bot_id": 123, "email_token": "<token>", "delay_seconds": 0,
     "pair": "USDT_BTC"}

- add funds to the open deal (our safety order), in the quote currency::

    {"message_type": "bot", "bot_id": 123, "email_token": "<token>", "delay_seconds": 0,
     "pair": "USDT_BTC", "action": "add_funds_in_quote", "volume": "25.5"}

- close the deal at market::

    {"message_type": "bot", "bot_id": 123, "email_token": "<token>", "delay_seconds": 0,
     "pair": "USDT_BTC", "action": "close_at_market_price"}

``pair`` is 3Commas' ``QUOTE_BASE`` (``BTC/USDT`` -> ``USDT_BTC``; a USDT-M perpetual
``BTC/USDT:USDT`` -> ``USDT_BTC`` too, the bot's account decides spot or futures).
``email_token`` is the bot's secret: it is put into the message only at send time and never
stored in a payload, a log or an error (:func:`redacted`).

No Django here. :func:`decision_for_order` maps an engine order to the decision it stands for
(a base order starts a deal, a safety order adds funds, a reduce-only/exit order closes);
:func:`send_signal` posts one message and classifies the answer. Idempotency by our deal id
lives in ``trading.services.three_commas`` (a row per (connection, deal, action, step),
claimed before sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import requests

DEFAULT_URL = "https://app.3commas.io/trade_signal/trading_view"
START, ADD_FUNDS, CLOSE = "start_deal", "add_funds", "close"
ACTIONS = (START, ADD_FUNDS, CLOSE)


@dataclass(frozen=True)
class Decision:
    """One deal decision for 3Commas. ``seq``: the safety-order number of an ``add_funds``
    (1, 2, ...), 0 otherwise. ``volume``: quote to add (``add_funds`` only)."""

    action: str
    deal_id: str
    symbol: str
    seq: int = 0
    volume: Decimal | None = None


@dataclass(frozen=True)
class SendOutcome:
    """``state``: ``sent`` (2xx), ``rejected`` (4xx: 3Commas refused it; not sent again),
    ``not_sent`` (connection refused / DNS: it never left, safe to send again), ``unknown``
    (timeout or 5xx after the request went out: 3Commas may have acted)."""

    state: str
    http_status: int | None = None
    detail: str = ""


def pair_3commas(symbol: str) -> str:
    """``BTC/USDT`` or ``BTC/USDT:USDT`` -> ``USDT_BTC`` (3Commas pairs are QUOTE_BASE)."""
    base, _, rest = symbol.partition("/")
    quote = rest.split(":")[0]
    if not base or not quote:
        raise ValueError(f"not a ccxt unified symbol: {symbol!r}")
    return f"{quote}_{base}"


def signal_message(decision: Decision, *, bot_id: int, email_token: str, delay_seconds: int = 0) -> dict:
    """The custom-signal JSON of ``decision`` (module doc), exactly those keys."""
    msg: dict = {
        "message_type": "bot",
        "bot_id": int(bot_id),
        "email_token": email_token,
        "delay_seconds": int(delay_seconds),
        "pair": pair_3commas(decision.symbol),
    }
    if decision.action == ADD_FUNDS:
        if decision.volume is None or decision.volume <= 0:
            raise ValueError("add_funds needs a positive quote volume")
        msg["action"] = "add_funds_in_quote"
        msg["volume"] = format(decision.volume.normalize(), "f")
    elif decision.action == CLOSE:
        msg["action"] = "close_at_market_price"
    elif decision.action != START:
        raise ValueError(f"unknown 3Commas action {decision.action!r}")
    return msg


def redacted(message: dict) -> dict:
    """``message`` without its secret (what we store and show)."""
    return {k: ("…" if k == "email_token" else v) for k, v in message.items()}


def decision_for_order(order, ref_price: float) -> Decision | None:
    """The decision an engine :class:`~strategies.engine.orders.Order` stands for: an exit
    (``reduce_only`` or a sell of a long deal) closes, a safety order (``so_index`` > 0) adds
    ``amount × ref_price`` quote, an entry starts the deal. Orders without a deal: None."""
    if not order.deal_id:
        return None
    if order.reduce_only or order.side == "sell":
        return Decision(CLOSE, order.deal_id, order.symbol)
    if order.so_index > 0:
        volume = Decimal(repr(order.amount * ref_price)).quantize(Decimal("0.01"))
        return Decision(ADD_FUNDS, order.deal_id, order.symbol, seq=order.so_index, volume=volume)
    return Decision(START, order.deal_id, order.symbol)


def send_signal(url: str, message: dict, *, timeout: float = 10.0, session=None) -> SendOutcome:
    """POST ``message`` as JSON to ``url``; never raises, never puts the token in ``detail``."""
    http = session or requests
    try:
        r = http.post(url, json=message, timeout=timeout)
    except requests.ConnectionError as exc:
        if isinstance(exc, requests.ConnectTimeout) or "refused" in str(exc).lower() or "resolve" in str(exc).lower():
            return SendOutcome("not_sent", detail=f"unreachable: {type(exc).__name__}")
        return SendOutcome("unknown", detail=f"connection lost: {type(exc).__name__}")
    except requests.Timeout:
        return SendOutcome("unknown", detail="timeout after the request was sent")
    except requests.RequestException as exc:
        return SendOutcome("unknown", detail=type(exc).__name__)
    body = " ".join(r.text.split())[:200].replace(str(message.get("email_token") or "\0"), "…")
    if 200 <= r.status_code < 300:
        return SendOutcome("sent", r.status_code, body)
    if 400 <= r.status_code < 500:
        return SendOutcome("rejected", r.status_code, body)
    return SendOutcome("unknown", r.status_code, body)
