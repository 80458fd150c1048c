"""Smart DCA's exits: closing a deal at market and the exit rules (trailing take profit,
stop-loss timeout, zombie tag, SAFU exit) with their vectorized forward searches.

:class:`DcaExitsMixin` holds them for :class:`SmartDCA`; the same search functions serve
``on_candle`` (fire at ``ctx.i``?) and ``next_wake`` (first firing candle). Pure numpy (no Django).
"""

from __future__ import annotations

import numpy as np

from strategies.engine.broker import first_true_index
from strategies.engine.orders import OrderIntent, OrderStatus, OrderType
from strategies.engine.types import Outcome

from ..confidence import DealSnapshot
from ..guards import fmt
from .formulas import _INF, HOUR_MS
from .state import DcaSymbolState, _Arrays, _Scan

__all__ = ["DcaExitsMixin"]


class DcaExitsMixin:
    """:class:`~strategies.library.smart_dca.SmartDCA`'s exit rules and their searches."""

    def _exit(self, ctx, st: DcaSymbolState, tag: str) -> bool:
        for o in list(ctx.orders):
            if o.deal_id == st.deal_id:
                ctx.cancel(o, f"exit: {tag}")
        o = ctx.place(
            OrderIntent(ctx.symbol, self.exit_side, OrderType.MARKET, tag=tag, deal_id=st.deal_id, reduce_only=True)
        )
        if o.status == OrderStatus.REJECTED:
            ctx.decide("smart_dca", Outcome.BLOCK, f"{tag} close order rejected: {o.reject_reason}")
            return False
        st.phase = "closing"
        return True

    def _check_exits(self, ctx, st: DcaSymbolState, A: _Arrays) -> bool:
        """Exit rules evaluated at the closed candle ``ctx.i`` (same functions as next_wake)."""
        p = self.params
        i = ctx.i
        lf = self._idx(A, st.last_fill_time)
        avg = ctx.position.entry_price
        if p["trailing_enabled"] and self._trail_exit(A, st, lf, i, i + 1) == i:
            ref = self._trail_ref(A, st, lf, i)
            ctx.decide(
                "trailing_take_profit",
                Outcome.EXIT,
                f"close {A.close[i]:g} retraced {fmt(p['trailing_deviation'])}% from {'high' if self.long else 'low'} {ref:g} after take profit {st.tp_price:g}",
            )
            return self._exit(ctx, st, "trailing_take_profit")
        if st.sl_price > 0 and p["stop_loss_timeout"] > 0 and self._sl_timeout(A, st, lf, i, i + 1) == i:
            ctx.decide(
                "stop_loss",
                Outcome.EXIT,
                f"{p['stop_loss_timeout']} closes {'below' if self.long else 'above'} stop loss {st.sl_price:g} ({fmt(self._sl_pct(st))}% from avg {avg:g})",
            )
            return self._exit(ctx, st, "stop_loss")
        if self.g_zombie is not None and not st.zombie:
            if self._zombie_first(ctx.symbol, A, st, avg, lf, i, i + 1, ctx.feed.tf_ms) == i:
                z = self._zombie(A, st, avg, lf, i, i + 1, ctx.feed.tf_ms)
                st.zombie = True
                ctx.tag_deal(st.deal_id, "zombie")
                close = float(A.close[i])
                loss = (avg - close) / avg * 100.0 if self.long else (close - avg) / avg * 100.0
                ctx.record(self.g_zombie.tag(ctx.time, ctx.symbol, z[1] / HOUR_MS, loss))
                if self.g_zombie.action == "close":
                    return self._exit(ctx, st, "zombie")
                if self.g_zombie.action == "stop_averaging":
                    st.stop_averaging = True
                    for o in list(ctx.orders):
                        if o.tag == "safety_order":
                            ctx.cancel(o, "zombie_tag: stop averaging")
        if self.g_safu is not None:
            # a scorer without exit_factors / series (an ML model) is asked on every candle of
            # the deal: next_wake (_safu) wakes the strategy on each one
            vector = A.safu_f is not None or hasattr(self.exit_scorer, "series")
            score = None
            if vector:
                fire = self._safu_first(ctx.symbol, A, st, avg, lf, i, i + 1) == i
            else:
                score = float(self.exit_scorer.score(ctx.symbol, ctx, self._snapshot(ctx, st)))
                fire = score >= self.g_safu.threshold
            if fire:
                close = float(A.close[i])
                dd = (avg - close) / avg * 100.0 if self.long else (close - avg) / avg * 100.0
                if score is None:
                    score = float(self.exit_scorer.score(ctx.symbol, ctx, self._snapshot(ctx, st)))
                src = str(getattr(self.exit_scorer, "last_source", "") or "")
                ctx.record(self.g_safu.check(ctx.time, ctx.symbol, score, dd, src))
                return self._exit(ctx, st, "safu_exit")
        return False

    def _snapshot(self, ctx, st: DcaSymbolState) -> DealSnapshot:
        """The open deal at the close of candle ``ctx.i`` as the scorers see it (the engine's
        running totals: average entry, spend, first-fill time; the strategy's TP price)."""
        deal = ctx.portfolio.deals.get(st.deal_id)
        return DealSnapshot(
            st.deal_id,
            self.side,
            ctx.position.entry_price,
            abs(ctx.position.amount),
            st.so_filled,
            int(deal.opened_at) if deal is not None else int(ctx.time),
            float(deal.entry_cost) if deal is not None else 0.0,
            float(st.tp_price),
        )

    # vectorized searches: first candle index j in [start, end) where the rule fires, else end
    def _trail_exit(self, A: _Arrays, st, lf: int, start: int, end: int) -> int:
        tp, td = st.tp_price, self.params["trailing_deviation"] / 100.0
        h, lo, c = A.high, A.low, A.close
        if self.long:
            arm = first_true_index(lambda a, b: h[a:b] >= tp, lf + 1, end)
        else:
            arm = first_true_index(lambda a, b: lo[a:b] <= tp, lf + 1, end)
        if arm >= end:
            return end
        s0 = max(arm, start)
        a, size = s0, 32
        if self.long:
            ext = h[arm:s0].max() if s0 > arm else -_INF
            while a < end:
                b = min(end, a + size)
                run = np.maximum(np.maximum.accumulate(h[a:b]), ext)
                m = c[a:b] <= run * (1.0 - td)
                k = int(m.argmax())
                if m[k]:
                    return a + k
                ext, a, size = run[-1], b, size * 4
        else:
            ext = lo[arm:s0].min() if s0 > arm else _INF
            while a < end:
                b = min(end, a + size)
                run = np.minimum(np.minimum.accumulate(lo[a:b]), ext)
                m = c[a:b] >= run * (1.0 + td)
                k = int(m.argmax())
                if m[k]:
                    return a + k
                ext, a, size = run[-1], b, size * 4
        return end

    def _trail_ref(self, A, st, lf, i) -> float:
        tp = st.tp_price
        if self.long:
            arm = first_true_index(lambda a, b: A.high[a:b] >= tp, lf + 1, i + 1)
            return float(A.high[arm : i + 1].max())
        arm = first_true_index(lambda a, b: A.low[a:b] <= tp, lf + 1, i + 1)
        return float(A.low[arm : i + 1].min())

    def _sl_timeout(self, A: _Arrays, st, lf: int, start: int, end: int) -> int:
        T = self.params["stop_loss_timeout"]
        sl = st.sl_price
        c = A.close
        start = max(start, lf + T)
        a, size = start, 32
        while a < end:
            b = min(end, a + size)
            lo0 = a - T + 1
            lo = max(lf + 1, lo0)
            seg = c[lo:b] < sl if self.long else c[lo:b] > sl
            x = np.concatenate((np.zeros(lo - lo0, dtype=bool), seg)) if lo > lo0 else seg
            cs = np.concatenate(([0], np.cumsum(x)))
            m = (cs[T:] - cs[: len(cs) - T]) == T
            k = int(m.argmax())
            if m[k]:
                return a + k
            a, size = b, size * 4
        return end

    def _zombie(self, A: _Arrays, st, avg: float, lf: int, start: int, end: int, tf_ms: int) -> tuple[int, int]:
        """``(j, ms_below)``: first candle where the deal has been beyond the zombie threshold for
        ``hours`` (from the open of the run's first candle to the close of ``j``)."""
        thr = self.g_zombie.threshold(avg, self.side)
        c = A.close
        start = max(start, lf + 1)
        if start >= end:
            return end, 0
        # nothing can fire before the first close beyond the threshold
        if self.long:
            start = first_true_index(lambda a, b: c[a:b] < thr, start, end)
        else:
            start = first_true_index(lambda a, b: c[a:b] > thr, start, end)
        if start >= end:
            return end, 0
        # last index before `start` (and after lf) where the deal was NOT beyond the threshold
        if start > lf + 1:
            seg = c[lf + 1 : start] < thr if self.long else c[lf + 1 : start] > thr
            nz = np.flatnonzero(~seg)
            last_ok = lf + 1 + int(nz[-1]) if len(nz) else lf
        else:
            last_ok = lf
        return self._zombie_scan(A, thr, start, end, last_ok, tf_ms)[:2]

    def _scan(self, symbol: str, rule: str, deal_id: str, lf: int, avg: float, aux: int = 0) -> _Scan:
        sc = self._scans.get((symbol, rule))
        if sc is None or sc.lf != lf or sc.avg != avg or sc.deal_id != deal_id:
            sc = self._scans[(symbol, rule)] = _Scan(deal_id, lf, avg, aux)
        return sc

    def _zombie_first(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int, tf_ms: int) -> int:
        """Same answer as ``_zombie(...)[0]``, from the deal's cached search (see :class:`_Scan`)."""
        sc = self._scan(symbol, "zombie", st.deal_id, lf, avg, lf)
        if sc.hit >= 0:
            if sc.hit >= start:
                return sc.hit if sc.hit < end else end
            return self._zombie(A, st, avg, lf, start, end, tf_ms)[0]
        if end <= sc.hi:
            return end
        if start > sc.hi:  # a range the cache never covered: search it plainly
            return self._zombie(A, st, avg, lf, start, end, tf_ms)[0]
        j, _, last_ok = self._zombie_scan(A, self.g_zombie.threshold(avg, self.side), sc.hi, end, sc.aux, tf_ms)
        if j < end:
            sc.hit = j
        else:
            sc.hi, sc.aux = end, last_ok
        return j

    def _zombie_scan(self, A: _Arrays, thr: float, a: int, end: int, last_ok: int, tf_ms: int) -> tuple[int, int, int]:
        """First zombie candle in ``[a, end)`` given ``last_ok`` (the last candle before ``a`` not
        beyond the threshold); returns ``(j or end, ms below the threshold at j or 0, last_ok
        at end)``."""
        need = int(round(self.g_zombie.hours * HOUR_MS))
        c, t = A.close, A.time
        if last_ok == a - 1:  # nothing fires before the first close beyond the threshold
            if self.long:
                a2 = first_true_index(lambda x, y: c[x:y] < thr, a, end)
            else:
                a2 = first_true_index(lambda x, y: c[x:y] > thr, a, end)
            if a2 >= end:
                return end, 0, end - 1
            last_ok, a = a2 - 1, a2
        size = 32
        n1 = len(t) - 1
        while a < end:
            b = min(end, a + size)
            u = c[a:b] < thr if self.long else c[a:b] > thr
            lastf = np.maximum.accumulate(np.where(~u, np.arange(a, b), last_ok))
            dur = t[a:b] + tf_ms - t[np.minimum(lastf + 1, n1)]
            m = u & (dur >= need)
            k = int(m.argmax())
            if m[k]:
                return a + k, int(dur[k]), last_ok
            last_ok = int(lastf[-1])
            a, size = b, size * 4
        return end, 0, last_ok

    def _safu_first(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int) -> int:
        """Same answer as :meth:`_safu`, from the deal's cached search when the scorer is
        vectorized (``exit_factors``)."""
        if A.safu_f is None:
            return self._safu(symbol, A, st, avg, lf, start, end)
        sc = self._scan(symbol, "safu", st.deal_id, lf, avg)
        if sc.hit >= 0:
            if sc.hit >= start:
                return sc.hit if sc.hit < end else end
            return self._safu(symbol, A, st, avg, lf, start, end)
        if end <= sc.hi:
            return end
        if start > sc.hi:
            return self._safu(symbol, A, st, avg, lf, start, end)
        j = self._safu(symbol, A, st, avg, lf, sc.hi, end)
        if j < end:
            sc.hit = j
        else:
            sc.hi = end
        return j

    def _safu(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int) -> int:
        thr = self.g_safu.threshold
        start = max(start, lf + 1)
        if A.safu_f is not None:
            f, c = A.safu_f, A.close
            if self.long:
                return first_true_index(lambda a, b: c[a:b] <= avg * f[a:b], start, end)
            return first_true_index(lambda a, b: c[a:b] >= avg * f[a:b], start, end)
        if not hasattr(self.exit_scorer, "series"):
            return start if start < end else end
        return first_true_index(
            lambda a, b: self.exit_scorer.series(symbol, A.c, self.side, avg, a, b) >= thr, start, end
        )
