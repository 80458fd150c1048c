"""The live broker: the engine's ``Broker`` protocol against an exchange through ccxt.

Live and paper differ only in the broker: the same ``Engine``, strategy, risk and guards call
:meth:`CcxtBroker.submit` / :meth:`cancel` / :meth:`iter_fills` that they call on the paper
broker. What this module guarantees:

- **Deterministic client order ids.** The engine's id (``"bot42-17"``, from its counter) becomes
  the exchange's ``newClientOrderId`` / ``clOrdId`` through :func:`exchange_client_id`
  (alphanumerics only, at most 32 characters: valid on Binance, OKX and Kraken alike).
- **Idempotent placing.** :func:`place_order` sends the order with that id; after a timeout or
  network error it first looks the id up (``fetch_order`` by client id) and adopts the order
  when the exchange has it; it re-sends only when the exchange answers "no such order". One
  order at the exchange per engine order, whatever the network did.
- **Precision.** Amounts and prices go through ccxt's ``amount_to_precision`` /
  ``price_to_precision`` of the loaded markets; the decimal strings are what is sent.
- **Fills from the exchange.** :meth:`CcxtBroker.iter_fills` asks ``fetch_order`` for every
  open order and yields the ones the exchange reports ``closed`` (filled), at their average
  price, as taker or maker by order type, with the exchange's fee.
- **Reasons, not exceptions.** An exchange rejection becomes the order's ``reject_reason``:
  ``insufficient_funds: ...`` (ccxt ``InsufficientFunds``), ``exchange_rejected: ...``
  (``InvalidOrder`` and other ccxt errors), ``exchange_unreachable: ...`` (network, after the
  look-up could not settle the order).

Not yet here (issue #14): partial fills yielded to the engine (the engine fills whole orders),
fees converted to quote when charged in another asset, reconciliation on start, balance
pre-checks against ``fetch_balance``, stop orders, backoff with jitter, websocket fills.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import ccxt

from strategies.engine.feed import Feed
from strategies.engine.market import MarketSpec
from strategies.engine.orders import Liquidity, Order, OrderStatus, OrderType
from strategies.engine.portfolio import Portfolio

PLACE_ATTEMPTS = 3


class ClientIdError(ValueError):
    """An engine order id that cannot become a valid exchange client id."""


def exchange_client_id(engine_id: str) -> str:
    """``"bot42-17"`` -> ``"bot42x17"``: every non-alphanumeric character becomes ``x``; more
    than 32 characters is a :class:`ClientIdError` (truncating could collide)."""
    cid = re.sub(r"[^A-Za-z0-9]", "x", engine_id)
    if not cid or len(cid) > 32:
        raise ClientIdError(f"client order id {engine_id!r} does not fit 1-32 alphanumerics")
    return cid


def find_order(client: ccxt.Exchange, symbol: str, cid: str) -> dict | None:
    """The exchange's order with client id ``cid``, or None when it has none."""
    try:
        return client.fetch_order(None, symbol, {"clientOrderId": cid})
    except ccxt.OrderNotFound:
        return None


def place_order(
    client: ccxt.Exchange,
    *,
    symbol: str,
    side: str,
    type: str,
    amount: float,
    price: float | None,
    cid: str,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Place one order idempotently (module doc); returns ccxt's order dict. Raises the ccxt
    error of a rejection, or ``ccxt.NetworkError`` when :data:`PLACE_ATTEMPTS` tries and
    look-ups could not settle whether the order exists."""
    amount_s = client.amount_to_precision(symbol, amount)
    price_s = client.price_to_precision(symbol, price) if type == OrderType.LIMIT else None
    last: Exception | None = None
    for attempt in range(PLACE_ATTEMPTS):
        if attempt:
            try:
                found = find_order(client, symbol, cid)
            except ccxt.NetworkError as exc:
                last = exc
                sleep(0.5 * attempt)
                continue
            if found is not None:
                return found  # the earlier attempt reached the exchange: adopt it
        try:
            return client.create_order(symbol, type, side, amount_s, price_s, {"clientOrderId": cid})
        except ccxt.NetworkError as exc:  # timeout, refused, 5xx: the order may or may not exist
            last = exc
            sleep(0.5 * attempt)
    raise last  # type: ignore[misc]


class CcxtBroker:
    """The engine's ``Broker`` on a real (or testnet) exchange through ``client`` (a ccxt client
    with credentials, ``trading.services.exchange_accounts.account_client``)."""

    def __init__(self, client: ccxt.Exchange, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.sleep = sleep
        self._markets: dict[str, MarketSpec] = {}
        self.exchange_orders: dict[str, dict] = {}  # engine client id -> last ccxt order seen

    def bind(self, feed: Feed, markets: dict[str, MarketSpec]) -> None:
        self._markets = markets
        self.client.load_markets()

    def submit(self, order: Order, ref_price: float, portfolio: Portfolio) -> None:
        if order.status != OrderStatus.NEW:
            return
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            order.status, order.reject_reason = OrderStatus.REJECTED, f"unsupported_order_type: {order.type} (live)"
            return
        try:
            placed = place_order(
                self.client,
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                amount=order.amount,
                price=order.price,
                cid=exchange_client_id(order.client_order_id),
                sleep=self.sleep,
            )
        except ccxt.InsufficientFunds as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"insufficient_funds: {_short(exc)}"
            return
        except ccxt.NetworkError as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"exchange_unreachable: {type(exc).__name__}"
            return
        except (ccxt.BaseError, ClientIdError) as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"exchange_rejected: {_short(exc)}"
            return
        self.exchange_orders[order.client_order_id] = placed
        order.status = OrderStatus.OPEN

    def cancel(self, order: Order, portfolio: Portfolio) -> None:
        try:
            self.client.cancel_order(None, order.symbol, {"clientOrderId": exchange_client_id(order.client_order_id)})
        except ccxt.OrderNotFound:
            pass  # already gone at the exchange (filled or canceled): the next fetch tells
        order.status = OrderStatus.CANCELED

    def iter_fills(
        self, symbol: str, i: int, orders: list[Order], position_sign: Callable[[], float]
    ) -> Iterator[tuple[Order, float, str, int]]:
        for od in orders:
            if not od.is_open or od.symbol != symbol:
                continue
            ex = find_order(self.client, symbol, exchange_client_id(od.client_order_id))
            if ex is None:
                continue
            self.exchange_orders[od.client_order_id] = ex
            if ex.get("status") == "closed" and ex.get("average"):
                liquidity = Liquidity.MAKER if od.type == OrderType.LIMIT else Liquidity.TAKER
                yield od, float(ex["average"]), liquidity, int(ex.get("lastTradeTimestamp") or ex.get("timestamp") or 0)

    def next_trigger(self, symbol: str, orders: list[Order], start: int, end: int) -> int:
        return start  # live: every new candle is looked at


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:160]
