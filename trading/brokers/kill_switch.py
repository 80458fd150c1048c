"""The kill switch at the exchange: cancel a live account's open orders of our bots and,
optionally, close their positions at market — through ccxt, one account at a time.

No Django here: :func:`kill_account` takes a ccxt client (signed with the account's keys) and
plain lists of what to cancel and close, and returns one :class:`KillResult` per order. It
never raises for an exchange problem: every failure becomes that order's ``outcome="failed"``
with a one-line ``reason`` (``exchange_unreachable: RequestTimeout``, ``exchange_error: ...``,
``insufficient_funds: ...``), and the next order is tried. The service
(``trading.services.emergency``) stops the bots first, calls this outside any transaction and
records the results.

What is cancelled: every order given (our open ``Order`` rows, by client id — ccxt unified
``cancel_order(None, symbol, {"clientOrderId": cid})``), plus every order the exchange lists
as open on the bots' symbols whose client id carries a bot's prefix (``m7b42x...``): an order
the exchange accepted before a crash kept us from recording it is cancelled too.

How a position is closed: a USDT-M perpetual (``BTC/USDT:USDT``) with a reduce-only market
order on the other side; a spot deal by selling its base at market — at most the free base
balance (a fee charged in the base leaves a little less than the deal's amount). Each close
has a deterministic client id (``m7b42xk<trade id>``) and is looked up before it is sent, so
pressing the switch twice never sells twice.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal

import ccxt

from trading.brokers.ccxt_live import ClientIdError, exchange_client_id, find_order, place_order


@dataclass(frozen=True)
class OrderToCancel:
    bot_id: int
    symbol: str
    client_order_id: str  # the engine's id, ``m7b42-17``
    order_id: int | None = None  # our ``trading.Order`` pk


@dataclass(frozen=True)
class PositionToClose:
    bot_id: int
    trade_id: int
    deal_id: str
    symbol: str  # ccxt unified: ``BTC/USDT`` spot, ``BTC/USDT:USDT`` USDT-M perpetual
    side: str  # ``long`` or ``short``
    amount: Decimal  # base units


@dataclass
class KillResult:
    """One order's outcome. ``action``: ``cancel`` or ``close``. ``outcome``: ``canceled``,
    ``gone`` (the exchange no longer has it open: filled or cancelled before), ``closed``
    (the market order filled), ``placed`` (accepted, not reported filled yet),
    ``nothing_to_close`` (no free base left), ``failed`` (``reason`` says why)."""

    bot_id: int
    action: str
    symbol: str
    client_order_id: str
    outcome: str
    reason: str = ""
    order_id: int | None = None
    trade_id: int | None = None
    deal_id: str = ""
    amount: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


def bot_exchange_prefix(order_prefix: str) -> str:
    """``m7b42`` -> ``m7b42x``: the start of every exchange client id of that bot (the ``x``
    keeps bot 4's prefix from matching bot 42's ids)."""
    return exchange_client_id(order_prefix + "-")


def reason_of(exc: BaseException) -> str:
    """A one-line reason for an exchange failure, with no URL or query string (signatures)."""
    if isinstance(exc, ccxt.InsufficientFunds):
        kind = "insufficient_funds"
    elif isinstance(exc, ccxt.NetworkError):
        return f"exchange_unreachable: {type(exc).__name__}"
    elif isinstance(exc, ccxt.BaseError):
        kind = "exchange_error"
    else:
        return f"error: {type(exc).__name__}"
    text = re.sub(r"https?://\S+", "", str(exc)).replace("\n", " ")
    return f"{kind}: {' '.join(text.split())[:200]}"


def cancel_one(client: ccxt.Exchange, item: OrderToCancel) -> KillResult:
    """Cancel one order by client id; never raises."""
    try:
        cid = exchange_client_id(item.client_order_id)
    except ClientIdError as exc:
        return KillResult(item.bot_id, "cancel", item.symbol, item.client_order_id, "failed", str(exc), item.order_id)
    res = KillResult(item.bot_id, "cancel", item.symbol, cid, "canceled", order_id=item.order_id)
    try:
        client.cancel_order(None, item.symbol, {"clientOrderId": cid})
    except ccxt.OrderNotFound:  # Binance -2011/-2013: filled or cancelled before
        res.outcome, res.reason = "gone", "not open at the exchange (filled or cancelled before)"
    except Exception as exc:  # noqa: BLE001 — a kill switch collects every failure and goes on
        res.outcome, res.reason = "failed", reason_of(exc)
    return res


def stray_orders(client: ccxt.Exchange, *, bots: dict[int, tuple[str, list[str]]], known: set[str]) -> tuple:
    """Orders open at the exchange on the bots' symbols carrying a bot's prefix and not in
    ``known`` (exchange client ids). ``bots``: ``{bot_id: (order_prefix, [symbols])}``.
    Returns ``(to_cancel, failures)``: a listing that fails is a failed result, not a crash."""
    found: list[OrderToCancel] = []
    failures: list[KillResult] = []
    for bot_id, (prefix, symbols) in bots.items():
        start = bot_exchange_prefix(prefix)
        for symbol in symbols:
            try:
                listed = client.fetch_open_orders(symbol)
            except Exception as exc:  # noqa: BLE001
                failures.append(KillResult(bot_id, "list", symbol, start + "*", "failed", reason_of(exc)))
                continue
            for od in listed:
                cid = od.get("clientOrderId") or ""
                if cid.startswith(start) and cid not in known:
                    known.add(cid)
                    found.append(OrderToCancel(bot_id, symbol, cid))
    return found, failures


def close_one(client: ccxt.Exchange, pos: PositionToClose, *, prefix: str, free_base: dict) -> KillResult:
    """Close one deal at market (module doc); ``free_base`` (asset -> Decimal) is the spot
    balance, decremented by what is sold. Never raises."""
    cid = exchange_client_id(f"{prefix}-k{pos.trade_id}")
    res = KillResult(pos.bot_id, "close", pos.symbol, cid, "placed", trade_id=pos.trade_id, deal_id=pos.deal_id)
    perpetual = ":" in pos.symbol
    side = "buy" if pos.side == "short" else "sell"
    amount = Decimal(pos.amount)
    try:
        previous = find_order(client, pos.symbol, cid)
        if previous is not None:  # an earlier press already sent it
            res.amount = str(previous.get("amount") or "")
            res.outcome = "closed" if previous.get("status") == "closed" else "placed"
            res.reason = "sent by an earlier emergency stop"
            return res
        params: dict = {}
        if perpetual:
            params["reduceOnly"] = True
        else:
            base = pos.symbol.split("/")[0]
            amount = min(amount, free_base.get(base, Decimal(0)))
            if amount <= 0 or Decimal(client.amount_to_precision(pos.symbol, float(amount))) <= 0:
                res.outcome, res.reason = "nothing_to_close", f"no free {base} at the exchange"
                return res
        res.amount = client.amount_to_precision(pos.symbol, float(amount))
        od = _place(client, pos.symbol, side, float(amount), cid, params)
    except Exception as exc:  # noqa: BLE001
        res.outcome, res.reason = "failed", reason_of(exc)
        return res
    if not perpetual:
        base = pos.symbol.split("/")[0]
        free_base[base] = free_base.get(base, Decimal(0)) - Decimal(res.amount)
    res.outcome = "closed" if od.get("status") == "closed" else "placed"
    if od.get("average"):
        res.reason = f"{side} {res.amount} at {od['average']}"
    return res


def _place(client, symbol: str, side: str, amount: float, cid: str, params: dict) -> dict:
    if not params:
        return place_order(client, symbol=symbol, side=side, type="market", amount=amount, price=None, cid=cid)
    # reduce-only (perpetuals): place_order sends only the client id, so send it here, once
    # (the look-up above already made it idempotent across presses)
    amount_s = client.amount_to_precision(symbol, amount)
    return client.create_order(symbol, "market", side, amount_s, None, {"clientOrderId": cid, **params})


def kill_account(
    client: ccxt.Exchange,
    *,
    orders: list[OrderToCancel],
    positions: list[PositionToClose],
    bots: dict[int, tuple[str, list[str]]],
) -> list[KillResult]:
    """Cancel ``orders`` and the bots' stray orders, then close ``positions``, on one account.
    ``bots``: ``{bot_id: (order_prefix, [symbols])}`` of the bots concerned. Never raises for
    the exchange's sake; markets are loaded first (a failure there fails every item)."""
    try:
        client.load_markets()
    except Exception as exc:  # noqa: BLE001
        why = reason_of(exc)
        return [
            KillResult(o.bot_id, "cancel", o.symbol, o.client_order_id, "failed", why, o.order_id) for o in orders
        ] + [
            KillResult(p.bot_id, "close", p.symbol, "", "failed", why, trade_id=p.trade_id, deal_id=p.deal_id)
            for p in positions
        ]
    results = [cancel_one(client, o) for o in orders]
    known = {r.client_order_id for r in results}
    strays, failures = stray_orders(client, bots=bots, known=known)
    results += failures + [cancel_one(client, o) for o in strays]
    if positions:
        free: dict[str, Decimal] = {}
        if any(":" not in p.symbol for p in positions):
            try:
                bal = client.fetch_balance()
                free = {a: Decimal(str(v)) for a, v in (bal.get("free") or {}).items() if v is not None}
            except Exception as exc:  # noqa: BLE001
                why = reason_of(exc)
                results += [
                    KillResult(p.bot_id, "close", p.symbol, "", "failed", f"balance: {why}", trade_id=p.trade_id)
                    for p in positions
                    if ":" not in p.symbol
                ]
                positions = [p for p in positions if ":" in p.symbol]
        prefixes = {bot_id: prefix for bot_id, (prefix, _) in bots.items()}
        results += [close_one(client, p, prefix=prefixes[p.bot_id], free_base=free) for p in positions]
    return results
