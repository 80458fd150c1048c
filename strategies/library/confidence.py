"""Pluggable scorers for Smart DCA guards: entry/averaging confidence and exit (SAFU) score.

Pure numpy + TA-Lib (no Django). Two protocols the ML models will implement later:

* :class:`ConfidenceProvider` — ``confidence(symbol, ctx) -> float in [0, 1]``: how much we
  trust averaging down (long) / up (short) now. Used by ``confidence_dca_guard``.
* :class:`ExitScorer` — ``score(symbol, ctx, deal) -> float in [0, 1]``: how strongly the
  deal should be abandoned now. Used by ``safu_exit``. A scorer may name what produced its
  last score in ``last_source`` (an ML model's ``safu_exit v3``); the exit reason shows it.
* :class:`SpendModel` — ``spend_fraction(symbol, ctx, deal)``: the spend a deal will need, as
  a fraction of its maximum; it tightens ``spend_guard``'s cap.

A provider may also offer a vectorized ``series(...)`` (same values for every candle at
once, causal); the strategy then lets the engine skip candles. Without it the strategy asks
on every candle of an open deal (correct, slower).

The signal strategies (:mod:`.signal_strategy`, :mod:`.manager`) take the same
:class:`ConfidenceProvider`: their rule-based default is the detector's own score; a provider's
value (:class:`SignalConfidence`, source ``model``) replaces it for the min-confidence gate and
the manager's ranking; :func:`signal_confidence` falls back to the rule score, with the reason,
when a provider raises or returns NaN / a value outside [0, 1].

The rule-based defaults (all inputs are TA-Lib indicators of the symbol's closes, causal):

* ``trend = clip(0.5 + 5 x (EMA50 / EMA200 - 1), 0, 1)`` (1 = up-trend, 0.5 when unknown);
* confidence, long: ``0.5 x clip((70 - RSI14) / 40, 0, 1) + 0.5 x trend``;
  short: ``0.5 x clip((RSI14 - 30) / 40, 0, 1) + 0.5 x (1 - trend)`` — buying an oversold
  dip in an up-trend scores high;
* exit score, long: ``0.5 x clip(drawdown% / drawdown_ref%, 0, 1) + 0.3 x (1 - trend)
  + 0.2 x clip((60 - RSI14) / 30, 0, 1)``, mirrored for shorts — a deep drawdown in a
  down-trend with weak momentum scores high. ``drawdown%`` is the adverse move of the close
  from the deal's average entry in percent (0 when in profit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import talib

__all__ = [
    "CandleAt",
    "bind_feed",
    "provider_series",
    "ConfidenceProvider",
    "ExitScorer",
    "DealSnapshot",
    "SpendModel",
    "RuleConfidence",
    "RuleExitScorer",
    "SignalConfidence",
    "signal_confidence",
    "trend_rsi",
]


@runtime_checkable
class ConfidenceProvider(Protocol):
    def confidence(self, symbol: str, ctx: Any) -> float:
        """Confidence in [0, 1] at the closed candle ``ctx.i`` of ``symbol`` (``ctx`` is a
        :class:`~strategies.engine.engine.StepContext`)."""
        ...


@dataclass(frozen=True, slots=True)
class DealSnapshot:
    """What an exit scorer (or a spend model) knows about the deal: side (``long``/``short``),
    average entry (quote), amount (base units), safety orders filled, the deal's open time (its
    first fill, epoch ms), the quote its entries spent so far and its take-profit price (quote;
    0 when unknown) — the inputs of :func:`mlops.core.deal_features.deal_features`."""

    deal_id: str
    side: str
    entry_price: float
    amount: float
    safety_orders_filled: int
    opened_at: int
    spent_quote: float = 0.0
    take_profit_price: float = 0.0


@runtime_checkable
class ExitScorer(Protocol):
    def score(self, symbol: str, ctx: Any, deal: DealSnapshot) -> float:
        """Exit score in [0, 1] at the closed candle ``ctx.i``; the deal is closed when it
        reaches the ``safu_exit`` threshold."""
        ...


@runtime_checkable
class SpendModel(Protocol):
    """A model of how much of its maximum spend a deal will need (the ``dca_spend`` regressor).

    ``spend_fraction(symbol, ctx, deal)`` -> the predicted total entry cost of the deal as a
    fraction of its maximum spend (base order + every safety order, quote / quote), or None
    when it cannot say (the spend guard then keeps its rule cap alone). ``margin`` (fraction,
    e.g. 0.25) is the head-room added to the prediction; ``last_source`` names what produced
    the last value (e.g. ``dca_spend v3``) for the decision reason. Smart DCA's spend guard caps
    a safety order's spend at ``min(rule cap, fraction x (1 + margin) x 100 %)`` of the
    budget (:meth:`strategies.library.guards.SpendGuard.check`).
    """

    margin: float

    def spend_fraction(self, symbol: str, ctx: Any, deal: DealSnapshot) -> float | None: ...


_CACHE: dict[tuple, tuple] = {}


def trend_rsi(
    close: np.ndarray, rsi_period: int = 14, fast: int = 50, slow: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """``(trend, rsi)`` float64 arrays for ``close`` (see module doc; NaN warm-up -> 0.5 / 50)."""
    key = (id(close), len(close), rsi_period, fast, slow)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is close:
        return hit[1], hit[2]
    # (the cache holds the input array itself so an id() reused by a new array never hits)
    c = np.ascontiguousarray(close, dtype=np.float64)
    rsi = talib.RSI(c, rsi_period) if len(c) > rsi_period else np.full(len(c), np.nan)
    ef = talib.EMA(c, fast) if len(c) >= fast else np.full(len(c), np.nan)
    es = talib.EMA(c, slow) if len(c) >= slow else np.full(len(c), np.nan)
    trend = np.clip(0.5 + 5.0 * (ef / es - 1.0), 0.0, 1.0)
    trend = np.where(np.isnan(trend), 0.5, trend)
    rsi = np.where(np.isnan(rsi), 50.0, rsi)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = (close, trend, rsi)  # type: ignore[assignment]
    return trend, rsi


class RuleConfidence:
    """Default :class:`ConfidenceProvider`: RSI + EMA trend rule (formula in the module doc)."""

    def __init__(self, side: str = "long", rsi_period: int = 14) -> None:
        self.side = side
        self.rsi_period = rsi_period

    def series(self, symbol: str, candles) -> np.ndarray:
        """Confidence for every candle of ``candles`` (float64, causal)."""
        trend, rsi = trend_rsi(candles.close, self.rsi_period)
        if self.side == "long":
            return 0.5 * np.clip((70.0 - rsi) / 40.0, 0.0, 1.0) + 0.5 * trend
        return 0.5 * np.clip((rsi - 30.0) / 40.0, 0.0, 1.0) + 0.5 * (1.0 - trend)

    def confidence(self, symbol: str, ctx) -> float:
        return float(self.series(symbol, ctx.candles[: ctx.i + 1])[-1])


class RuleExitScorer:
    """Default :class:`ExitScorer` (drawdown depth, trend, RSI; formula in the module doc)."""

    def __init__(self, drawdown_ref_pct: float = 20.0, rsi_period: int = 14) -> None:
        self.drawdown_ref_pct = drawdown_ref_pct
        self.rsi_period = rsi_period

    def series(self, symbol: str, candles, side: str, entry_price: float, a: int, b: int) -> np.ndarray:
        """Exit scores for candles ``a..b-1`` given a constant average entry (float64)."""
        trend, rsi = trend_rsi(candles.close, self.rsi_period)
        c = candles.close[a:b]
        tr, rs = trend[a:b], rsi[a:b]
        if side == "long":
            dd = np.maximum(0.0, (entry_price - c) / entry_price * 100.0)
            return (
                0.5 * np.clip(dd / self.drawdown_ref_pct, 0.0, 1.0)
                + 0.3 * (1.0 - tr)
                + 0.2 * np.clip((60.0 - rs) / 30.0, 0.0, 1.0)
            )
        dd = np.maximum(0.0, (c - entry_price) / entry_price * 100.0)
        return (
            0.5 * np.clip(dd / self.drawdown_ref_pct, 0.0, 1.0) + 0.3 * tr + 0.2 * np.clip((rs - 40.0) / 30.0, 0.0, 1.0)
        )

    def score(self, symbol: str, ctx, deal: DealSnapshot) -> float:
        return float(self.series(symbol, ctx.candles, deal.side, deal.entry_price, ctx.i, ctx.i + 1)[0])

    def exit_factors(self, candles, side: str, threshold: float) -> np.ndarray:
        """Per candle, the price factor ``F`` such that the score reaches ``threshold`` exactly
        when ``close <= avg_entry x F`` (long) / ``close >= avg_entry x F`` (short).

        The score is ``0.5 x clip(dd / ref, 0, 1) + rest``; solving for the drawdown gives
        ``dd >= ref x (threshold - rest) / 0.5``. ``+inf``/``-inf`` encode always/never.
        Lets the strategy search whole ranges with one comparison per candle.
        """
        trend, rsi = trend_rsi(candles.close, self.rsi_period)
        if side == "long":
            rest = 0.3 * (1.0 - trend) + 0.2 * np.clip((60.0 - rsi) / 30.0, 0.0, 1.0)
        else:
            rest = 0.3 * trend + 0.2 * np.clip((rsi - 40.0) / 30.0, 0.0, 1.0)
        need = (threshold - rest) / 0.5  # fraction of the full drawdown score needed
        dd = np.maximum(need, 0.0) * self.drawdown_ref_pct / 100.0
        if side == "long":
            f = 1.0 - dd
            f = np.where(need <= 0.0, np.inf, f)
            return np.where(need > 1.0, -np.inf, f)
        f = 1.0 + dd
        f = np.where(need <= 0.0, -np.inf, f)
        return np.where(need > 1.0, np.inf, f)


# -- the signal strategies' confidence (issue 11: "a rule-based default now; the ML models plug in
# later through the same protocol") ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandleAt:
    """The :class:`~strategies.engine.engine.StepContext` fields a provider reads (``symbol``,
    ``i``, ``time`` = open time ms, ``candles``, ``feed``), for a symbol other than the one
    stepping (the strategy manager ranks every symbol's signals at once)."""

    symbol: str
    i: int
    time: int
    candles: Any
    feed: Any


@dataclass(frozen=True, slots=True)
class SignalConfidence:
    """The confidence a signal strategy gates on: ``value`` in [0, 1], ``source`` ``"rule"`` (the
    detector's own score) or ``"model"`` (the provider's), ``error`` why a provider's value was
    not used (empty when it was, or when there is no provider)."""

    value: float
    source: str = "rule"
    error: str = ""

    def label(self) -> str:
        """``"0.71 (model)"``, ``"0.55 (rule)"`` or ``"0.55 (rule; model returned nan)"``."""
        why = f"; model {self.error}" if self.error else ""
        return f"{self.value:.2f} ({self.source}{why})"


def _valid(x: Any) -> str:
    """Empty when ``x`` is a confidence (finite, in [0, 1]), else what is wrong with it."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return f"returned {x!r}"
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        return f"returned {v:g}"
    return ""


def bind_feed(provider: Any, feed) -> None:
    """Hand ``feed`` to a provider that wants the other symbols' candles (an ML model's BTC
    features: ``bind_feed(feed)``); a no-op for providers without it or without a feed."""
    bind = getattr(provider, "bind_feed", None)
    if bind is not None and feed is not None:
        bind(feed)


def provider_series(provider: Any, symbol: str, candles, feed=None) -> tuple[np.ndarray | None, str]:
    """``(series, error)``: the provider's batched ``series(symbol, candles)`` as float64 (one
    value per candle), or ``(None, "")`` when it has none, or ``(None, why)`` when it raised or
    returned the wrong shape. ``feed``: handed to the provider's ``bind_feed`` first when it
    has one (see :func:`bind_feed`)."""
    bind_feed(provider, feed)
    fn = getattr(provider, "series", None)
    if fn is None:
        return None, ""
    try:
        arr = np.asarray(fn(symbol, candles), dtype=np.float64)
    except Exception as exc:  # any failure of a plug-in falls back to the rule, with the reason
        return None, f"raised {type(exc).__name__}({str(exc)[:80]!r})"
    if arr.shape != (len(candles),):
        return None, f"returned shape {arr.shape} for {len(candles)} candles"
    return arr, ""


def signal_confidence(
    rule_score: float, provider: Any, symbol: str, ctx: Any, series: tuple[np.ndarray | None, str] | None
) -> SignalConfidence:
    """The confidence of a signal whose detector scored ``rule_score`` at candle ``ctx.i``.

    ``provider`` None: the rule score (source ``rule``). Otherwise the provider's value: from
    ``series`` (``provider_series``'s result for the symbol, when the provider has one) at
    ``ctx.i``, else ``provider.confidence(symbol, ctx)``. A provider that raises or gives NaN /
    a value outside [0, 1] falls back to the rule score with ``error`` saying why — never raises.
    """
    if provider is None:
        return SignalConfidence(float(rule_score))
    if series is not None and (series[0] is not None or series[1]):
        arr, err = series
        if err:
            return SignalConfidence(float(rule_score), "rule", err)
        x = float(arr[ctx.i])
    else:
        try:
            x = provider.confidence(symbol, ctx)
        except Exception as exc:  # a plug-in's failure: the rule score, with the reason
            return SignalConfidence(float(rule_score), "rule", f"raised {type(exc).__name__}({str(exc)[:80]!r})")
    err = _valid(x)
    if err:
        return SignalConfidence(float(rule_score), "rule", err)
    return SignalConfidence(float(x), "model")
