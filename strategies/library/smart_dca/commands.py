"""Smart DCA's manual commands from the deal page: ``add_funds`` and ``set_exits``.

:class:`DcaCommandsMixin` holds ``on_command`` and its two handlers for :class:`SmartDCA`
(percent from the average entry; quote currency). Pure Python (no Django).
"""

from __future__ import annotations

from typing import Any

from strategies.base import CommandRefused
from strategies.engine.orders import OrderIntent, OrderStatus, OrderType
from strategies.engine.types import Outcome

from ..guards import fmt
from .formulas import _INF, _quote_ccy
from .state import DcaState, DcaSymbolState

__all__ = ["DcaCommandsMixin"]


class DcaCommandsMixin:
    """:class:`~strategies.library.smart_dca.SmartDCA`'s manual commands (the deal page)."""

    def on_command(self, state: DcaState, command: dict[str, Any], ctx) -> None:
        """``add_funds`` (``quote``: amount in quote currency, > 0) or ``set_exits``
        (``take_profit`` > 0 and/or ``stop_loss`` >= 0, percent from the average entry; a
        missing key keeps the current value) on the open deal ``command["deal_id"]`` (see the
        module doc). Raises :class:`CommandRefused` when the deal is not active on
        ``ctx.symbol``, an argument is out of range, or the order is rejected."""
        cmd = command.get("cmd")
        if cmd == "start_deal":
            self._start_deal(ctx, state, command)
            return
        st = state.symbols.get(ctx.symbol)
        deal_id = command.get("deal_id")
        if st is None or st.deal_id != deal_id or st.phase == "idle":
            raise CommandRefused(f"deal {deal_id} is not an open Smart DCA deal of {ctx.symbol}")
        if st.phase != "active":
            wait = "its base order has not filled yet" if st.phase == "opening" else "it is closing"
            raise CommandRefused(f"deal {deal_id} is {st.phase}: {wait}")
        if cmd == "add_funds":
            self._add_funds(ctx, st, command)
        elif cmd == "set_exits":
            self._set_exits(ctx, st, command)
        else:
            raise CommandRefused(f"Smart DCA does not know the command {cmd!r}")

    def _start_deal(self, ctx, state: DcaState, command: dict[str, Any]) -> None:
        """An outside signal's ``start_deal`` (:mod:`strategies.engine.commands`): open a deal on
        ``ctx.symbol`` now through the strategy's own entry path (:meth:`SmartDCA._open_deal`:
        BTC filter, funds, portfolio risk, base order at the next open) instead of waiting for
        the start condition. Refused (:class:`CommandRefused`) for the other side, a deal or
        pending base order on the symbol, ``max_active_deals`` reached, a cooldown, or a refusal
        of that path."""
        p = self.params
        side = command.get("side")
        if side != self.side:
            raise CommandRefused(f"this Smart DCA bot trades {self.side} deals only (direction {p['direction']})")
        st = state.symbols.get(ctx.symbol)
        if st is None:
            st = state.symbols[ctx.symbol] = DcaSymbolState()
        if st.phase != "idle":
            raise CommandRefused(f"a deal is already open on {ctx.symbol} ({st.deal_id}, {st.phase})")
        if state.active_deals >= p["max_active_deals"]:
            raise CommandRefused(f"{state.active_deals} deals active (max active deals {p['max_active_deals']})")
        if ctx.close_time < st.cooldown_until:
            raise CommandRefused(f"{ctx.symbol} is in its cooldown until {st.cooldown_until} (epoch ms)")
        why = self._open_deal(ctx, st, state, self._arr(ctx.feed, ctx.symbol), forced=True)
        if why:
            raise CommandRefused(why)
        (o,) = [o for o in ctx.orders if o.deal_id == st.deal_id and o.tag == "base_order"]
        score = command.get("score")
        ctx.decide(
            "start_deal",
            Outcome.INFO,
            f"start {self.side} deal {st.deal_id} on a {command.get('source') or 'manual'} signal"
            f"{'' if score is None else f' (score {score:.2f})'}: base order market {self.entry_side} "
            f"{o.amount:g} {ctx.symbol} at the next open (last close {ctx.close:g})"
            f"{'; ' + str(command['reason']) if command.get('reason') else ''}",
            {"deal_id": st.deal_id, "client_order_id": o.client_order_id, "signal_time": command.get("signal_time")},
        )

    def _add_funds(self, ctx, st: DcaSymbolState, command: dict[str, Any]) -> None:
        try:
            quote = float(command.get("quote"))
        except (TypeError, ValueError):
            raise CommandRefused("the amount to add must be a number (quote currency)") from None
        if not quote > 0 or quote == _INF:
            raise CommandRefused(f"the amount to add must be > 0, got {quote:g}")
        o = ctx.place(
            OrderIntent(
                ctx.symbol,
                self.entry_side,
                OrderType.MARKET,
                quote_amount=quote,
                tag="manual_safety_order",
                deal_id=st.deal_id,
            )
        )
        if o.status == OrderStatus.REJECTED:
            raise CommandRefused(f"the order was rejected: {o.reject_reason}")
        ccy = _quote_ccy(ctx.symbol)
        ctx.decide(
            "manual_add_funds",
            Outcome.INFO,
            f"add funds {fmt(quote)} {ccy}: market {self.entry_side} {o.amount:g} {ctx.symbol} at the next open "
            f"(last close {ctx.close:g}); a manual safety order, TP and SL follow the new average",
            {"deal_id": st.deal_id, "quote": quote, "amount": o.amount, "client_order_id": o.client_order_id},
        )

    def _set_exits(self, ctx, st: DcaSymbolState, command: dict[str, Any]) -> None:
        def pct(key: str) -> float | None:
            if command.get(key) is None:
                return None
            try:
                v = float(command[key])
            except (TypeError, ValueError):
                raise CommandRefused(f"{key.replace('_', ' ')} must be a number (percent)") from None
            if v != v or v == _INF:
                raise CommandRefused(f"{key.replace('_', ' ')} must be a finite number")
            return v

        tp, sl = pct("take_profit"), pct("stop_loss")
        if tp is None and sl is None:
            raise CommandRefused("give a take profit or a stop loss (percent from the average entry)")
        if tp is not None and not 0 < tp <= 1000:
            raise CommandRefused(f"take profit must be > 0% and <= 1000% from the average entry, got {fmt(tp)}%")
        if sl is not None and not (0 <= sl < 100 if self.long else 0 <= sl <= 1000):
            limit = "< 100%" if self.long else "<= 1000%"
            raise CommandRefused(
                f"stop loss must be >= 0% (0 = none) and {limit} from the average entry, got {fmt(sl)}%"
            )
        old_tp, old_sl = st.tp_price, st.sl_price
        if tp is not None:
            st.tp_pct = tp
        if sl is not None:
            st.sl_pct = sl
        self._refresh_exits(ctx, st)
        avg = ctx.position.entry_price
        parts = []
        if tp is not None:
            parts.append(f"take profit {old_tp:g} -> {st.tp_price:g} ({fmt(tp)}% from avg {avg:g})")
        if sl is not None:
            now = f"{st.sl_price:g} ({fmt(sl)}% from avg {avg:g})" if st.sl_price else "none"
            parts.append(f"stop loss {old_sl:g} -> {now}" if old_sl else f"stop loss none -> {now}")
        ctx.decide(
            "manual_set_exits",
            Outcome.INFO,
            "; ".join(parts),
            {
                "deal_id": st.deal_id,
                "take_profit_pct": tp,
                "stop_loss_pct": sl,
                "take_profit_price": st.tp_price,
                "stop_loss_price": st.sl_price or None,
            },
        )
