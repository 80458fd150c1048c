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

- **Backoff.** Every call is retried on ccxt ``NetworkError`` (429/418 rate limits, timeouts,
  5xx) with exponential waits and jitter (:func:`backoff_delay`) on top of ccxt's
  ``enableRateLimit``; after :data:`RETRIES` tries :class:`LiveExchangeDown` is raised out of
  the engine, so the step rolls back and the bot goes to ``error`` with the message.
- **Look up, check the balance, place.** :meth:`CcxtBroker.submit` first looks the client id
  up (a step killed after the exchange accepted the order re-runs with the same id and adopts
  it), then checks the free balance (``insufficient_balance: need ... free ...`` is a reason).

Not yet here (issue #14): partial fills yielded to the engine (the engine fills whole orders),
fees converted to quote when charged in another asset, stop orders, websocket fills.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import ccxt

from strategies.engine.feed import Feed
from strategies.engine.market import MarketSpec
from strategies.engine.orders import Liquidity, Order, OrderStatus, OrderType
from strategies.engine.portfolio import Portfolio

PLACE_ATTEMPTS = 3  # place_order's default tries (the broker passes RETRIES)
RETRIES = 12  # tries of one exchange call before the step gives up (LiveExchangeDown)
BACKOFF_BASE_S = 0.5  # first retry waits 0.25-0.5 s, then doubling ...
BACKOFF_CAP_S = 30.0  # ... up to 15-30 s


class ClientIdError(ValueError):
    """An engine order id that cannot become a valid exchange client id."""


class LiveExchangeDown(RuntimeError):
    """The exchange did not answer (network, timeout, 5xx, rate limit) after :data:`RETRIES`
    tries with backoff. Raised out of the engine on purpose: the step's transaction rolls back
    and the bot goes to ``error`` with this message; what the exchange did meanwhile is found
    by the reconciliation of the next start (``trading.services.live_reconcile``)."""


def backoff_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential (``BACKOFF_BASE_S`` *
    2**attempt, capped at ``BACKOFF_CAP_S``) with "equal jitter" — a random half of it on top
    of the other half — so workers hitting the same limit do not retry in step."""
    full = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**attempt))
    return full / 2 + rng() * full / 2


def backoff_sleep(seconds: float) -> None:
    """How the broker waits between retries (tests replace it to record the waits)."""
    time.sleep(seconds)


def _quiet(exc: Exception) -> str:
    """A ccxt error as one short line without URLs' query strings (signatures, timestamps)."""
    text = re.sub(r"\?\S*", "", str(exc).replace("\n", " "))
    return f"{type(exc).__name__}: {text}"[:200]


def with_backoff(
    fn: Callable, *args, sleep: Callable[[float], None] = time.sleep, attempts: int | None = None, **kwargs
):
    """``fn(*args, **kwargs)`` (a read-only or idempotent ccxt call) retried on
    ``ccxt.NetworkError`` (rate limit 429/418, timeout, refused, 5xx) with :func:`backoff_delay`
    waits; other ccxt errors go through. Raises :class:`LiveExchangeDown` after ``attempts``
    (default :data:`RETRIES`) failures."""
    attempts = attempts or RETRIES
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_delay(attempt - 1))
        try:
            return fn(*args, **kwargs)
        except ccxt.NetworkError as exc:
            last = exc
    raise LiveExchangeDown(f"exchange unreachable after {attempts} tries ({_quiet(last)})")


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
    attempts: int = PLACE_ATTEMPTS,
    look_first: bool = False,
) -> dict:
    """Place one order idempotently (module doc); returns ccxt's order dict.

    A rate-limit answer (ccxt ``DDoSProtection`` / ``RateLimitExceeded``: 429, 418) means the
    request was refused unprocessed: the order is re-sent after :func:`backoff_delay`. Any other
    network error (timeout, refused, 5xx) is ambiguous: the id is looked up first and the
    order adopted when the exchange has it. ``look_first`` looks it up before the first send
    too (a step re-run after a crash). Raises the ccxt error of a rejection, or the last
    ``ccxt.NetworkError`` when ``attempts`` tries could not settle whether the order exists."""
    amount_s = client.amount_to_precision(symbol, amount)
    price_s = client.price_to_precision(symbol, price) if type == OrderType.LIMIT else None
    last: Exception | None = None
    must_look = look_first
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_delay(attempt - 1))
        if must_look:
            try:
                found = find_order(client, symbol, cid)
            except ccxt.NetworkError as exc:
                last = exc
                continue
            if found is not None:
                return found  # an earlier attempt reached the exchange: adopt it
            must_look = False
        try:
            return client.create_order(symbol, type, side, amount_s, price_s, {"clientOrderId": cid})
        except ccxt.DDoSProtection as exc:  # 429 / 418: refused before it was processed
            if '"code":-2015' in str(exc):
                # ccxt calls Binance's "Invalid API-key, IP, or permissions" a temporary ban once
                # the key has signed a request; on an order it is the key's missing trade right
                raise ccxt.PermissionDenied(str(exc)) from None
            last = exc
        except ccxt.NetworkError as exc:  # timeout, refused, 5xx: the order may or may not exist
            last = exc
            must_look = True
    raise last  # type: ignore[misc]


class CcxtBroker:
    """The engine's ``Broker`` on a real (or testnet) exchange through ``client`` (a ccxt client
    with credentials, ``trading.services.exchange_accounts.account_client``).

    Every exchange call is retried with :func:`backoff_delay` waits (:func:`with_backoff`);
    ``waits`` lists the seconds waited. ``adopted`` holds the exchange client ids that
    :meth:`submit` found already at the exchange (placed by a step that did not commit) and
    adopted instead of placing; ``exchange_orders`` the last ccxt order seen per engine id."""

    def __init__(self, client: ccxt.Exchange, *, sleep: Callable[[float], None] | None = None) -> None:
        self.client = client
        self._sleep = sleep
        self.waits: list[float] = []
        self._markets: dict[str, MarketSpec] = {}
        self.exchange_orders: dict[str, dict] = {}  # engine client id -> last ccxt order seen
        self.adopted: set[str] = set()

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        (self._sleep or backoff_sleep)(seconds)

    def call(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` through :func:`with_backoff` with this broker's sleep."""
        return with_backoff(fn, *args, sleep=self.sleep, **kwargs)

    def bind(self, feed: Feed, markets: dict[str, MarketSpec]) -> None:
        self._markets = markets
        self.call(self.client.load_markets)

    def balance_problem(self, order: Order, ref_price: float) -> str | None:
        """``insufficient_balance: need 120.24 USDT, free 50 USDT`` when the account's free
        balance (``fetch_balance``) cannot pay ``order`` (a buy: amount x price x (1 + taker
        fee) of quote; a sell: the amount of base), else None. Decimal, at the market's precision."""
        market = self.client.market(order.symbol)
        free = self.call(self.client.fetch_balance).get("free") or {}
        amount = Decimal(self.client.amount_to_precision(order.symbol, order.amount))
        if order.side == "buy":
            price = order.price if order.type == OrderType.LIMIT and order.price else ref_price
            fee = Decimal(str(market.get("taker") or "0.001"))
            need = (amount * Decimal(self.client.price_to_precision(order.symbol, price)) * (1 + fee)).quantize(
                Decimal("1e-8")
            )
            asset = market["quote"]
        else:
            need, asset = amount, market["base"]
        have = Decimal(str(free.get(asset) or 0))
        if have < need:
            return f"insufficient_balance: need {need.normalize():f} {asset}, free {have.normalize():f} {asset}"
        return None

    def submit(self, order: Order, ref_price: float, portfolio: Portfolio) -> None:
        """Look the order's client id up first (a crashed step may have placed it: adopt it),
        then check the balance, then place it (:func:`place_order`). Rejections are reasons;
        an exchange that does not answer raises :class:`LiveExchangeDown`."""
        if order.status != OrderStatus.NEW:
            return
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            order.status, order.reject_reason = OrderStatus.REJECTED, f"unsupported_order_type: {order.type} (live)"
            return
        try:
            cid = exchange_client_id(order.client_order_id)
        except ClientIdError as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"exchange_rejected: {exc}"
            return
        found = self.call(find_order, self.client, order.symbol, cid)
        if found is not None:
            self.exchange_orders[order.client_order_id] = found
            self.adopted.add(cid)
            order.status = OrderStatus.OPEN
            return
        problem = self.balance_problem(order, ref_price)
        if problem:
            order.status, order.reject_reason = OrderStatus.REJECTED, problem
            return
        try:
            placed = place_order(
                self.client,
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                amount=order.amount,
                price=order.price,
                cid=cid,
                sleep=self.sleep,
                attempts=RETRIES,
            )
        except ccxt.InsufficientFunds as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"insufficient_funds: {_short(exc)}"
            return
        except ccxt.NetworkError as exc:  # may or may not be at the exchange: roll back, reconcile
            raise LiveExchangeDown(
                f"order {cid} not confirmed after {RETRIES} tries ({_quiet(exc)}); "
                "the next start reconciles it with the exchange"
            ) from None
        except ccxt.BaseError as exc:
            order.status, order.reject_reason = OrderStatus.REJECTED, f"exchange_rejected: {_short(exc)}"
            return
        self.exchange_orders[order.client_order_id] = placed
        order.status = OrderStatus.OPEN

    def cancel(self, order: Order, portfolio: Portfolio) -> None:
        try:
            self.call(
                self.client.cancel_order,
                None,
                order.symbol,
                {"clientOrderId": exchange_client_id(order.client_order_id)},
            )
        except ccxt.OrderNotFound:
            pass  # already gone at the exchange (filled or canceled): reconciliation tells
        order.status = OrderStatus.CANCELED

    def iter_fills(
        self, symbol: str, i: int, orders: list[Order], position_sign: Callable[[], float]
    ) -> Iterator[tuple[Order, float, str, int]]:
        for od in orders:
            if not od.is_open or od.symbol != symbol:
                continue
            ex = self.call(find_order, self.client, symbol, exchange_client_id(od.client_order_id))
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
