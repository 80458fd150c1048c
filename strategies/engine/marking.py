"""Mark to market and the portfolio-risk seam of the :class:`~strategies.engine.engine.Engine`.

:class:`MarkingMixin` holds the engine's equity methods (the equity curve per candle or all at
once, peak / UTC-day-start / last equity, equity at the current candle) and what the portfolio
risk manager sees (:meth:`~MarkingMixin._portfolio_view`, :meth:`~MarkingMixin._check_entry`).
They read the run-level attributes that ``Engine._run`` sets up (``_pf``, ``_st``, ``_C``,
``_G``, ``_g``, ...). Equity is float64, quote currency. Pure numpy (no Django).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .context import StepContext
from .feed import FeedView
from .orders import OrderType, Side

__all__ = ["DAY_MS", "MarkingMixin"]

DAY_MS = 86_400_000


# --- risk seam -------------------------------------------------------------------------------
def _risk_types():
    """``(EntryRequest, PortfolioView, OpenPosition)`` from :mod:`strategies.risk`, or local
    stand-ins with the same fields when that package is not importable."""
    try:
        from strategies.risk import EntryRequest, OpenPosition, PortfolioView

        return EntryRequest, PortfolioView, OpenPosition
    except ImportError:  # pragma: no cover - only while strategies.risk is absent

        @dataclass
        class EntryRequest:  # type: ignore[no-redef]
            time_ms: int
            symbol: str
            side: str
            quote_amount: float
            price: float
            stop_price: float | None = None
            confidence: float | None = None

        @dataclass
        class OpenPosition:  # type: ignore[no-redef]
            symbol: str
            side: str
            notional: float
            entry_price: float
            stop_price: float | None = None

        @dataclass
        class PortfolioView:  # type: ignore[no-redef]
            time_ms: int
            equity: float
            cash: float
            peak_equity: float
            day_start_equity: float
            positions: list
            closed_pnls: list
            closed_pnl_pcts: list
            market: Any = None

        return EntryRequest, PortfolioView, OpenPosition


class MarkingMixin:
    """The :class:`~strategies.engine.engine.Engine`'s equity and risk-view methods."""

    def _refresh_held(self) -> None:
        """``_held_k``: ``(k, symbol)`` of the non-flat positions, in symbol order (the order in
        which equity sums them, so every equity value is the same IEEE sum)."""
        pos = self._pf.positions
        self._held_k = [(k, s) for k, s in enumerate(self.symbols) if (p := pos.get(s)) is not None and p.amount != 0.0]
        self._held_set = {k for k, _ in self._held_k}

    def _held_changed(self, s: str) -> None:
        """Update ``_held_k`` and the deferred equity events after fills of ``s``."""
        k = self._kof[s]
        amt = self._pf.positions[s].amount
        if (amt != 0.0) != (k in self._held_set):
            if amt != 0.0:
                self._held_set.add(k)
            else:
                self._held_set.discard(k)
            self._held_k = [(kk, self.symbols[kk]) for kk in sorted(self._held_set)]
        if self._defer:
            self._ev_cash.append((self._g, self._pf.cash))
            self._ev_amt[k].append((self._g, amt))

    def _mark_all(self, g0: int, g1: int) -> None:
        """The whole equity curve ``[g0, g1)`` at once from the cash and position changes
        recorded during the run: per candle ``cash + sum_k amount_k x close_k``, summed in
        symbol order with the same IEEE operations as :meth:`_mark` (a flat symbol adds an
        exact 0.0), then peak / day-start / last equity folded as :meth:`_mark` does."""
        n = g1 - g0
        if n <= 0:
            return
        gg = np.arange(g0, g1)

        def timeline(first: float, ev: list[tuple[int, float]]) -> np.ndarray:
            if not ev:
                return np.full(n, first)
            at = np.fromiter((e[0] for e in ev), dtype=np.int64, count=len(ev))
            vals = np.empty(len(ev) + 1)
            vals[0] = first
            vals[1:] = [e[1] for e in ev]
            return vals[np.searchsorted(at, gg, side="right")]

        eq = timeline(self._cash0, self._ev_cash)
        for k in range(len(self.symbols)):
            ev = self._ev_amt[k]
            if not ev and self._amt0[k] == 0.0:
                continue
            eq += timeline(self._amt0[k], ev) * self._C[k, g0:g1]
        self._eq = eq
        self._fold_stats(eq, self._G[g0:g1] + self._tf)
        self._eq_now = self._st.last_equity

    def _fold_stats(self, eq: np.ndarray, ct: np.ndarray) -> None:
        """Peak equity, UTC-day start equity and last equity after the points ``eq`` (closing at ``ct``)."""
        st = self._st
        m = float(eq.max())
        if m > st.peak_equity:
            st.peak_equity = m
        days = ct // DAY_MS
        if days[-1] != st.day_index:
            prev = np.concatenate(([st.last_equity], eq[:-1]))
            for k in np.flatnonzero(np.diff(np.concatenate(([st.day_index], days))) != 0):
                st.day_index = int(days[k])
                st.day_start_equity = float(eq[k] if ct[k] % DAY_MS == 0 else prev[k])
        st.last_equity = float(eq[-1])

    def _mark(self, a: int, b: int) -> None:
        """Equity points for global candles ``[a, b)`` with the current cash and positions."""
        pf = self._pf
        st = self._st
        positions = pf.positions
        held = [(k, positions[s].amount) for k, s in self._held_k]
        if b - a == 1 and self.risk is None:
            # scalar path: the same IEEE operations in the same order as the vector path below
            e = pf.cash
            for k, amt in held:
                e = e + amt * float(self._C[k, a])
            self._eq[a - self._g0] = e
            if e > st.peak_equity:
                st.peak_equity = e
            ct = int(self._G[a]) + self._tf
            d = ct // DAY_MS
            if d != st.day_index:
                st.day_index = d
                st.day_start_equity = e if ct % DAY_MS == 0 else st.last_equity
            st.last_equity = e
            self._eq_now = e
            return
        eq = np.full(b - a, pf.cash)
        for k, amt in held:
            eq += amt * self._C[k, a:b]
        self._eq[a - self._g0 : b - self._g0] = eq
        ct = self._G[a:b] + self._tf
        if self.risk is None:
            self._fold_stats(eq, ct)
        else:
            for k in range(b - a):
                e = float(eq[k])
                if e > st.peak_equity:
                    st.peak_equity = e
                d = int(ct[k] // DAY_MS)
                if d != st.day_index:
                    st.day_index = d
                    st.day_start_equity = e if ct[k] % DAY_MS == 0 else st.last_equity
                st.last_equity = e
                self._eq_now = e
                t = int(self._G[a + k])
                for dec in self.risk.on_candle(t, self._portfolio_view(t, e)) or ():
                    self._record(dec)
        self._eq_now = st.last_equity

    def _equity_at_now(self) -> float:
        """Equity (quote) at the close of the current candle (same sum as :meth:`_mark`)."""
        if not self._defer:
            return self._eq_now
        a = self._g
        e = self._pf.cash
        positions = self._pf.positions
        for k, s in self._held_k:
            e = e + positions[s].amount * float(self._C[k, a])
        return e

    def _portfolio_view(self, t: int, equity: float):
        _, PortfolioView, OpenPosition = _risk_types()
        pf = self._pf
        positions = []
        g = self._g
        for k, s in enumerate(self.symbols):
            p = pf.positions.get(s)
            if p is None or p.amount == 0.0:
                # A flat symbol with a resting entry order (a base order placed this candle,
                # filling at the next open) is a position for the risk rules already, or two
                # entries decided on the same candle would both pass a max-positions limit.
                for o in self._open[s]:
                    if not o.reduce_only:
                        price = o.price if o.price is not None else float(self._C[k, g])
                        side = "long" if o.side == Side.BUY else "short"
                        positions.append(OpenPosition(s, side, o.amount * price, price, None))
                        break
                continue
            stop = None
            for o in self._open[s]:
                if o.type == OrderType.STOP and o.reduce_only:
                    stop = o.stop_price
            positions.append(
                OpenPosition(
                    s, "long" if p.amount > 0 else "short", abs(p.amount) * float(self._C[k, g]), p.entry_price, stop
                )
            )
        st = self._st
        return PortfolioView(
            time_ms=t,
            equity=equity,
            cash=pf.cash,
            peak_equity=st.peak_equity,
            day_start_equity=st.day_start_equity,
            positions=positions,
            closed_pnls=list(st.closed_pnls),
            closed_pnl_pcts=list(st.closed_pnl_pcts),
            market=FeedView(self.feed, t),
        )

    def _check_entry(self, ctx: StepContext, side, quote_amount, price, stop_price, confidence):
        if self.risk is None:
            return True, quote_amount
        EntryRequest, _, _ = _risk_types()
        req = EntryRequest(
            time_ms=ctx.time,
            symbol=ctx.symbol,
            side=side,
            quote_amount=quote_amount,
            price=price,
            stop_price=stop_price,
            confidence=confidence,
        )
        rd = self.risk.check_entry(req, self._portfolio_view(ctx.time, self._eq_now))
        for d in rd.decisions or ():
            self._record(d)
        return bool(rd.approved), float(rd.quote_amount)
