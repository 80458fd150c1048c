"""Order placement, cancel and fill execution of the :class:`~strategies.engine.engine.Engine`.

:class:`ExecutionMixin` turns a strategy's :class:`OrderIntent` into an exchange-rounded
:class:`Order` handed to the broker, cancels orders, and applies the broker's fills to the
portfolio (fees, reduce-only clamping, closed deals and their leftover orders). It reads the
run-level attributes that ``Engine._run`` sets up (``_pf``, ``_st``, ``_open``, ``_touched``,
``_ver``, ...). Prices and amounts are float64. Pure Python (no Django).
"""

from __future__ import annotations

from .context import StepContext
from .orders import Fill, Order, OrderIntent, OrderStatus, OrderType, Side
from .types import Decision, Outcome

__all__ = ["ExecutionMixin"]

_ORDER_TYPES = frozenset((OrderType.MARKET, OrderType.LIMIT, OrderType.STOP))
_SIDES = frozenset((Side.BUY, Side.SELL))
_CLOSED_PNL_KEEP = 1000  # closed-trade P&Ls kept in the state for the risk manager


class ExecutionMixin:
    """The :class:`~strategies.engine.engine.Engine`'s order placement / cancel / fill methods."""

    def _place(self, ctx: StepContext, it: OrderIntent) -> Order:
        s = it.symbol
        if s != ctx.symbol:
            raise ValueError(f"on_candle for {ctx.symbol} placed an order for {s}; orders are per symbol")
        m = self.markets[s]
        ref = float(ctx.candles.close[ctx.i])
        price = m.round_price(it.price) if it.price is not None else None
        stop = m.round_price(it.stop_price) if it.stop_price is not None else None
        if it.amount is not None:
            amount = m.trunc_amount(it.amount)
        elif it.quote_amount is not None:
            qp = price if it.type == OrderType.LIMIT else stop if it.type == OrderType.STOP else ref
            amount = m.trunc_amount(it.quote_amount / qp) if qp else 0.0
        elif it.reduce_only:
            amount = abs(self._pf.amount(s))
        else:
            raise ValueError("OrderIntent needs amount or quote_amount (or reduce_only to close all)")
        if it.type not in _ORDER_TYPES:
            raise ValueError(f"unknown order type {it.type!r}")
        if it.side not in _SIDES:
            raise ValueError(f"unknown side {it.side!r}")
        st = self._st
        st.order_seq += 1
        ct = ctx.close_time
        # positional, in Order's field order: client_order_id, symbol, side, type, amount, price,
        # stop_price, filled, average, status, reject_reason, cancel_reason, tag, so_index,
        # deal_id, reduce_only, created_at, updated_at
        od = Order(
            f"{self.order_prefix}-{st.order_seq}",
            s,
            it.side,
            it.type,
            amount,
            price,
            stop,
            0.0,
            None,
            OrderStatus.NEW,
            "",
            "",
            it.tag,
            it.so_index,
            it.deal_id,
            it.reduce_only,
            ct,
            ct,
        )
        if m.market_type == "swap" and m.liquidation_buffer_pct and not od.reduce_only:
            reason = self._buffer_block(s, od, ref)
            if reason:
                od.status = OrderStatus.REJECTED
                od.reject_reason = reason
                self._touched[od.client_order_id] = od
                self._record(Decision(ctx.time, "liquidation_buffer", Outcome.BLOCK, reason.split(": ", 1)[1], s))
                return od
        self.broker.submit(od, ref, self._pf)
        self._touched[od.client_order_id] = od
        if od.is_open:
            self._open[s].append(od)
            self._ver[s] += 1
            if od.deal_id:
                deal = self._pf.deals.get(od.deal_id)
                if deal is not None and od.client_order_id not in deal.orders:
                    deal.orders.append(od.client_order_id)
        return od

    def _cancel_id(self, symbol: str, coid: str, reason: str, time: int) -> None:
        for od in self._open[symbol]:
            if od.client_order_id == coid:
                self._cancel(od, reason, time)
                self._notify("funds", symbol)
                return

    def _cancel(self, od: Order, reason: str, time: int) -> None:
        self.broker.cancel(od, self._pf)
        od.status = OrderStatus.CANCELED
        od.cancel_reason = reason
        od.updated_at = time
        self._open[od.symbol].remove(od)
        self._ver[od.symbol] += 1
        self._touched[od.client_order_id] = od

    def _execute(self, s: str, i: int) -> list[Fill]:
        pf = self._pf
        m = self.markets[s]
        fills: list[Fill] = []
        open_s = self._open[s]
        fast = getattr(self.broker, "fills_at", None)
        events = fast(s, i, list(open_s), pf.amount(s)) if fast is not None else None
        if events is None:
            events = self.broker.iter_fills(s, i, list(open_s), lambda: pf.amount(s))
        for od, price, liq, ftime in events:
            if not od.is_open:
                continue
            amount = od.amount - od.filled
            if od.reduce_only:
                pa = pf.amount(s)
                if pa == 0.0 or (pa > 0) == (od.side == Side.BUY):
                    self._cancel(od, "reduce_only: no position to reduce", ftime)
                    continue
                if amount > abs(pa):
                    amount = abs(pa)
            fee = price * amount * (m.maker_fee_bps if liq == "maker" else m.taker_fee_bps) / 1e4
            if od.reserved:
                pf.reserved -= od.reserved
                od.reserved = 0.0
            fill = Fill(od.client_order_id, s, od.side, price, amount, fee, liq, ftime, od.tag, od.deal_id)
            od.filled += amount
            od.average = price
            od.fee += fee
            od.status = OrderStatus.FILLED
            od.updated_at = ftime
            open_s.remove(od)
            self._touched[od.client_order_id] = od
            closed = pf.apply_fill(fill, od, self._new_deal_id)
            self._ver[s] += 1
            fills.append(fill)
            self._fills.append(fill)
            if closed is not None:
                self._after_close(s, closed, ftime)
        if fills:
            self._held_changed(s)
        return fills

    def _after_close(self, s: str, closed, time: int) -> None:
        """Book a closed deal: the trade, the P&L history, its leftover orders canceled."""
        if closed is None:
            return
        self._trades.append(closed)
        st = self._st
        st.closed_pnls.append(closed.pnl)
        st.closed_pnl_pcts.append(closed.pnl_pct)
        if len(st.closed_pnls) > _CLOSED_PNL_KEEP:
            del st.closed_pnls[0], st.closed_pnl_pcts[0]
        for other in list(self._open[s]):
            if other.deal_id and other.deal_id == closed.deal_id:
                self._cancel(other, "deal_closed", time)
