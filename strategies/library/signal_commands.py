"""``start_deal`` for the signal strategies: an outside signal (the scanner, a TradingView alert)
opens a deal now, with an exit plan from the strategy's own rules.

Pure numpy + TA-Lib (no Django). :class:`SignalCommandsMixin` gives
:class:`~strategies.library.signal_strategy.SignalStrategy` its ``on_command`` (see
:mod:`strategies.engine.commands` for the command's shape and the engine's own checks). The
entry goes through the strategy's one entry path (``_enter``: the portfolio risk check, a market
order of ``base_order_size`` quote at the next open, the exits placed when it fills), with

1. the detector's own signal on this candle when it has one on that side (its entry, stop
   loss, take profit, trailing stop, range exit or DCA grid), else
2. the strategy's rule-based exits from the close ``c`` of this candle (:data:`EXIT_RULES`):

   * ``fork_score``: SL = c − ``atr_sl_mult``·ATR(``atr_period``), TP = c + ``atr_tp_mult``·ATR
     (its ATR fallback when there is no swing);
   * ``scalping``: SL = c ∓ ``atr_sl_mult``·ATR(``atr_period``) (or ``sl_pct`` % of c), TP at
     ``reward_risk`` × that distance (or ``tp_pct`` %) — upper sign long;
   * ``dca_detector``: TP ``take_profit_pct`` % and SL ``stop_loss_pct`` % from the actual
     average entry;
   * ``swing``: TP ``take_profit_pct`` %, SL ``stop_loss_pct`` % from c, trailing stop
     ``trailing_stop_pct`` %;
   * ``channel``: none (its exits need a detected range) — refused with ``no exit plan``, as is
     any plan whose ATR is not defined yet (warm-up).

Sides: ``fork_score``, ``dca_detector`` and ``swing`` trade longs; ``scalping`` both;
``channel`` longs, and shorts when ``allow_short``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from strategies.base import CommandRefused
from strategies.engine.types import Outcome
from strategies.indicators import batch as ind
from strategies.signals import Signal
from strategies.signals.base import rrr

from .confidence import SignalConfidence

__all__ = ["EXIT_RULES", "SignalCommandsMixin"]

Plan = dict[str, Any]  # {"stop_loss": float, "take_profit": float | None, "extra": {...}}


def _atr(candles, i: int, period: int) -> float | None:
    if i + 1 <= period:
        return None
    a = ind.atr(candles.high[: i + 1], candles.low[: i + 1], candles.close[: i + 1], period)
    x = float(a[-1])
    return x if np.isfinite(x) and x > 0 else None


def _fork(p, candles, i, side) -> Plan | None:
    atr = _atr(candles, i, p["atr_period"])
    if atr is None:
        return None
    c = float(candles.close[i])
    tp = c + p["atr_tp_mult"] * atr if p["atr_tp_mult"] > 0 else None
    return {"stop_loss": c - p["atr_sl_mult"] * atr, "take_profit": tp, "extra": {}}


def _scalping(p, candles, i, side) -> Plan | None:
    c = float(candles.close[i])
    if p["sl_pct"] > 0:
        dist = c * p["sl_pct"] / 100.0
    else:
        atr = _atr(candles, i, p["atr_period"])
        if atr is None:
            return None
        dist = p["atr_sl_mult"] * atr
    tp_dist = c * p["tp_pct"] / 100.0 if p["tp_pct"] > 0 else p["reward_risk"] * dist
    d = 1.0 if side == "long" else -1.0
    return {"stop_loss": c - d * dist, "take_profit": c + d * tp_dist, "extra": {}}


def _dca(p, candles, i, side) -> Plan:
    c = float(candles.close[i])
    tp, sl = p["take_profit_pct"], p["stop_loss_pct"]
    return {
        "stop_loss": c * (1.0 - sl / 100.0),
        "take_profit": c * (1.0 + tp / 100.0),
        "extra": {"take_profit_pct": tp, "stop_loss_pct": sl},
    }


def _swing(p, candles, i, side) -> Plan:
    c = float(candles.close[i])
    return {
        "stop_loss": c * (1.0 - p["stop_loss_pct"] / 100.0),
        "take_profit": c * (1.0 + p["take_profit_pct"] / 100.0),
        "extra": {"trailing_stop_pct": p["trailing_stop_pct"]},
    }


EXIT_RULES: dict[str, Callable[..., Plan | None]] = {
    "fork_score": _fork,
    "scalping": _scalping,
    "dca_detector": _dca,
    "swing": _swing,
}


class SignalCommandsMixin:
    """``on_command`` of the signal strategies: ``start_deal`` (module doc)."""

    def sides(self) -> tuple[str, ...]:
        """The sides this strategy trades."""
        if self.name == "scalping":
            return ("long", "short")
        if self.name == "channel" and self.params.get("allow_short"):
            return ("long", "short")
        return ("long",)

    def on_command(self, state, command: dict[str, Any], ctx) -> None:
        """``start_deal`` on ``ctx.symbol`` (see the module doc); :class:`CommandRefused` for
        another command, a side it does not trade, a deal open or entering on the symbol,
        ``max_active_deals`` reached, ``no exit plan``, or an entry the risk check refused."""
        cmd = command.get("cmd")
        if cmd != "start_deal":
            raise CommandRefused(f"strategy {self.name!r} does not support {cmd!r}")
        side = command.get("side")
        if side not in self.sides():
            raise CommandRefused(f"{self.name} trades {' and '.join(self.sides())} only, not {side}")
        st = state.symbols.get(ctx.symbol)
        if st is None:
            st = state.symbols[ctx.symbol] = self._new_deal_state()
        if st.phase != "idle":
            raise CommandRefused(f"a deal is already open on {ctx.symbol} ({st.deal_id}, {st.phase})")
        mx = self.params["max_active_deals"]
        if state.active() >= mx:
            raise CommandRefused(f"{state.active()} deals active (max active deals {mx})")
        sig = self._command_signal(ctx, side, command)
        if sig is None:
            raise CommandRefused(
                f"no exit plan: {self.name} has no {side} signal on this candle and no rule-based stop for it"
            )
        score = command.get("score")
        conf = SignalConfidence(float(score), str(command.get("source") or "manual")) if score is not None else None
        self._enter(ctx, st, sig, conf=conf, outside=True)
        if st.phase == "idle":
            raise CommandRefused("the entry was refused (portfolio risk check or order rejected)")
        ctx.decide(
            "start_deal",
            Outcome.INFO,
            f"start {side} deal {st.deal_id} on a {command.get('source') or 'manual'} signal"
            f"{'' if score is None else f' (score {score:.2f})'}: exits from "
            f"{'the detector signal' if sig.extra.get('detector') else 'the strategy rules'}",
            {"deal_id": st.deal_id, "signal_time": command.get("signal_time")},
        )

    def _new_deal_state(self):
        from .signal_strategy import SymbolDeal

        return SymbolDeal()

    def _command_signal(self, ctx, side: str, command: dict[str, Any]) -> Signal | None:
        """The detector's signal on candle ``ctx.i`` on ``side`` (flagged ``extra["detector"]``),
        else one built from :data:`EXIT_RULES` at the close, or None (no exit plan)."""
        own = self._signals(ctx.feed, ctx.symbol)[0].get(ctx.i)
        if own is not None and own.side == side:
            return replace(own, extra={**own.extra, "detector": True})
        rule = EXIT_RULES.get(self.name)
        plan = rule(self.params, ctx.candles, ctx.i, side) if rule is not None else None
        if plan is None:
            return None
        c = ctx.close
        sl, tp = plan["stop_loss"], plan["take_profit"]
        long = side == "long"
        if not (sl < c if long else sl > c) or (tp is not None and not (tp > c if long else tp < c)):
            return None
        src = command.get("source") or "manual"
        why = f"{src} signal" + (f" ({command['reason']})" if command.get("reason") else "")
        score = command.get("score")
        return Signal(
            symbol=ctx.symbol,
            timeframe=ctx.feed.timeframe,
            time=ctx.time,
            strategy=self.name,
            side=side,
            score=float(score) if score is not None else 0.0,
            components={},
            entry=c,
            stop_loss=sl,
            take_profit=tp,
            rrr=rrr(c, sl, tp),
            reason=why,
            extra=plan["extra"],
        )
