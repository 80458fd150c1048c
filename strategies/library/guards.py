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


def fmt(x: float) -> str:
    """Compact number for reasons: ``40.0 -> "40"``, ``41.25 -> "41.25"``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _d(rule: str, outcome: str, reason: str, time: int, symbol: str, **payload: Any) -> Decision:
    return Decision(time, rule, outcome, reason, symbol, payload)


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


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZombieTag:
    """Tag a deal whose close stayed below ``-drawdown_pct`` % of its average entry (above for
    shorts) for ``hours`` hours without recovering; then ``keep`` it, ``stop_averaging``
    (cancel safety orders) or ``close`` it at market (exit reason ``zombie``)."""

    hours: float = 72.0
    drawdown_pct: float = 10.0
    action: str = "keep"
    NAME = "zombie_tag"
    PARAMS = (
        Param("zombie_tag_enabled", "bool", False, group="guards", help="Tag deals stuck deep in loss."),
        Param("zombie_hours", "float", 72.0, 0.0, 100_000.0, "hours", "How long below the threshold.", group="guards"),
        Param("zombie_drawdown_pct", "float", 10.0, 0.0, 100.0, "%", "Loss from the average entry.", group="guards"),
        Param(
            "zombie_action",
            "choice",
            "keep",
            choices=("keep", "stop_averaging", "close"),
            group="guards",
            help="What to do with a zombie deal.",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> ZombieTag | None:
        return cls(p["zombie_hours"], p["zombie_drawdown_pct"], p["zombie_action"]) if p["zombie_tag_enabled"] else None

    def threshold(self, entry_price: float, side: str) -> float:
        return (
            entry_price * (1.0 - self.drawdown_pct / 100.0)
            if side == "long"
            else entry_price * (1.0 + self.drawdown_pct / 100.0)
        )

    def tag(self, time: int, symbol: str, hours_below: float, loss_pct: float) -> Decision:
        return _d(
            self.NAME,
            Outcome.EXIT if self.action == "close" else Outcome.TAG,
            f"deal {loss_pct:.2f}% in loss, below -{fmt(self.drawdown_pct)}% for {fmt(hours_below)}h >= {fmt(self.hours)}h; action {self.action}",
            time,
            symbol,
            hours=hours_below,
            loss_pct=loss_pct,
            action=self.action,
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BtcMarketFilter:
    """No new deals and no safety orders while BTC is bearish (longs) / bullish (shorts).

    Rules on BTC's closed stepping candles (from the feed, traded or not): ``ema``: close below
    (above) EMA(``ema_period``); ``change``: change over the last 24 h below ``-change_pct`` %
    (above ``+change_pct`` %); ``either``: one of the two.
    """

    rule: str = "ema"
    ema_period: int = 200
    change_pct: float = 5.0
    symbol: str = "BTC/USDT"
    NAME = "btc_market_filter"
    PARAMS = (
        Param(
            "btc_market_filter_enabled",
            "bool",
            False,
            group="guards",
            help="Pause new deals and safety orders in a BTC down-move.",
        ),
        Param(
            "btc_filter_rule",
            "choice",
            "ema",
            choices=("ema", "change", "either"),
            group="guards",
            help="BTC below its EMA, a 24h drop, or either.",
        ),
        Param("btc_filter_ema_period", "int", 200, 2, 2000, "candles", "EMA period on BTC closes.", group="guards"),
        Param(
            "btc_filter_change_pct",
            "float",
            5.0,
            0.0,
            100.0,
            "%",
            "24h BTC move that counts as bearish (bullish for shorts).",
            group="guards",
        ),
        Param("btc_symbol", "str", "BTC/USDT", group="guards", help="The BTC market in the feed."),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> BtcMarketFilter | None:
        if not p["btc_market_filter_enabled"]:
            return None
        return cls(p["btc_filter_rule"], p["btc_filter_ema_period"], p["btc_filter_change_pct"], p["btc_symbol"])

    def series(self, btc, side: str, tf_ms: int) -> dict[str, np.ndarray]:
        """Per BTC candle: ``block`` (bool), ``close``, ``ema``, ``change`` (%, NaN unknown)."""
        c = btc.close
        ema = talib.EMA(c, self.ema_period) if len(c) >= self.ema_period else np.full(len(c), np.nan)
        j = np.searchsorted(btc.time, btc.time - 86_400_000)
        ok = (j < np.arange(len(c))) & (btc.time[np.minimum(j, len(c) - 1)] == btc.time - 86_400_000)
        change = np.where(ok, (c / c[np.minimum(j, len(c) - 1)] - 1.0) * 100.0, np.nan)
        with np.errstate(invalid="ignore"):
            if side == "long":
                e_bad = c < ema
                ch_bad = change < -self.change_pct
            else:
                e_bad = c > ema
                ch_bad = change > self.change_pct
        block = e_bad if self.rule == "ema" else ch_bad if self.rule == "change" else (e_bad | ch_bad)
        return {"block": block, "close": c, "ema": ema, "change": change}

    def check(
        self, time: int, symbol: str, side: str, blocked: bool, btc_close: float, ema: float, change: float, what: str
    ) -> Decision:
        """``what``: ``"new deal"`` or ``"safety orders"`` (for the reason text)."""
        parts = []
        long = side == "long"
        if self.rule in ("ema", "either") and not np.isnan(ema):
            op = ("<" if btc_close < ema else ">=") if long else (">" if btc_close > ema else "<=")
            parts.append(f"BTC close {btc_close:,.2f} {op} EMA{self.ema_period} {ema:,.2f}")
        if self.rule in ("change", "either") and not np.isnan(change):
            lim = -self.change_pct if long else self.change_pct
            op = ("<" if change < lim else ">=") if long else (">" if change > lim else "<=")
            parts.append(f"BTC 24h change {change:+.2f}% {op} {lim:+g}%")
        text = "; ".join(parts) or "no BTC data"
        mood = "bearish" if side == "long" else "bullish"
        payload = {
            "btc_close": btc_close,
            "ema": None if np.isnan(ema) else ema,
            "change_pct": None if np.isnan(change) else change,
        }
        if blocked:
            return Decision(time, self.NAME, Outcome.BLOCK, f"BTC {mood}: {text}; {what} blocked", symbol, payload)
        return Decision(time, self.NAME, Outcome.ALLOW, f"BTC not {mood}: {text}", symbol, payload)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SafuExit:
    """Close a deal at market when the ``ExitScorer`` score reaches ``threshold`` (0..1)."""

    threshold: float = 0.8
    drawdown_ref_pct: float = 20.0
    NAME = "safu_exit"
    PARAMS = (
        Param("safu_exit_enabled", "bool", False, group="guards", help="Close a deal when the exit score says so."),
        Param("safu_threshold", "float", 0.8, 0.0, 1.0, group="guards", help="Exit when score >= threshold (0..1)."),
        Param(
            "safu_drawdown_ref_pct",
            "float",
            20.0,
            0.1,
            100.0,
            "%",
            "Drawdown that counts as full score in the rule-based scorer.",
            group="guards",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> SafuExit | None:
        return cls(p["safu_threshold"], p["safu_drawdown_ref_pct"]) if p["safu_exit_enabled"] else None

    def check(self, time: int, symbol: str, score: float, drawdown_pct: float, source: str = "") -> Decision:
        """``source``: what scored (an ML model's ``safu_exit v3``), shown as ``exit score 0.93
        (safu_exit v3)``; empty for the rule-based scorer."""
        by = f" ({source})" if source else ""
        extra = {"source": source} if source else {}
        if score >= self.threshold:
            return _d(
                self.NAME,
                Outcome.EXIT,
                f"exit score {score:.2f}{by} >= {fmt(self.threshold)} (drawdown {drawdown_pct:.2f}%); deal closed",
                time,
                symbol,
                score=score,
                threshold=self.threshold,
                **extra,
            )
        return _d(
            self.NAME,
            Outcome.ALLOW,
            f"exit score {score:.2f}{by} < {fmt(self.threshold)}",
            time,
            symbol,
            score=score,
            **extra,
        )


GUARDS = (ConfidenceDcaGuard, StepRepeatGuard, TrailingStepGuard, SpendGuard, ZombieTag, BtcMarketFilter, SafuExit)


def guard_params() -> list[Param]:
    """All guards' parameters, in the order shown in forms."""
    return [p for g in GUARDS for p in g.PARAMS]
