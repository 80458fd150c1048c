"""Smart DCA's safety-order ladder: placing the next safety orders, and holding / widening /
blocking them through the BTC filter, confidence, step-repeat, trailing-step and spend guards.

:class:`DcaLadderMixin` holds it for :class:`SmartDCA`. Prices quote, deviations percent.
Pure Python (no Django).
"""

from __future__ import annotations

from strategies.engine.orders import OrderIntent, OrderStatus, OrderType
from strategies.engine.types import Decision, Outcome

from ..guards import BtcMarketFilter, ConfidenceDcaGuard
from .state import DcaSymbolState, _Arrays

__all__ = ["DcaLadderMixin"]


class DcaLadderMixin:
    """:class:`~strategies.library.smart_dca.SmartDCA`'s safety-order ladder."""

    def _gate_rule(self, ctx, A: _Arrays) -> tuple[str, float]:
        """``(rule, confidence)``: the gate rule holding safety orders at ``ctx.i`` (``""`` when
        none). Cheap; the Decision is built by :meth:`_gate_decision` only when recorded (the
        gate's ALLOW is never recorded: it is looked at on every candle of the naive loop)."""
        i = ctx.i
        if self.g_btc is not None and A.btc["block"][i]:
            return BtcMarketFilter.NAME, 0.0
        if self.g_conf is not None:
            cval = (
                float(A.conf[i]) if A.conf is not None else float(self.confidence_provider.confidence(ctx.symbol, ctx))
            )
            if self.g_conf.blocks(cval):
                return ConfidenceDcaGuard.NAME, cval
        return "", 0.0

    def _btc_decision(self, ctx, A: _Arrays, what: str) -> Decision:
        """The BTC market filter's blocking decision at candle ``ctx.i`` for ``what``."""
        i = ctx.i
        return self.g_btc.check(
            ctx.time,
            ctx.symbol,
            self.side,
            True,
            float(A.btc["close"][i]),
            float(A.btc["ema"][i]),
            float(A.btc["change"][i]),
            what,
        )

    def _gate_decision(self, ctx, A: _Arrays, rule: str, cval: float, n: int) -> Decision:
        if rule == BtcMarketFilter.NAME:
            return self._btc_decision(ctx, A, "safety orders")
        return self.g_conf.check(ctx.time, ctx.symbol, cval, n)

    def _hold(self, ctx, st: DcaSymbolState, kind: str, rule: str, decision, resting) -> None:
        """Cancel the resting safety orders; record ``decision()`` when the hold starts."""
        for o in resting:
            ctx.cancel(o, f"{rule}: held")
        if st.held != kind:
            st.held, st.held_rule = kind, rule
            ctx.record(decision())

    def _release(self, ctx, st: DcaSymbolState) -> None:
        if st.held:
            ctx.decide(st.held_rule, Outcome.INFO, "safety orders resumed")
            st.held, st.held_rule = "", ""

    def _sync_ladder(self, ctx, st: DcaSymbolState, A: _Arrays) -> None:
        p = self.params
        max_so = p["max_safety_orders"]
        if st.so_filled >= max_so:
            return
        resting = [o for o in ctx.orders if o.tag == "safety_order"]
        n_next = max([o.so_index for o in resting] + [st.so_filled]) + 1
        if self.g_btc is not None or self.g_conf is not None:
            n = n_next if not resting else min(o.so_index for o in resting)
            rule, cval = self._gate_rule(ctx, A)
            if rule:
                self._hold(ctx, st, "gate", rule, lambda: self._gate_decision(ctx, A, rule, cval, n), resting)
                return
            if st.held == "gate":
                self._release(ctx, st)
        since = None
        if self.g_step is not None and st.last_so_fill_time >= 0:
            since = ctx.i - self._idx(A, st.last_so_fill_time)
            if since < self.g_step.min_candles:
                g_step = self.g_step
                self._hold(
                    ctx,
                    st,
                    "step_repeat",
                    g_step.NAME,
                    lambda: g_step.check(ctx.time, ctx.symbol, n_next, since),
                    resting,
                )
                return
        if st.held == "step_repeat":
            self._release(ctx, st)
        max_rest = 1 if self.g_step is not None else p["active_safety_orders"]
        m = ctx.market
        while len(resting) < max_rest and n_next <= max_so:
            if st.ladder_stop_at and n_next >= st.ladder_stop_at:
                return
            price = self._level_price(ctx, st, A, n_next)
            if price is None:
                st.ladder_stop_at = n_next
                return
            quote = p["safety_order_size"] * p["volume_scale"] ** (n_next - 1)
            if self.g_step is not None:
                args = (n_next, since, st.so_filled, price, st.filled_prices, m.price_tick)
                blocked = self.g_step.blocks(*args)
                if blocked or ctx.record_allow:
                    ctx.record(
                        self.g_step.check(ctx.time, ctx.symbol, *args[:4], tuple(st.filled_prices), m.price_tick)
                    )
                if blocked:
                    st.ladder_stop_at = n_next
                    return
            if self.g_spend is not None:
                if self._spend_check(ctx, st, resting, n_next, price, quote):
                    st.ladder_stop_at = n_next
                    return
            o = ctx.place(
                OrderIntent(
                    ctx.symbol,
                    self.entry_side,
                    OrderType.LIMIT,
                    quote_amount=quote,
                    price=price,
                    tag="safety_order",
                    so_index=n_next,
                    deal_id=st.deal_id,
                )
            )
            if o.status == OrderStatus.REJECTED:
                ctx.decide("smart_dca", Outcome.BLOCK, f"safety order {n_next} rejected: {o.reject_reason}")
                st.ladder_stop_at = n_next
                return
            resting.append(o)
            n_next += 1

    def _level_price(self, ctx, st: DcaSymbolState, A: _Arrays, n: int) -> float | None:
        if n <= len(st.levels):
            return st.levels[n - 1]
        p = self.params
        step = p["price_deviation"] * p["step_scale"] ** (n - 1)
        if self.g_trail is not None:
            close = float(A.close[ctx.i])
            lfp = st.last_fill_price
            move = ((lfp - close) / lfp * 100.0 if self.long else (close - lfp) / lfp * 100.0) if lfp else 0.0
            atr = float(A.atr_pct[ctx.i]) if A.atr_pct is not None else 0.0
            if self.g_trail.widened(step, atr, move) > step or ctx.record_allow:
                step, d = self.g_trail.widen(ctx.time, ctx.symbol, n, step, atr, move)
                ctx.record(d)
        cum = st.cum_dev + step
        raw = st.base_price * (1.0 - cum / 100.0) if self.long else st.base_price * (1.0 + cum / 100.0)
        if raw <= 0:
            return None
        price = ctx.market.round_price(raw)
        if price <= 0:
            return None
        st.levels.append(price)
        st.cum_dev = cum
        return price

    def _spend_check(self, ctx, st: DcaSymbolState, resting, n: int, price: float, quote: float) -> bool:
        """Run the spend guard for safety order ``n``; record its decision; True when it blocks."""
        deal = ctx.portfolio.deals[st.deal_id]
        cost = deal.entry_cost + sum(o.amount * o.price for o in resting)
        amount = deal.entry_amount + sum(o.amount for o in resting)
        avg = cost / amount if amount else price
        dd = (avg - price) / avg * 100.0 if self.long else (price - avg) / avg * 100.0
        basis = self.budget if self.g_spend.basis == "budget" else ctx.equity()
        model_cap, model = None, ""
        if self.spend_model is not None:
            # the model's predicted total spend (fraction of the budget) plus its margin, in
            # percent of the guard's basis; None (no prediction / failed): the rule alone
            frac = self.spend_model.spend_fraction(ctx.symbol, ctx, self._snapshot(ctx, st))
            if frac is not None and basis > 0:
                model_cap = float(frac) * (1.0 + self.spend_model.margin) * self.budget / basis * 100.0
                model = str(getattr(self.spend_model, "last_source", "") or "spend model")
                model = f"{model} (predicted spend {float(frac) * 100.0:.1f}% + {self.spend_model.margin * 100.0:g}% margin)"
        blocked = self.g_spend.blocks(cost + quote, basis, dd, model_cap)
        if blocked or ctx.record_allow:
            ctx.record(self.g_spend.check(ctx.time, ctx.symbol, n, cost + quote, basis, dd, model_cap, model))
        return blocked
