"""The :class:`SmartDCA` strategy (registered as ``smart_dca``): parameters check, causal
arrays, state, deal view, the per-candle flow (fills, exits, ladder, entries) and skipping.

The ladder, exits and manual commands live in sibling mixins (:mod:`.ladder`, :mod:`.exits`,
:mod:`.commands`); the package doc describes the strategy. Pure numpy + TA-Lib (no Django).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import talib

from strategies.base import BaseStrategy
from strategies.engine.orders import OrderIntent, OrderStatus, OrderType, Side
from strategies.engine.types import Outcome
from strategies.registry import register

from ..confidence import RuleConfidence, RuleExitScorer, bind_feed
from ..guards import (
    BtcMarketFilter,
    ConfidenceDcaGuard,
    SafuExit,
    SpendGuard,
    StepRepeatGuard,
    TrailingStepGuard,
    ZombieTag,
    guard_params,
)
from .commands import DcaCommandsMixin
from .exits import DcaExitsMixin
from .formulas import deal_take_profit_price, so_deviations, so_sizes, take_profit_price
from .ladder import DcaLadderMixin
from .params import _CORE_PARAMS
from .start import fork_signal_mask
from .state import DcaState, DcaSymbolState, _Arrays, _Scan

__all__ = ["SmartDCA"]


@register
class SmartDCA(DcaCommandsMixin, DcaExitsMixin, DcaLadderMixin, BaseStrategy):
    """Smart DCA: base order + safety-order ladder + take profit, with Market7 guards."""

    name = "smart_dca"
    title = "Smart DCA"
    description = "3Commas-style DCA bot (long/short) with confidence, spend, zombie, BTC-filter and SAFU guards."
    PARAMS = _CORE_PARAMS + tuple(guard_params())
    State = DcaState

    def __init__(
        self, params: dict[str, Any] | None = None, confidence_provider=None, exit_scorer=None, spend_model=None
    ) -> None:
        """``confidence_provider`` / ``exit_scorer`` replace the rule-based confidence and SAFU
        exit score; ``spend_model`` (a :class:`~strategies.library.confidence.SpendModel`)
        lowers the spend guard's cap (only with ``spend_guard_enabled``). None: the rules."""
        super().__init__(params)
        p = self.params
        self.long = p["direction"] == "long"
        self.side = "long" if self.long else "short"
        self.entry_side = Side.BUY if self.long else Side.SELL
        self.exit_side = Side.SELL if self.long else Side.BUY
        self.g_conf = ConfidenceDcaGuard.from_params(p)
        self.g_step = StepRepeatGuard.from_params(p)
        self.g_trail = TrailingStepGuard.from_params(p)
        self.g_spend = SpendGuard.from_params(p)
        self.g_zombie = ZombieTag.from_params(p)
        self.g_btc = BtcMarketFilter.from_params(p)
        self.g_safu = SafuExit.from_params(p)
        self.confidence_provider = confidence_provider or RuleConfidence(self.side)
        self.exit_scorer = exit_scorer or RuleExitScorer(p["safu_drawdown_ref_pct"])
        self.spend_model = spend_model
        self._feed = None
        self._arrays: dict[str, _Arrays] = {}
        self._btc_series: dict[str, np.ndarray] | None = None
        self._waiting: set[str] = set()
        self._scans: dict[tuple[str, str], _Scan] = {}
        self.budget = p["base_order_size"] + sum(
            so_sizes(p["safety_order_size"], p["volume_scale"], p["max_safety_orders"])
        )

    @classmethod
    def check_params(cls, p: dict[str, Any]) -> dict[str, str]:
        errors = {}
        sc = p["start_condition"]
        if sc not in ("asap", "rsi", "fork_signal") and not sc.startswith("strategy:"):
            errors["start_condition"] = 'must be "asap", "rsi", "fork_signal" or "strategy:<name>"'
        elif sc.startswith("strategy:"):
            from strategies.registry import StrategyNotFound, get_strategy

            name = sc.split(":", 1)[1]
            if name == cls.name:
                errors["start_condition"] = "smart_dca cannot start on its own signal"
            else:
                try:
                    get_strategy(name)
                except StrategyNotFound as e:
                    errors["start_condition"] = str(e)
        if p["direction"] == "long" and p["stop_loss"] >= 100:
            errors["stop_loss"] = "must be < 100% for long deals"
        if p["direction"] == "long" and p["max_safety_orders"] > 0:
            d = so_deviations(p["price_deviation"], p["step_scale"], p["max_safety_orders"])[-1]
            if d >= 100:
                errors["max_safety_orders"] = f"the last safety order would be {d:.1f}% below the base order (>= 100%)"
        return errors

    # -- preparation ----------------------------------------------------------------------
    def prepare(self, feed) -> None:
        """Reset the per-feed cache; arrays are computed lazily per symbol (causal TA-Lib)."""
        if feed is not self._feed:
            self._feed = feed
            self._arrays = {}
            self._btc_series = None
        self._waiting = set()
        self._scans: dict[tuple[str, str], _Scan] = {}

    def _arr(self, feed, symbol: str) -> _Arrays:
        A = self._arrays.get(symbol)
        if A is not None:
            return A
        p = self.params
        c = feed.candles(symbol)
        n = len(c)
        A = _Arrays()
        A.tpos = {}
        A.c, A.time, A.high, A.low, A.close = c, c.time, c.high, c.low, c.close
        sc = p["start_condition"]
        if sc == "asap":
            sig = np.ones(n, dtype=bool)
        elif sc == "rsi":
            rsi = talib.RSI(c.close, p["rsi_period"]) if n > p["rsi_period"] else np.full(n, np.nan)
            with np.errstate(invalid="ignore"):
                sig = rsi < p["rsi_below"] if self.long else rsi > p["rsi_above"]
        elif sc == "fork_signal":
            sig = fork_signal_mask(feed, symbol, n) if self.long else np.zeros(n, dtype=bool)
        else:
            from strategies.registry import get_strategy

            other = get_strategy(sc.split(":", 1)[1])()
            other.prepare(feed)
            sig = np.asarray(other.entry_signals(c, symbol), dtype=bool)
        A.btc = None
        block = np.zeros(n, dtype=bool)
        if self.g_btc is not None:
            bsym = self.g_btc.symbol
            if bsym not in feed:
                raise KeyError(f"btc_market_filter needs {bsym} candles in the feed")
            b = feed.candles(bsym)
            ser = self._btc_series
            if ser is None:  # one BTC series per feed, shared by every symbol
                ser = self._btc_series = self.g_btc.series(b, self.side, feed.tf_ms)
            j = np.searchsorted(b.time, c.time, side="right") - 1
            ok = j >= 0
            jj = np.maximum(j, 0)
            block = ser["block"][jj] & ok
            A.btc = {
                "block": block,
                "close": np.where(ok, ser["close"][jj], np.nan),
                "ema": np.where(ok, ser["ema"][jj], np.nan),
                "change": np.where(ok, ser["change"][jj], np.nan),
            }
        A.sig = sig
        A.entry_idx = np.flatnonzero(sig)
        A.entry_ok_idx = np.flatnonzero(sig & ~block)
        A.conf = None
        if self.g_conf is not None and hasattr(self.confidence_provider, "series"):
            bind_feed(self.confidence_provider, feed)
            A.conf = np.asarray(self.confidence_provider.series(symbol, c), dtype=np.float64)
        if self.g_conf is not None and A.conf is None:
            A.gate = None
        else:
            gate = ~block
            if A.conf is not None:
                gate = gate & (A.conf >= self.g_conf.threshold)
            A.gate = gate
            A.gate_true_idx = np.flatnonzero(gate)
            A.gate_false_idx = np.flatnonzero(~gate)
        A.safu_f = None
        if self.g_safu is not None and hasattr(self.exit_scorer, "exit_factors"):
            A.safu_f = self.exit_scorer.exit_factors(c, self.side, self.g_safu.threshold)
        A.atr_pct = None
        if self.g_trail is not None and self.g_trail.mode == "atr":
            A.atr_pct = self.g_trail.atr_pct(c.high, c.low, c.close)
        self._arrays[symbol] = A
        return A

    # -- state ----------------------------------------------------------------------------
    def initial_state(self) -> DcaState:
        return DcaState()

    def state_from_dict(self, d):
        return DcaState.from_dict(d) if d else DcaState()

    def deal_info(self, state: DcaState, symbol: str) -> dict[str, Any]:
        st = state.symbols.get(symbol)
        if st is None or st.phase == "idle":
            return {}
        p = self.params
        n_max = p["max_safety_orders"]
        planned = list(st.levels)
        if len(planned) < n_max and st.base_price:
            sign = -1.0 if self.long else 1.0
            cum = st.cum_dev
            for k in range(len(planned), n_max):
                cum = cum + p["price_deviation"] * p["step_scale"] ** k
                planned.append(st.base_price * (1.0 + sign * cum / 100.0))
        sizes = so_sizes(p["safety_order_size"], p["volume_scale"], n_max)
        ladder = [
            {
                "so_index": k + 1,
                "price": planned[k],
                "quote": sizes[k],
                "status": "filled" if k < st.so_filled else "planned",
            }
            for k in range(n_max)
        ]
        ladder += [
            {
                "so_index": f"M{k + 1}",
                "price": m["price"],
                "quote": m["price"] * m["amount"],
                "status": "filled",
                "manual": True,
            }
            for k, m in enumerate(st.manual)
        ]
        return {
            "phase": st.phase,
            "base_price": st.base_price,
            "max_safety_orders": n_max,
            "take_profit_price": st.tp_price,
            "stop_loss_price": st.sl_price or None,
            "next_so_price": planned[st.so_filled] if st.so_filled < n_max and planned else None,
            "ladder": ladder,
            "zombie": st.zombie,
            "held_by": st.held_rule if st.held else "",
        }

    # -- per candle -----------------------------------------------------------------------
    def on_candle(self, ctx) -> None:
        s = ctx.symbol
        state: DcaState = ctx.state
        st = state.symbols.get(s)
        if st is None:
            st = state.symbols[s] = DcaSymbolState()
        A = self._arrays.get(s) or self._arr(ctx.feed, s)
        self._waiting.discard(s)
        refresh = False
        for f in ctx.fills:
            if f.tag == "base_order":
                st.phase = "active"
                st.base_price = f.price
                st.base_cost = f.price * f.amount
                st.last_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
            elif f.tag == "safety_order":
                st.so_filled += 1
                st.filled_prices.append(f.price)
                st.last_fill_time = ctx.time
                st.last_so_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
            elif f.tag == "manual_safety_order":
                st.manual.append({"time": ctx.time, "price": f.price, "amount": f.amount})
                st.last_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
        pos = ctx.position
        if st.phase in ("active", "closing") and pos.amount == 0.0:
            self._end_deal(ctx, st, state)
        elif st.phase == "opening" and not any(o.tag == "base_order" for o in ctx.orders) and pos.amount == 0.0:
            self._end_deal(ctx, st, state)
        if st.phase == "active":
            if refresh:
                st.ladder_stop_at = 0
                self._refresh_exits(ctx, st)
            if ctx.i > self._idx(A, st.last_fill_time):
                if self._check_exits(ctx, st, A):
                    return None
            if not st.stop_averaging:
                self._sync_ladder(ctx, st, A)
        if st.phase == "idle":
            self._try_entry(ctx, st, state, A)
        return None

    @staticmethod
    def _idx(A: _Arrays, t: int) -> int:
        """Index of the candle opening at ``t`` (memoized: deal times are looked up often)."""
        i = A.tpos.get(t)
        if i is None:
            if len(A.tpos) > 4096:
                A.tpos.clear()
            i = A.tpos[t] = int(A.time.searchsorted(t))
        return i

    def _end_deal(self, ctx, st: DcaSymbolState, state: DcaState) -> None:
        for o in list(ctx.orders):
            if o.deal_id == st.deal_id:
                ctx.cancel(o, "deal_closed")
        p = self.params
        cd = p["cooldown"]
        until = ctx.close_time + (int(cd * ctx.feed.tf_ms) if p["cooldown_unit"] == "candles" else int(cd * 1000))
        st.__dict__.update(DcaSymbolState(cooldown_until=until).__dict__)
        state.active_deals -= 1
        ctx.notify("slot")

    def _refresh_exits(self, ctx, st: DcaSymbolState) -> None:
        p = self.params
        m = ctx.market
        pos = ctx.position
        avg, amt = pos.entry_price, abs(pos.amount)
        if st.tp_pct is not None:
            tp = take_profit_price(avg, st.tp_pct, self.side)
        else:
            deal = ctx.portfolio.deals[st.deal_id]
            tp = deal_take_profit_price(
                p["take_profit"],
                self.side,
                tp_type=p["tp_type"],
                avg_entry=avg,
                entry_cost=deal.entry_cost,
                base_cost=st.base_cost,
                amount=amt,
            )
        st.tp_price = m.round_price(tp)
        for o in list(ctx.orders):
            if o.tag in ("take_profit", "stop_loss") and o.deal_id == st.deal_id:
                ctx.cancel(o, "replaced")
        if not p["trailing_enabled"]:
            ctx.place(
                OrderIntent(
                    ctx.symbol,
                    self.exit_side,
                    OrderType.LIMIT,
                    amount=amt,
                    price=st.tp_price,
                    tag="take_profit",
                    deal_id=st.deal_id,
                    reduce_only=True,
                )
            )
        sl_pct = self._sl_pct(st)
        if sl_pct > 0:
            sl = avg * (1.0 - sl_pct / 100.0) if self.long else avg * (1.0 + sl_pct / 100.0)
            st.sl_price = m.round_price(sl)
            if p["stop_loss_timeout"] == 0:
                ctx.place(
                    OrderIntent(
                        ctx.symbol,
                        self.exit_side,
                        OrderType.STOP,
                        amount=amt,
                        stop_price=st.sl_price,
                        tag="stop_loss",
                        deal_id=st.deal_id,
                        reduce_only=True,
                    )
                )
        else:
            st.sl_price = 0.0

    def _sl_pct(self, st: DcaSymbolState) -> float:
        """This deal's stop loss in % from the average entry (a manual ``set_exits`` wins)."""
        return self.params["stop_loss"] if st.sl_pct is None else st.sl_pct

    # -- entries --------------------------------------------------------------------------
    def _try_entry(self, ctx, st: DcaSymbolState, state: DcaState, A: _Arrays) -> None:
        p = self.params
        i = ctx.i
        if ctx.close_time < st.cooldown_until:
            return
        if state.active_deals >= p["max_active_deals"]:
            self._waiting.add(ctx.symbol)
            ctx.wait_for("slot")
            return
        if not A.sig[i]:
            return
        self._open_deal(ctx, st, state, A)

    def _open_deal(self, ctx, st: DcaSymbolState, state: DcaState, A: _Arrays, forced: bool = False) -> str:
        """Open a deal on candle ``ctx.i`` through the BTC market filter, the funds check, the
        portfolio risk check and the base order (market, ``base_order_size`` quote). Returns ""
        when the base order is placed, else why not. A repeated block on later candles is
        recorded once (``st.entry_blocked``) unless ``forced`` (an outside ``start_deal``)."""
        p = self.params
        i = ctx.i
        if self.g_btc is not None and A.btc["block"][i]:
            if st.entry_blocked == "btc" and not forced:
                return "BTC market filter blocks new deals"
            d = self._btc_decision(ctx, A, "new deal")
            st.entry_blocked = "btc"
            ctx.record(d)
            return d.reason
        quote = p["base_order_size"]
        m = ctx.market
        if m.market_type == "swap":  # a perpetual, long or short: initial margin + taker fee (broker's rule)
            need = quote * (1.0 / m.leverage + m.taker_fee_bps / 1e4)
        else:
            need = quote * (1.0 + m.taker_fee_bps / 1e4) if self.long else quote
        free = ctx.free()
        if need > free:
            why = f"insufficient funds: base order needs {need:.2f}, free {free:.2f}; new deal blocked"
            if st.entry_blocked != "funds" or forced:
                st.entry_blocked = "funds"
                ctx.decide("smart_dca", Outcome.BLOCK, why)
            return why
        close = float(A.close[i])
        stop = None
        if p["stop_loss"] > 0:
            stop = close * (1.0 - p["stop_loss"] / 100.0) if self.long else close * (1.0 + p["stop_loss"] / 100.0)
        conf = float(A.conf[i]) if A.conf is not None else None
        approved, quote = ctx.check_entry(self.side, quote, close, stop, conf)
        if not approved:
            return "the portfolio risk rules refused the new deal"
        deal_id = ctx.new_deal_id()
        o = ctx.place(
            OrderIntent(
                ctx.symbol, self.entry_side, OrderType.MARKET, quote_amount=quote, tag="base_order", deal_id=deal_id
            )
        )
        if o.status == OrderStatus.REJECTED:
            ctx.decide("smart_dca", Outcome.BLOCK, f"base order rejected: {o.reject_reason}")
            return f"base order rejected: {o.reject_reason}"
        st.phase = "opening"
        st.deal_id = deal_id
        st.entry_blocked = ""
        state.active_deals += 1
        if state.active_deals >= p["max_active_deals"]:
            ctx.recall("slot")  # the others woken by the freed slot would only wait again
        return ""

    # -- skipping -------------------------------------------------------------------------
    def next_wake(self, ctx) -> int | None:
        s = ctx.symbol
        st = ctx.state.symbols.get(s)
        A = self._arrays.get(s) or self._arr(ctx.feed, s)
        i, end = ctx.i, ctx.end
        if st is None or st.phase == "idle":
            if s in self._waiting:
                return None
            start = i + 1
            if st is not None and st.cooldown_until:
                start = max(start, int(A.time.searchsorted(st.cooldown_until - ctx.feed.tf_ms)))
            idx = A.entry_ok_idx if (st is not None and st.entry_blocked == "btc") else A.entry_idx
            k = int(idx.searchsorted(start))
            return int(idx[k]) if k < len(idx) else None
        if st.phase != "active":
            return None  # waiting for the base / close market order: the broker wakes us
        p = self.params
        lf = self._idx(A, st.last_fill_time)
        start = max(i + 1, lf + 1)
        best = end
        if p["trailing_enabled"]:
            best = min(best, self._trail_exit(A, st, lf, start, best))
        if st.sl_price > 0 and p["stop_loss_timeout"] > 0:
            best = min(best, self._sl_timeout(A, st, lf, start, best))
        avg = ctx.position.entry_price
        if self.g_zombie is not None and not st.zombie:
            best = min(best, self._zombie_first(s, A, st, avg, lf, start, best, ctx.feed.tf_ms))
        if self.g_safu is not None:
            best = min(best, self._safu_first(s, A, st, avg, lf, start, best))
        if not st.stop_averaging and st.so_filled < p["max_safety_orders"]:
            if self.g_btc is not None or self.g_conf is not None:
                if A.gate is None:
                    best = min(best, i + 1)
                else:
                    idx = A.gate_true_idx if st.held == "gate" else A.gate_false_idx
                    k = int(idx.searchsorted(i + 1))
                    if k < len(idx):
                        best = min(best, int(idx[k]))
            if st.held == "step_repeat" and self.g_step is not None:
                best = min(best, self._idx(A, st.last_so_fill_time) + self.g_step.min_candles)
        return best if best < end else None
