"""Market7 guards for Smart DCA: small named rules that block, resize, tag or exit.

Pure numpy (no Django). Each guard is a class with a ``NAME`` (the rule name recorded in
every :class:`~strategies.engine.types.Decision`), its parameters (``PARAMS``, merged into the
``smart_dca`` schema, each guard with an ``<name>_enabled`` flag) and small methods that
return a ``Decision`` with a reason that carries the numbers, e.g.
``spend_guard: deal spend 41.2% > cap 40%``. The guards are pure functions of their inputs;
:mod:`strategies.library.smart_dca` decides when to call them.

=======================  ==================================================================
guard                    what it does
=======================  ==================================================================
confidence_dca_guard     hold safety orders while the confidence (``ConfidenceProvider``)
                         is below a threshold
step_repeat_guard        never two safety orders at the same step, nor within N candles
trailing_step_guard      widen the next step with ATR or with the move since the last fill
spend_guard              cap a deal's spend by its drawdown: ``cap% = max% - k x drawdown%``
                         (lowered by a ``SpendModel``'s predicted spend when one serves)
zombie_tag               tag a deal stuck > N hours below -X% (keep / stop averaging / close)
btc_market_filter        no new deals / safety orders while BTC is bearish (bullish: shorts)
safu_exit                close a deal when an ``ExitScorer`` score passes a threshold
=======================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import talib

from strategies.base import Param
from strategies.engine.types import Decision, Outcome

from .guards_base import _d, fmt
from .guards_market import BtcMarketFilter, SafuExit, ZombieTag

__all__ = [
    "ConfidenceDcaGuard",
    "StepRepeatGuard",
    "TrailingStepGuard",
    "SpendGuard",
    "ZombieTag",
    "BtcMarketFilter",
    "SafuExit",
    "GUARDS",
    "guard_params",
]


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfidenceDcaGuard:
    """Skip (hold) safety orders while confidence < ``threshold`` (0..1)."""

    threshold: float = 0.4
    NAME = "confidence_dca_guard"
    PARAMS = (
        Param(
            "confidence_dca_guard_enabled",
            "bool",
            False,
            group="guards",
            help="Hold safety orders while confidence is low.",
        ),
        Param(
            "confidence_threshold",
            "float",
            0.4,
            0.0,
            1.0,
            group="guards",
            help="Minimum confidence (0..1) to keep averaging.",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> ConfidenceDcaGuard | None:
        return cls(p["confidence_threshold"]) if p["confidence_dca_guard_enabled"] else None

    def blocks(self, confidence: float) -> bool:
        """True when ``check`` would BLOCK (no Decision built)."""
        return confidence < self.threshold

    def check(self, time: int, symbol: str, confidence: float, so_index: int) -> Decision:
        if confidence < self.threshold:
            return _d(
                self.NAME,
                Outcome.BLOCK,
                f"confidence {confidence:.2f} < threshold {fmt(self.threshold)}; safety order {so_index} held",
                time,
                symbol,
                confidence=confidence,
                threshold=self.threshold,
                so_index=so_index,
            )
        return _d(
            self.NAME,
            Outcome.ALLOW,
            f"confidence {confidence:.2f} >= threshold {fmt(self.threshold)}",
            time,
            symbol,
            confidence=confidence,
            threshold=self.threshold,
            so_index=so_index,
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepRepeatGuard:
    """Never two safety orders at the same step (index already filled, or a price within one
    tick of a filled safety order), nor within ``min_candles`` candles of the last one.
    While on, only the next safety order rests (so two cannot fill in one candle)."""

    min_candles: int = 3
    NAME = "step_repeat_guard"
    PARAMS = (
        Param(
            "step_repeat_guard_enabled",
            "bool",
            False,
            group="guards",
            help="Space safety orders in time; never repeat a step.",
        ),
        Param(
            "step_repeat_min_candles",
            "int",
            3,
            0,
            10_000,
            "candles",
            "Minimum candles between two safety order fills.",
            group="guards",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> StepRepeatGuard | None:
        return cls(p["step_repeat_min_candles"]) if p["step_repeat_guard_enabled"] else None

    def blocks(
        self,
        so_index: int,
        candles_since_last_so: int | None,
        filled_indices: int = 0,
        price: float | None = None,
        filled_prices: tuple[float, ...] | list[float] = (),
        price_tick: float = 0.0,
    ) -> bool:
        """True when :meth:`check` with the same arguments would BLOCK (no Decision built)."""
        if so_index <= filled_indices:
            return True
        if price is not None:
            lim = price_tick * 1.0000001
            for fp in filled_prices:
                if abs(price - fp) <= lim:
                    return True
        return candles_since_last_so is not None and candles_since_last_so < self.min_candles

    def check(
        self,
        time: int,
        symbol: str,
        so_index: int,
        candles_since_last_so: int | None,
        filled_indices: int = 0,
        price: float | None = None,
        filled_prices: tuple[float, ...] = (),
        price_tick: float = 0.0,
    ) -> Decision:
        """``candles_since_last_so``: candles since the last safety order fill (``None``: none yet)."""
        if not self.blocks(so_index, candles_since_last_so, filled_indices, price, filled_prices, price_tick):
            return _d(self.NAME, Outcome.ALLOW, f"safety order {so_index} spacing ok", time, symbol, so_index=so_index)
        if so_index <= filled_indices:
            return _d(
                self.NAME,
                Outcome.BLOCK,
                f"safety order {so_index} already filled (same step)",
                time,
                symbol,
                so_index=so_index,
            )
        if price is not None:
            for fp in filled_prices:
                if abs(price - fp) <= price_tick * 1.0000001:
                    return _d(
                        self.NAME,
                        Outcome.BLOCK,
                        f"safety order {so_index} at {price:g} repeats the filled step at {fp:g}",
                        time,
                        symbol,
                        so_index=so_index,
                    )
        # blocks() said so and neither rule above applies: too soon after the last fill
        return _d(
            self.NAME,
            Outcome.BLOCK,
            f"last safety order filled {candles_since_last_so} candles ago < {self.min_candles}; safety order {so_index} held",
            time,
            symbol,
            so_index=so_index,
            candles_since=candles_since_last_so,
            min_candles=self.min_candles,
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrailingStepGuard:
    """Widen the next step: ``mode="atr"``: ``step = max(step, atr_mult x ATR%)``;
    ``mode="move"``: ``step = step + move_factor x (adverse move since the last fill, %)``.
    Steps are percent of the base order price (3Commas price deviation units)."""

    mode: str = "atr"
    atr_period: int = 14
    atr_mult: float = 1.0
    move_factor: float = 0.5
    NAME = "trailing_step_guard"
    PARAMS = (
        Param(
            "trailing_step_guard_enabled",
            "bool",
            False,
            group="guards",
            help="Widen the next safety order step in fast markets.",
        ),
        Param(
            "trailing_step_mode",
            "choice",
            "atr",
            choices=("atr", "move"),
            group="guards",
            help="Widen with ATR or with the price move since the last fill.",
        ),
        Param("trailing_step_atr_period", "int", 14, 2, 500, "candles", "ATR period.", group="guards"),
        Param(
            "trailing_step_atr_mult", "float", 1.0, 0.0, 100.0, "x", "Minimum step = multiple x ATR%.", group="guards"
        ),
        Param(
            "trailing_step_move_factor",
            "float",
            0.5,
            0.0,
            100.0,
            "x",
            "Extra step = factor x move since the last fill %.",
            group="guards",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> TrailingStepGuard | None:
        if not p["trailing_step_guard_enabled"]:
            return None
        return cls(
            p["trailing_step_mode"],
            p["trailing_step_atr_period"],
            p["trailing_step_atr_mult"],
            p["trailing_step_move_factor"],
        )

    def atr_pct(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """ATR(period) / close x 100 per candle (TA-Lib, Wilder; NaN warm-up -> 0)."""
        if len(close) <= self.atr_period:
            return np.zeros(len(close))
        a = talib.ATR(high, low, close, self.atr_period) / close * 100.0
        return np.where(np.isnan(a), 0.0, a)

    def widened(self, step_pct: float, atr_pct: float = 0.0, move_pct: float = 0.0) -> float:
        """The step (percent) :meth:`widen` would use, without building its Decision."""
        if self.mode == "atr":
            want = self.atr_mult * atr_pct
            return want if want > step_pct else step_pct
        return step_pct + self.move_factor * max(0.0, move_pct)

    def widen(
        self, time: int, symbol: str, so_index: int, step_pct: float, atr_pct: float = 0.0, move_pct: float = 0.0
    ) -> tuple[float, Decision]:
        """Return ``(step_pct_used, decision)``; RESIZE when widened, ALLOW otherwise."""
        if self.mode == "atr":
            want = self.atr_mult * atr_pct
            why = f"ATR {atr_pct:.2f}% x {fmt(self.atr_mult)}"
            new = want if want > step_pct else step_pct
        else:
            add = self.move_factor * max(0.0, move_pct)
            why = f"move {move_pct:.2f}% since last fill x {fmt(self.move_factor)}"
            new = step_pct + add
        if new > step_pct:
            return new, _d(
                self.NAME,
                Outcome.RESIZE,
                f"safety order {so_index} step widened {step_pct:.2f}% -> {new:.2f}% ({why})",
                time,
                symbol,
                so_index=so_index,
                step_pct=step_pct,
                new_step_pct=new,
            )
        return step_pct, _d(
            self.NAME,
            Outcome.ALLOW,
            f"safety order {so_index} step {step_pct:.2f}% kept ({why})",
            time,
            symbol,
            so_index=so_index,
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpendGuard:
    """Cap a deal's total spend by its drawdown: ``cap% = max_spend_pct - k x drawdown%``.

    ``spend%`` = the deal's entry cost after the safety order fills (quote) divided by the
    basis (``budget``: base order + all safety orders at full size; ``equity``: equity at
    decision time) x 100. ``drawdown%`` is measured at the safety order's own price against
    the deal's average entry just before it fills (both known when the order is placed).
    """

    max_spend_pct: float = 100.0
    k: float = 2.0
    basis: str = "budget"
    NAME = "spend_guard"
    PARAMS = (
        Param("spend_guard_enabled", "bool", False, group="guards", help="Cap a deal's spend as its drawdown deepens."),
        Param("spend_guard_max_pct", "float", 100.0, 0.0, 1000.0, "%", "Spend cap at zero drawdown.", group="guards"),
        Param("spend_guard_k", "float", 2.0, 0.0, 100.0, "x", "Cap reduction per 1% of drawdown.", group="guards"),
        Param(
            "spend_guard_basis",
            "choice",
            "budget",
            choices=("budget", "equity"),
            group="guards",
            help="Spend measured against the deal's max budget or the portfolio equity.",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> SpendGuard | None:
        if not p["spend_guard_enabled"]:
            return None
        return cls(p["spend_guard_max_pct"], p["spend_guard_k"], p["spend_guard_basis"])

    def cap_pct(self, drawdown_pct: float, model_cap_pct: float | None = None) -> float:
        """The cap in percent of the basis: ``max_spend_pct - k x max(0, drawdown%)``, or the
        model's cap when it is lower (see :meth:`check`)."""
        cap = self.max_spend_pct - self.k * max(0.0, drawdown_pct)
        return cap if model_cap_pct is None or model_cap_pct >= cap else model_cap_pct

    def blocks(
        self, spend_after: float, basis_amount: float, drawdown_pct: float, model_cap_pct: float | None = None
    ) -> bool:
        """True when :meth:`check` with the same arguments would BLOCK (no Decision built)."""
        spend_pct = spend_after / basis_amount * 100.0 if basis_amount > 0 else float("inf")
        return spend_pct > self.cap_pct(drawdown_pct, model_cap_pct)

    def check(
        self,
        time: int,
        symbol: str,
        so_index: int,
        spend_after: float,
        basis_amount: float,
        drawdown_pct: float,
        model_cap_pct: float | None = None,
        model: str = "",
    ) -> Decision:
        """The guard's decision on safety order ``so_index`` (``spend_after``: the deal's entry
        cost with it and the resting ones, quote; ``basis_amount`` quote; ``drawdown_pct`` >= 0
        adverse). ``model_cap_pct``: a spend model's cap in percent of the basis
        (:class:`~strategies.library.confidence.SpendModel`: predicted fraction x (1 + margin)
        x 100, rescaled to the basis), named ``model`` in the reason when it is the lower cap."""
        spend_pct = spend_after / basis_amount * 100.0 if basis_amount > 0 else float("inf")
        rule = self.max_spend_pct - self.k * max(0.0, drawdown_pct)
        cap = self.cap_pct(drawdown_pct, model_cap_pct)
        payload = {"so_index": so_index, "spend_pct": spend_pct, "cap_pct": cap, "drawdown_pct": drawdown_pct}
        by = ""
        if model_cap_pct is not None:
            payload.update(rule_cap_pct=rule, model_cap_pct=model_cap_pct, model=model)
            if cap < rule:
                by = f" by {model or 'model'} (rule cap {fmt(rule)}%)"
        if spend_pct > cap:
            return Decision(
                time,
                self.NAME,
                Outcome.BLOCK,
                f"deal spend {spend_pct:.1f}% > cap {fmt(cap)}%{by} (drawdown {drawdown_pct:.2f}%); safety order {so_index} not placed",
                symbol,
                payload,
            )
        return Decision(
            time, self.NAME, Outcome.ALLOW, f"deal spend {spend_pct:.1f}% <= cap {fmt(cap)}%{by}", symbol, payload
        )


GUARDS = (ConfidenceDcaGuard, StepRepeatGuard, TrailingStepGuard, SpendGuard, ZombieTag, BtcMarketFilter, SafuExit)


def guard_params() -> list[Param]:
    """All guards' parameters, in the order shown in forms."""
    return [p for g in GUARDS for p in g.PARAMS]
