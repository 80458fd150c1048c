"""Brokers: where orders go. The :class:`SimulatedBroker` holds THE fill model of Market7.

Pure numpy (no Django). Every backtest and every paper bot fills orders with the rules below;
``docs/strategies.md`` mirrors this text — change both together.

Fill model (stepping candles are closed candles; an order decided on the close of candle
``i`` can only fill from candle ``i + 1`` on):

* **Market order** — fills at the next candle's **open**, moved against you by
  ``slippage_bps`` (buy: ``open x (1 + s)``, sell: ``open x (1 - s)``), price rounded to the
  market's tick. Taker fee.
* **Limit order** — fills at its limit price when a later candle's range reaches it
  (buy: ``low <= price``, sell: ``high >= price``); if the candle **opens through** the price
  (buy: ``open <= price``, sell: ``open >= price``) it fills at the open. Maker fee. No slippage.
* **Stop-market order** — triggers when the range crosses the stop (sell stop: ``low <= stop``,
  buy stop: ``high >= stop``) and fills at the stop, or at the open when the candle gaps
  through it, plus slippage. Taker fee.
* **Order of events inside one candle** — the broker walks a price path ``open -> low -> high
  -> close`` when the symbol is long or flat and ``open -> high -> low -> close`` when it is
  short, i.e. it visits the *adverse* extreme first. Orders triggered at the open come first
  (stops before market before limits); then, along each leg, in the order the path meets
  their prices; at equal prices stops before limits. So when a take profit and a stop loss
  could both fill in one candle, **the stop wins** (pessimistic). When the feed carries a
  lower timeframe for the symbol, the same rules are applied to each lower candle in turn
  instead, which resolves the real order of events.
* **Deals close as one** — when a ``reduce_only`` fill brings the position to zero, the
  other open orders of the same ``deal_id`` are canceled (``deal_closed``); a ``reduce_only``
  order never increases or flips a position (its amount is clipped to the position).
* **Fees** — ``maker_fee_bps`` / ``taker_fee_bps`` of the fill notional, charged in quote.
* **Precision and limits** — amounts are truncated and prices rounded to the market's ticks
  (ccxt ``decimal_to_precision``, TICK_SIZE); an order whose amount is below ``min_amount``
  or whose cost (amount x reference price) is below ``min_cost`` is **rejected** with that
  reason (``min_cost: cost 4.21 < minimum 5``). A buy (or a short sell) that the free quote
  balance cannot cover (notional + taker fee for buys, notional for shorts; on a perpetual,
  long or short, the initial margin notional ÷ leverage + taker fee) is rejected with
  ``insufficient_funds``; the accepted order's quote is reserved while it rests. A perpetual
  order whose position notional would exceed the tier allowing the market's leverage is
  rejected with ``leverage_tier``.
* **Perpetuals** — liquidation (on the mark price, at the liquidation price, with the
  liquidation fee) and funding are applied by the engine before each candle's fills:
  :mod:`strategies.engine.margin`.
* **Sizes** are filled whole (no partial fills from volume) — ``partially_filled`` is reached
  only by brokers that talk to a real order book.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from .feed import Candles, Feed
from .market import MarketSpec
from .orders import Liquidity, Order, OrderStatus, OrderType, Side
from .portfolio import Portfolio

__all__ = ["Broker", "SimulatedBroker", "first_true_index"]

_INF = float("inf")


class Broker(Protocol):
    """Where the engine sends orders and gets executions from.

    Backtest and paper bots use :class:`SimulatedBroker`; a live broker (ccxt) implements the
    same methods against the exchange and returns ``start`` from :meth:`next_trigger` (no
    skipping: every new candle is looked at).
    """

    def bind(self, feed: Feed, markets: dict[str, MarketSpec]) -> None: ...

    def submit(self, order: Order, ref_price: float, portfolio: Portfolio) -> None:
        """Validate and accept (``open``, quote reserved) or reject (``rejected`` + reason)."""
        ...

    def cancel(self, order: Order, portfolio: Portfolio) -> None: ...

    def iter_fills(
        self, symbol: str, i: int, orders: list[Order], position_sign: Callable[[], float]
    ) -> Iterator[tuple[Order, float, str, int]]:
        """Yield ``(order, fill_price, liquidity, time_ms)`` in the order they happen inside candle ``i``
        (``time_ms``: open time of the stepping candle, or of the lower candle that filled it)."""
        ...

    def next_trigger(self, symbol: str, orders: list[Order], start: int, end: int) -> int:
        """First candle index in ``[start, end)`` on which one of ``orders`` can fill, else ``end``."""
        ...


def first_true_index(mask_fn: Callable[[int, int], np.ndarray], start: int, end: int, first_chunk: int = 32) -> int:
    """First index ``j`` in ``[start, end)`` where ``mask_fn(a, b)[j - a]`` is true, else ``end``.

    ``mask_fn(a, b)`` returns a boolean array for indices ``a..b-1``. The range is searched in
    doubling chunks so the cost stays proportional to the distance of the answer.
    """
    a = start
    size = first_chunk
    while a < end:
        b = min(end, a + size)
        m = mask_fn(a, b)
        k = int(m.argmax())
        if m[k]:
            return a + k
        a = b
        size *= 4
    return end


class SimulatedBroker:
    """The backtest / paper broker implementing the fill model in this module's docstring.

    Args:
        slippage_bps: adverse price move applied to market and stop fills, basis points.
        use_lower_timeframe: replay lower-timeframe candles (when the feed has them) to order
            the events inside a stepping candle.
    """

    def __init__(self, slippage_bps: float = 0.0, use_lower_timeframe: bool = True) -> None:
        self.slippage_bps = float(slippage_bps)
        self.use_lower_timeframe = use_lower_timeframe
        self._feed: Feed | None = None
        self._markets: dict[str, MarketSpec] = {}
        self._candles: dict[str, Candles] = {}
        self._reach: dict[tuple[str, bool], list] = {}

    def bind(self, feed: Feed, markets: dict[str, MarketSpec]) -> None:
        self._feed = feed
        self._markets = markets
        self._candles = {s: feed.candles(s) for s in markets}
        self._reach = {}

    # -- placement ------------------------------------------------------------------------
    def submit(self, order: Order, ref_price: float, portfolio: Portfolio) -> None:
        m = self._markets[order.symbol]
        if order.status != OrderStatus.NEW:
            return
        if not (order.amount > 0):
            return self._reject(order, f"min_amount: amount {order.amount:g} <= 0")
        if order.amount < m.min_amount:
            return self._reject(order, f"min_amount: amount {order.amount:g} < minimum {m.min_amount:g}")
        price = (
            order.price
            if order.type == OrderType.LIMIT
            else order.stop_price
            if order.type == OrderType.STOP
            else ref_price
        )
        if price is None or not (price > 0):
            return self._reject(order, f"invalid_price: {price!r}")
        cost = order.amount * price
        if cost < m.min_cost:
            return self._reject(order, f"min_cost: cost {cost:.8g} < minimum {m.min_cost:g}")
        pos = portfolio.amount(order.symbol)
        is_buy = order.side == Side.BUY
        if order.reduce_only:
            if pos == 0.0 or (pos > 0) == is_buy:
                return self._reject(order, "reduce_only: no position to reduce")
        else:
            if pos != 0.0 and (pos > 0) != is_buy:
                return self._reject(order, "position_conflict: order is opposite to the open position; use reduce_only")
            slip = 1.0 + self.slippage_bps / 1e4 if order.type != OrderType.LIMIT else 1.0
            if m.market_type == "swap":
                # perpetual: initial margin + taker fee, long or short; leverage capped by the
                # tier of the position notional after the fill
                after = (abs(pos) + order.amount) * price
                cap = m.tier_table().max_leverage(after)
                if m.leverage > cap:
                    return self._reject(
                        order, f"leverage_tier: leverage {m.leverage:g} > {cap:g} allowed at notional {after:.2f}"
                    )
                need = cost * slip * (1.0 / m.leverage + m.taker_fee_bps / 1e4)
            else:
                need = cost * slip * (1.0 + m.taker_fee_bps / 1e4) if is_buy else cost
            free = portfolio.free()
            if need > free + 1e-9:
                return self._reject(order, f"insufficient_funds: needs {need:.2f}, free {free:.2f}")
            order.reserved = need
            portfolio.reserved += need
        order.status = OrderStatus.OPEN

    @staticmethod
    def _reject(order: Order, reason: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason

    def cancel(self, order: Order, portfolio: Portfolio) -> None:
        if order.reserved:
            portfolio.reserved -= order.reserved
            order.reserved = 0.0
        order.status = OrderStatus.CANCELED

    # -- execution ------------------------------------------------------------------------
    def _events(self, orders: list[Order], o: float, h: float, lo: float, down_first: bool, tick_fn):
        """Fill events of ``orders`` inside one candle, sorted in path order (see module doc)."""
        s = self.slippage_bps / 1e4
        down_leg, up_leg = (1, 2) if down_first else (2, 1)
        ev = []
        for k, od in enumerate(orders):
            if not od.is_open:
                continue
            t = od.type
            buy = od.side == Side.BUY
            if t == OrderType.MARKET:
                ev.append((0, 1, 0.0, k, od, tick_fn(od.symbol, o * (1 + s) if buy else o * (1 - s)), Liquidity.TAKER))
            elif t == OrderType.LIMIT:
                p = od.price
                if buy:
                    if o <= p:
                        ev.append((0, 2, 0.0, k, od, o, Liquidity.MAKER))
                    elif lo <= p:
                        ev.append((down_leg, 1, -p, k, od, p, Liquidity.MAKER))
                else:
                    if o >= p:
                        ev.append((0, 2, 0.0, k, od, o, Liquidity.MAKER))
                    elif h >= p:
                        ev.append((up_leg, 1, p, k, od, p, Liquidity.MAKER))
            else:  # stop market
                p = od.stop_price
                if buy:
                    if o >= p:
                        ev.append((0, 0, 0.0, k, od, tick_fn(od.symbol, o * (1 + s)), Liquidity.TAKER))
                    elif h >= p:
                        ev.append((up_leg, 0, p, k, od, tick_fn(od.symbol, p * (1 + s)), Liquidity.TAKER))
                else:
                    if o <= p:
                        ev.append((0, 0, 0.0, k, od, tick_fn(od.symbol, o * (1 - s)), Liquidity.TAKER))
                    elif lo <= p:
                        ev.append((down_leg, 0, -p, k, od, tick_fn(od.symbol, p * (1 - s)), Liquidity.TAKER))
        # key: leg, price along the leg, stops (0) before market (1) before limits (2), order age
        ev.sort(key=lambda e: (e[0], e[2], e[1], e[3]))
        return ev

    def _tick(self, symbol: str, price: float) -> float:
        return self._markets[symbol].round_price(price)

    def iter_fills(
        self, symbol: str, i: int, orders: list[Order], position_sign: Callable[[], float]
    ) -> Iterator[tuple[Order, float, str, int]]:
        c = self._candles[symbol]
        lower = self._feed.lower(symbol) if (self.use_lower_timeframe and self._feed is not None) else None
        if lower is not None:
            t0 = int(c.time[i])
            a = int(np.searchsorted(lower.time, t0))
            b = int(np.searchsorted(lower.time, t0 + self._feed.tf_ms))
            if b > a:
                for j in range(a, b):
                    ev = self._events(
                        orders,
                        float(lower.open[j]),
                        float(lower.high[j]),
                        float(lower.low[j]),
                        position_sign() >= 0,
                        self._tick,
                    )
                    tj = int(lower.time[j])
                    for e in ev:
                        if e[4].is_open:
                            yield e[4], e[5], e[6], tj
                return
        ev = self._events(orders, float(c.open[i]), float(c.high[i]), float(c.low[i]), position_sign() >= 0, self._tick)
        ti = int(c.time[i])
        for e in ev:
            if e[4].is_open:
                yield e[4], e[5], e[6], ti

    def fills_at(
        self, symbol: str, i: int, orders: list[Order], position: float
    ) -> list[tuple[Order, float, str, int]] | None:
        """The events of :meth:`iter_fills` as a list when candle ``i`` is replayed as one candle
        (no lower timeframe for ``symbol``), given the position before the candle; ``None``
        when lower candles must be walked (use :meth:`iter_fills`). The caller skips events
        of orders that an earlier event closed."""
        if self.use_lower_timeframe and self._feed is not None and self._feed.lower(symbol) is not None:
            return None
        if type(self).iter_fills is not SimulatedBroker.iter_fills:  # a subclass changed the events
            return None
        c = self._candles[symbol]
        ti = int(c.time[i])
        ev = self._events(orders, float(c.open[i]), float(c.high[i]), float(c.low[i]), position >= 0, self._tick)
        return [(e[4], e[5], e[6], ti) for e in ev]

    def next_trigger(self, symbol: str, orders: list[Order], start: int, end: int) -> int:
        if start >= end or not orders:
            return end
        lo_thr = -_INF  # a candle with low <= lo_thr fills something (buy limits, sell stops)
        hi_thr = _INF  # a candle with high >= hi_thr fills something (sell limits, buy stops)
        for od in orders:
            if not od.is_open:
                continue
            if od.type == OrderType.MARKET:
                return start
            p = od.price if od.type == OrderType.LIMIT else od.stop_price
            if (od.side == Side.BUY) == (od.type == OrderType.LIMIT):
                if p > lo_thr:
                    lo_thr = p
            elif p < hi_thr:
                hi_thr = p
        if lo_thr == -_INF and hi_thr == _INF:
            return end
        c = self._candles[symbol]
        if hi_thr != _INF:
            end = self._first_reach(symbol, True, c.high, hi_thr, start, end)
        if lo_thr != -_INF:
            end = self._first_reach(symbol, False, c.low, lo_thr, start, end)
        return end

    def _first_reach(self, symbol: str, up: bool, arr: np.ndarray, thr: float, start: int, end: int) -> int:
        """First ``j`` in ``[start, end)`` with ``arr[j] >= thr`` (``up``) / ``arr[j] <= thr``, else ``end``.

        One cached search per symbol and side: resting orders keep their prices while other
        orders come and go, so the answer for the same threshold is reused (``[lo, hi)`` is
        known not to reach it, ``hit`` is the first index at or after ``lo`` that does).
        """
        key = (symbol, up)
        cc = self._reach.get(key)
        if cc is not None and cc[0] == thr and cc[1] <= start:
            hit, hi = cc[2], cc[3]
            if hit >= 0:
                if hit >= start:
                    return hit if hit < end else end
            elif end <= hi:
                return end
            elif start <= hi:
                j = first_true_index((lambda a, b: arr[a:b] >= thr) if up else (lambda a, b: arr[a:b] <= thr), hi, end)
                if j < end:
                    cc[2] = j
                else:
                    cc[3] = end
                return j
        j = first_true_index((lambda a, b: arr[a:b] >= thr) if up else (lambda a, b: arr[a:b] <= thr), start, end)
        self._reach[key] = [thr, start, j if j < end else -1, end]
        return j
