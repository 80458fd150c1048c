"""Perpetuals on the one :class:`~strategies.engine.engine.Engine`: funding, liquidation, buffer guard.

Pure Python/numpy (no Django), float64, quote currency. Formulas: :mod:`strategies.engine.perps`.
For every candle of a perpetual market (``MarketSpec.market_type == "swap"``) that holds a
position, **before** the broker fills the candle's orders (:meth:`PerpsMixin._perps_step`):

1. **Funding** — each funding event with time in ``[open, open + timeframe)`` charges the
   position held at the candle's open ``amount × mark × rate`` (mark = the mark candle's open,
   else the last-price open): cash moves, and the deal's ``funding`` records it (a long pays a
   positive rate, a short receives it). The equity curve carries it through cash.
2. **Liquidation** — the liquidation price (isolated: the deal's margin ``|amount| × entry ÷
   leverage − funding paid`` as wallet; cross: the wallet balance with the other perpetuals'
   maintenance margin and unrealised P&L at their last close) is compared with the candle's
   **mark** low (long) / high (short). Crossed: the position closes at the liquidation price
   (rounded to the tick) with the liquidation fee ``notional × liquidation_fee_bps`` (at most
   the margin left: isolated the position's, cross the wallet's margin balance), exit reason
   ``liquidation``, the deal's other orders are canceled (``deal_closed``), and a
   ``liquidation`` decision records the prices. Without a mark candle the last-price candle
   is used and a ``mark_price`` decision says so (once per symbol and run). This runs before
   the candle's stops and take profits: pessimistic, like the fill model's "stop wins". A
   position opened or grown inside the candle is checked from the next candle on.

The **liquidation-buffer guard** (:meth:`PerpsMixin._buffer_block`) refuses an entry or
safety order on a perpetual whose fill would leave the liquidation price closer than
``liquidation_buffer_pct`` % to the order price: the order is rejected with reason
``liquidation_buffer: ...`` and a ``liquidation_buffer`` BLOCK decision, so a DCA ladder stops
where it would pass the buffer. The projected position is the held one plus the resting
entries of the same side that fill before the order (market orders; limits at or above a
buy's price, at or below a sell's) plus the order itself: a whole ladder placed at once is
judged rung by rung as it would fill.

**Skipping** (the engine's ``skip``, identical results): between two wakes of a perpetual
symbol the position cannot change (a fill wakes it), so with **isolated** margin its
liquidation price is constant until the next funding event. :meth:`PerpsMixin._perps_bound`
lets the engine jump at most to the candle of that event, or to the first candle whose mark
low / high crosses the liquidation price (found over the whole span at once), and keeps the
deal's smallest liquidation distance over the skipped candles. **Cross** margin reads the other
positions' prices on every candle: runs with a cross-margin perpetual step every candle.
"""

from __future__ import annotations

import heapq

import numpy as np

from .orders import Fill, Order, OrderStatus, OrderType, Side
from .perps import Leg, funding_payment, liquidation_price, maintenance_margin
from .types import Decision, Outcome

__all__ = ["PerpsMixin"]


class PerpsMixin:
    """The engine's perpetual-futures methods (see the module docstring)."""

    def _perps_setup(self, feed, g0: int) -> None:
        ms = self.markets
        self._swap = {s for s in self.symbols if ms[s].market_type == "swap"}
        self._pf.swaps = {s: ms[s].leverage for s in self._swap}
        self._mark_idx: dict[str, np.ndarray | None] = {}
        self._fund: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        self._mark_warned: set[str] = set()
        # (global candle, symbol order, seq, symbol, deal id, payment, visit generation)
        self._pending_funding: list[tuple[int, int, int, str, str, float, int]] = []
        self._seq_funding = 0
        self._fgen: dict[str, int] = {}  # visits of each perpetual: a queued payment is stale after one
        self._lp_dirty: set[str] = set()  # funding applied since the last liquidation price
        self._tt = {s: ms[s].tier_table() for s in self._swap}
        t0 = int(self._G[g0]) if g0 < len(self._G) else 0
        for s in sorted(self._swap):
            c = feed.candles(s)
            mk = feed.mark(s)
            if mk is not None and len(mk):
                j = np.searchsorted(mk.time, c.time).clip(max=len(mk.time) - 1)
                self._mark_idx[s] = np.where(mk.time[j] == c.time, j, -1)
            else:
                self._mark_idx[s] = None
            fr = feed.funding(s)
            if fr is not None:
                self._fund[s] = (fr[0], fr[1], int(np.searchsorted(fr[0], t0)))

    def _mark_hl(self, s: str, i: int) -> tuple[float, float, float] | None:
        """(open, high, low) of the mark candle aligned with candle ``i`` of ``s``, or None."""
        idx = self._mark_idx.get(s)
        if idx is None or idx[i] < 0:
            return None
        mk = self.feed.mark(s)
        j = int(idx[i])
        return float(mk.open[j]), float(mk.high[j]), float(mk.low[j])

    def _wallet_for(self, s: str, amount: float, entry: float) -> tuple[float, float, float]:
        """(wallet balance, other maintenance, other unrealised P&L) for a position of ``s`` of
        signed ``amount`` at ``entry``, by margin mode (module docstring)."""
        m = self.markets[s]
        pf = self._pf
        if m.margin_mode == "isolated":
            deal = pf.deals.get(pf.positions[s].deal_id) if s in pf.positions else None
            paid = deal.funding if deal is not None else 0.0
            return abs(amount) * entry / m.leverage - paid, 0.0, 0.0
        tmm = upnl = 0.0
        g = self._g - 1 if self._g > 0 else 0
        for k, o in enumerate(self.symbols):
            p = pf.positions.get(o)
            if o == s or o not in self._swap or p is None or not p.amount:
                continue
            px = float(self._C[k, g])
            tmm += maintenance_margin(abs(p.amount) * px, self.markets[o].tier_table())
            upnl += p.amount * (px - p.entry_price)
        cur = pf.positions.get(s)
        wallet = pf.wallet_balance()
        if cur is not None and cur.amount:
            wallet -= cur.amount * cur.entry_price  # replaced by the (prospective) position below
        return wallet + amount * entry, tmm, upnl

    def _perps_no_skip(self) -> bool:
        """Whether the run must step every candle: a cross-margin perpetual (module doc)."""
        return any(self.markets[s].margin_mode != "isolated" for s in self._swap)

    def _perps_bound(self, s: str, i: int, nxt: int) -> int:
        """The latest candle the engine may wake ``s`` at after visiting its candle ``i``,
        given the strategy's and broker's wake ``nxt`` (module doc: skipping). Without a risk
        manager the funding events before that wake are queued (``_pending_funding``, applied by
        :meth:`_apply_funding` on their candle without waking the strategy); with one, the wake
        stops at the next funding event (the risk layer may close positions at any candle)."""
        # payments queued at an earlier visit are stale from here on (this visit queues its own)
        self._fgen[s] = self._fgen.get(s, 0) + 1
        pos = self._pf.positions.get(s)
        if pos is None or not pos.amount or nxt <= i + 1:
            return nxt
        c = self._cands[s]
        idx = self._mark_idx.get(s)
        if idx is None and s not in self._mark_warned:
            return i + 1  # the "no mark-price candle" decision is recorded on its first candle
        if idx is not None and s not in self._mark_warned:
            ix = idx[i + 1 : nxt]
            if (ix < 0).any():
                nxt = i + 1 + int(np.argmax(ix < 0))
                if nxt <= i + 1:
                    return nxt
        deal = self._pf.deals[pos.deal_id]
        paid = deal.funding
        events: list[tuple[int, float]] = []  # (local candle, payment) of the queued events
        fund = self._fund.get(s)
        if fund is not None:
            times, rates, _ = fund
            tf = self._tf
            # the events after candle i's and before the wake's candle, all at once
            k0 = int(np.searchsorted(times, int(c.time[i]) + tf))
            k1 = int(np.searchsorted(times, int(c.time[nxt]) if nxt < len(c) else int(c.time[-1]) + tf))
            if k1 > k0:
                ts = times[k0:k1]
                js = np.searchsorted(c.time, ts, side="right") - 1
                inside = ts < c.time[js] + tf  # inside no candle (a gap): never charged
                if not inside.all():
                    ts, js = ts[inside], js[inside]
                    rs = rates[k0:k1][inside]
                else:
                    rs = rates[k0:k1]
                if len(js):
                    if self.risk is not None:
                        nxt = max(int(js[0]), i + 1)
                    else:
                        if idx is None:
                            marks = c.open[js]
                        else:
                            mi = idx[js]
                            marks = np.where(mi >= 0, self.feed.mark(s).open[np.maximum(mi, 0)], c.open[js])
                        # amount x mark x rate: funding_payment's expression, element by element
                        pays = pos.amount * marks * rs
                        events = list(zip(js.tolist(), pays.tolist(), strict=True))
        hit = self._span_cross(s, pos.amount, pos.entry_price, paid, i + 1, nxt, events, deal)
        if hit is not None:
            nxt = hit
        g = self._gidx[s]
        kof = self._kof[s]
        gen = self._fgen[s]
        for j, amount in events:
            if j < nxt:
                self._seq_funding += 1
                heapq.heappush(self._pending_funding, (int(g[j]), kof, self._seq_funding, s, pos.deal_id, amount, gen))
        return nxt

    def _span_cross(self, s: str, amount: float, entry: float, paid: float, a: int, b: int, events, deal) -> int | None:
        """First candle of ``[a, b)`` whose mark low (long) / high (short) crosses the isolated
        liquidation price — constant between funding ``events`` ``[(candle, payment)]``, each
        moving the wallet from its candle on — or None; folds the smallest distance over the
        candles before it into the deal (the same expression per candle as :meth:`_perps_step`)."""
        c = self._cands[s]
        idx = self._mark_idx.get(s)
        if idx is None:
            hi, lo = c.high[a:b], c.low[a:b]
        else:
            ix = idx[a:b]
            mk = self.feed.mark(s)
            safe = np.maximum(ix, 0)
            hi = np.where(ix >= 0, mk.high[safe], c.high[a:b])
            lo = np.where(ix >= 0, mk.low[safe], c.low[a:b])
        m = self.markets[s]
        tiers = self._tt[s]
        leg = Leg(1 if amount > 0 else -1, abs(amount), entry)
        margin = abs(amount) * entry / m.leverage
        # piecewise-constant liquidation price: one value per piece between funding events
        bounds, lps = [a], []
        for j, pay in events:
            if j > bounds[-1]:
                lps.append(liquidation_price(wallet_balance=margin - paid, legs=[leg], tiers=tiers) or 0.0)
                bounds.append(j)
            paid += pay
        lps.append(liquidation_price(wallet_balance=margin - paid, legs=[leg], tiers=tiers) or 0.0)
        bounds.append(b)
        lp = np.repeat(np.asarray(lps), np.diff(bounds)) if len(lps) > 1 else np.full(b - a, lps[0])
        long = amount > 0
        ext = lo if long else hi
        valid = lp > 0.0
        crossed = valid & ((ext <= lp) if long else (ext >= lp))
        stop = int(np.argmax(crossed)) if crossed.any() else len(ext)
        if stop and valid[:stop].any():
            seg, ls = ext[:stop][valid[:stop]], lp[:stop][valid[:stop]]
            dist = float((((seg - ls) / seg) * 100.0).min() if long else (((ls - seg) / seg) * 100.0).min())
            if dist < deal.min_liq_distance_pct:
                deal.min_liq_distance_pct = max(dist, 0.0)
        return a + stop if stop < len(ext) else None

    def _apply_funding(self, g: int, due: set[str], wake_l: dict[str, int], t: int) -> None:
        """At global candle ``g``: the queued funding payments of ``g`` and the ``due`` perpetuals'
        own steps (:meth:`_perps_step`), in symbol order — the order a run stepping every candle
        charges them in; a payment received wakes the symbols waiting for funds."""
        pf = self._pf
        pend = self._pending_funding
        by: dict[str, list[tuple[str, float]]] = {}
        while pend and pend[0][0] == g:
            _, _, _, s, deal_id, amount, gen = heapq.heappop(pend)
            # a symbol visited since the payment was queued (woken early) queued its own again,
            # and a symbol due now charges this candle's events in its own step
            if s not in due and gen == self._fgen.get(s, 0):
                by.setdefault(s, []).append((deal_id, amount))
        received = False
        for s in self.symbols:
            paid = by.get(s)
            if paid:
                for deal_id, amount in paid:
                    pf.cash -= amount
                    pf.deals[deal_id].funding += amount
                    received = received or amount < 0
                if self._defer:
                    self._ev_cash.append((g, pf.cash))
                # the liquidation price moves with the wallet: kept by the next _perps_step,
                # or recomputed at the end of the run (_perps_finish)
                self._lp_dirty.add(s)
            if s in due:
                self._perps_step(s, wake_l[s], t)
        if received:
            self._notify("funds", "")

    def _perps_finish(self) -> None:
        """At the end of a run: the liquidation price of positions whose wallet funding moved
        after their last step, as a run stepping every candle leaves it."""
        pf = self._pf
        for s in sorted(self._lp_dirty):
            pos = pf.positions.get(s)
            if pos is not None and pos.amount:
                pf.deals[pos.deal_id].liquidation_price = self._liq_price(s, pos.amount, pos.entry_price) or 0.0
        self._lp_dirty.clear()

    def _liq_price(self, s: str, amount: float, entry: float) -> float | None:
        wb, tmm, upnl = self._wallet_for(s, amount, entry)
        leg = Leg(1 if amount > 0 else -1, abs(amount), entry)
        return liquidation_price(
            wallet_balance=wb, legs=[leg], tiers=self._tt[s], other_maintenance=tmm, other_upnl=upnl
        )

    def _perps_step(self, s: str, i: int, t: int) -> None:
        """Funding, then the liquidation check, of ``s`` at its candle ``i`` (open time ``t``)."""
        self._fgen[s] = self._fgen.get(s, 0) + 1
        self._lp_dirty.discard(s)
        pf = self._pf
        pos = pf.positions.get(s)
        c = self._cands[s]
        mk = self._mark_hl(s, i)
        fund = self._fund.get(s)
        if fund is not None:
            times, rates, k = fund
            end = t + self._tf
            while k < len(times) and times[k] < end:
                if times[k] >= t and pos is not None and pos.amount:
                    mark = mk[0] if mk is not None else float(c.open[i])
                    paid = funding_payment(amount=pos.amount, mark_price=mark, rate=float(rates[k]))
                    pf.cash -= paid
                    pf.deals[pos.deal_id].funding += paid
                    if self._defer:
                        self._ev_cash.append((self._g, pf.cash))
                k += 1
            self._fund[s] = (times, rates, k)
        if pos is None or not pos.amount:
            return
        deal = pf.deals[pos.deal_id]
        lp = self._liq_price(s, pos.amount, pos.entry_price)
        deal.liquidation_price = lp or 0.0
        if mk is None:
            hi, lo = float(c.high[i]), float(c.low[i])
            if s not in self._mark_warned:
                self._mark_warned.add(s)
                self._record(
                    Decision(
                        t, "mark_price", Outcome.INFO, "no mark-price candle: liquidation checked on last price", s
                    )
                )
        else:
            hi, lo = mk[1], mk[2]
        if not lp:
            return
        long = pos.amount > 0
        extreme = lo if long else hi
        dist = (extreme - lp) / extreme * 100.0 if long else (lp - extreme) / extreme * 100.0
        if dist < deal.min_liq_distance_pct:
            deal.min_liq_distance_pct = max(dist, 0.0)
        if (long and lo <= lp) or (not long and hi >= lp):
            self._liquidate(s, t, lp, extreme, "mark" if mk is not None else "last")

    def _liquidate(self, s: str, t: int, lp: float, extreme: float, kind: str) -> None:
        pf = self._pf
        m = self.markets[s]
        pos = pf.positions[s]
        deal_id = pos.deal_id
        price = m.round_price(lp)
        amount = abs(pos.amount)
        fee = price * amount * m.liquidation_fee_bps / 1e4
        # the fee is paid from the margin left (isolated: the position's; cross: the wallet's
        # margin balance, other positions' unrealised P&L included); beyond it the exchange's
        # insurance fund takes the loss, so the balance never goes below zero from the fee
        wb, _, upnl = self._wallet_for(s, pos.amount, pos.entry_price)
        left = wb + upnl + pos.amount * (price - pos.entry_price)
        fee = min(fee, max(left, 0.0))
        st = self._st
        st.order_seq += 1
        side = Side.SELL if pos.amount > 0 else Side.BUY
        od = Order(
            client_order_id=f"{self.order_prefix}-{st.order_seq}",
            symbol=s,
            side=side,
            type=OrderType.MARKET,
            amount=amount,
            status=OrderStatus.FILLED,
            tag="liquidation",
            deal_id=deal_id,
            reduce_only=True,
            created_at=t,
            updated_at=t,
        )
        od.filled, od.average, od.fee = amount, price, fee
        fill = Fill(od.client_order_id, s, side, price, amount, fee, "taker", t, "liquidation", deal_id)
        self._touched[od.client_order_id] = od
        what = "low" if side == Side.SELL else "high"
        self._record(
            Decision(
                t,
                "liquidation",
                Outcome.EXIT,
                f"{kind} {what} {extreme:.8g} crossed the liquidation price {price:.8g}",
                s,
                {"liquidation_price": price, kind: extreme, "fee": fee},
            )
        )
        closed = pf.apply_fill(fill, od, self._new_deal_id)
        self._ver[s] += 1
        self._fills.append(fill)
        self._after_close(s, closed, t)
        self._held_changed(s)

    def _buffer_block(self, s: str, od: Order, ref: float) -> str:
        """The liquidation-buffer guard for a new non-reduce-only order ``od`` (module doc);
        returns the rejection reason, or ``""`` when the order may go."""
        m = self.markets[s]
        price = od.price if od.type == OrderType.LIMIT else od.stop_price if od.type == OrderType.STOP else ref
        if not price:
            return ""
        p = self._pf.positions.get(s)
        amt0, e0 = (p.amount, p.entry_price) if p is not None else (0.0, 0.0)
        buy = od.side == Side.BUY
        if amt0 and (amt0 > 0) != buy:
            return ""
        # the ladder: resting entries of the same side that fill before this one (market orders,
        # and limits at or above a buy's price / at or below a sell's) are in the position by then
        size, cost = abs(amt0), abs(amt0) * e0
        for o in self._open.get(s, ()):
            if o.side != od.side or o.reduce_only or o.type == OrderType.STOP:
                continue
            px = ref if o.type == OrderType.MARKET else o.price
            if o.type == OrderType.MARKET or (px >= price if buy else px <= price):
                left = o.amount - o.filled
                size += left
                cost += left * px
        size += od.amount
        cost += od.amount * price
        amount = size if buy else -size
        entry = cost / size
        lp = self._liq_price(s, amount, entry)
        if not lp:
            return ""
        dist = (price - lp) / price * 100.0 if amount > 0 else (lp - price) / price * 100.0
        if dist >= m.liquidation_buffer_pct:
            return ""
        return (
            f"liquidation_buffer: liquidation price {lp:.8g} would be {dist:.2f}% from {price:.8g}, "
            f"< buffer {m.liquidation_buffer_pct:g}%"
        )
