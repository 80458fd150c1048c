"""Models serving the strategies' scorer protocols (pure core, no Django).

:class:`ModelConfidence` is a :class:`~strategies.library.confidence.ConfidenceProvider`
backed by a trained classifier (``confidence`` for Smart DCA's confidence guard, ``success``
for a detector strategy's min-confidence gate): the confidence at candle ``i`` is the model's
probability from the features of the candles up to ``i`` (:func:`mlops.core.features.
compute_features`, the same code as training — causal, so a backtest, a paper bot and the
scanner see the same value).

* **Batched and cached**: ``series(symbol, candles)`` scores every candle at once (one
  feature pass, one ``inplace_predict``) and is cached per (symbol, newest candle, length), so
  a strategy asking again on the same candles pays nothing.
* **BTC reference**: the strategies hand the provider their feed (``bind_feed``) before they
  ask; BTC/USDT's candles in it feed the BTC features as in training.
* **Never a crash**: a row the model cannot score (warm-up NaN in the symbol's own features)
  gets the rule-based
  value; a failing model (missing file, hash mismatch, wrong feature count, any error while
  predicting) makes the whole series fall back to the rule-based provider, and the reason is
  kept in ``fallback_reason`` (the Django side records it on the bot's decisions / the ML
  Monitor).

:class:`ModelExitScorer` (``safu_exit``) and :class:`ModelSpend` (``dca_spend``) serve Smart
DCA's SAFU exit and spend guard from the candle features **plus the deal's state** at the
closed candle (:class:`~strategies.library.confidence.DealSnapshot` →
:func:`mlops.core.deal_features.deal_features`), the same columns the deal models are trained
on; they fall back the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ModelConfidence", "ModelExitScorer", "ModelSpend", "BTC_SYMBOL"]

BTC_SYMBOL = "BTC/USDT"


class ModelConfidence:
    """A :class:`ConfidenceProvider` from a classifier (see module doc).

    ``load``: a callable returning the :class:`~mlops.core.predict.Predictor` (called once, on
    first use, so a broken artifact fails inside the fallback and not at construction);
    ``fallback``: the rule-based provider used for unscored rows and on failure (it must have
    ``series``); ``label``: the model's name in reasons, e.g. ``confidence v3``.
    """

    source = "model"
    reference_symbols = (BTC_SYMBOL,)  # markets the features read besides the traded one

    def __init__(self, load: Callable[[], Any], fallback, *, label: str = "model") -> None:
        self._load = load
        self._predictor = None
        self.fallback = fallback
        self.label = label
        self.fallback_reason: str | None = None
        self._btc = None
        self._cache: dict[tuple, np.ndarray] = {}

    def bind_feed(self, feed) -> None:
        """Use BTC/USDT's candles of ``feed`` (when it holds them) for the BTC features."""
        self._btc = feed.candles(BTC_SYMBOL) if BTC_SYMBOL in feed else None

    def _model(self):
        if self._predictor is None:
            self._predictor = self._load()
        return self._predictor

    def series(self, symbol: str, candles) -> np.ndarray:
        """Confidence in [0, 1] for every candle of ``candles`` (float64, causal)."""
        n = len(candles)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        key = (symbol, int(candles.time[-1]), n, id(self._btc))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rule = np.asarray(self.fallback.series(symbol, candles), dtype=np.float64)
        try:
            out = self._score(symbol, candles, rule)
        except Exception as exc:  # a broken model never stops a bot: the rules take over
            self.fallback_reason = f"{self.label} failed ({type(exc).__name__}: {exc}); rule-based confidence used"
            out = rule
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _score(self, symbol: str, candles, rule: np.ndarray) -> np.ndarray:
        from .features import compute_features

        model = self._model()
        btc = candles if symbol == BTC_SYMBOL else self._btc
        frame = compute_features(candles, btc=btc)
        if tuple(frame.names) != tuple(model.feature_names):
            raise ValueError("the model was trained on another feature set")
        X = frame.values
        # warm-up rows (NaN in the symbol's own features) get the rule value; missing BTC
        # features (no BTC/USDT in the feed) are XGBoost's missing values, as it was trained
        own = np.array(["btc" not in n for n in frame.names])
        ok = ~np.isnan(X[:, own]).any(axis=1)
        out = rule.copy()
        if ok.any():
            out[ok] = model.predict(X[ok])
        return out

    def confidence(self, symbol: str, ctx) -> float:
        """Confidence at the closed candle ``ctx.i`` (the last value of :meth:`series` on the
        candles up to it)."""
        return float(self.series(symbol, ctx.candles[: ctx.i + 1])[-1])


class _DealModel:
    """Shared part of the deal-state models (``safu_exit``, ``dca_spend``): one row = the 72
    candle features at the closed candle ``ctx.i`` (computed once per symbol and candle array,
    causal: the row equals the one computed on the candles up to ``i``) + the deal-state
    features of :func:`mlops.core.deal_features.deal_features` at that candle's close, in the
    model's feature order (``FEATURE_NAMES + DEAL_FEATURE_NAMES``, as
    :func:`mlops.core.pipeline.train_kind` trains the deal kinds).

    ``params``: the Smart DCA params (``max_safety_orders``, ``base_order_size``,
    ``safety_order_size``, ``volume_scale``) for the safety-order and spend fractions.
    A failing model (load, hash, feature set, predict) is remembered: later calls go straight
    to the fallback; ``fallback_reason`` says why; ``last_source`` names what produced the
    last value.
    """

    source = "model"
    reference_symbols = (BTC_SYMBOL,)
    kind = "model"

    def __init__(self, load: Callable[[], Any], *, label: str, params: dict[str, Any]) -> None:
        from strategies.library.smart_dca import so_sizes

        self._load = load
        self._predictor = None
        self.label = label
        self.fallback_reason: str | None = None
        self.last_source = ""
        self._error: str | None = None
        self._frames: dict[str, tuple[tuple, Any]] = {}
        self.so_max = int(params.get("max_safety_orders", 5))
        self.max_spend = float(params.get("base_order_size", 20.0)) + sum(
            so_sizes(float(params.get("safety_order_size", 40.0)), float(params.get("volume_scale", 1.0)), self.so_max)
        )

    def _frame(self, symbol: str, ctx):
        from .features import compute_features

        c = ctx.candles
        btc = c if symbol == BTC_SYMBOL else (ctx.feed.candles(BTC_SYMBOL) if BTC_SYMBOL in ctx.feed else None)
        key = (len(c), int(c.time[-1]), id(btc), id(c))
        hit = self._frames.get(symbol)
        if hit is not None and hit[0] == key:
            return hit[1]
        frame = compute_features(c, btc=btc)
        self._frames[symbol] = (key, frame)
        return frame

    def _row(self, symbol: str, ctx, deal) -> np.ndarray | None:
        """Float32 ``(1, n_features)`` for the model, or None in the symbol's warm-up."""
        from .deal_features import DEAL_FEATURE_NAMES, deal_features

        if self._predictor is None:
            self._predictor = self._load()
        frame = self._frame(symbol, ctx)
        if tuple(self._predictor.feature_names) != tuple(frame.names) + DEAL_FEATURE_NAMES:
            raise ValueError("the model was trained on another feature set")
        x = frame.values[ctx.i]
        own = np.array(["btc" not in name for name in frame.names])
        if np.isnan(x[own]).any():
            return None
        tp = float(deal.take_profit_price)
        d = deal_features(
            side=deal.side,
            avg_entry=deal.entry_price,
            close=float(ctx.candles.close[ctx.i]),
            safety_orders_filled=min(int(deal.safety_orders_filled), self.so_max),
            safety_orders_max=self.so_max,
            spent_quote=float(deal.spent_quote),
            max_spend_quote=self.max_spend,
            opened_at_ms=int(deal.opened_at),
            now_ms=int(ctx.time) + int(ctx.feed.tf_ms),
            take_profit_price=tp if tp > 0 else None,
        )
        return np.concatenate([x, d]).astype(np.float32)[None, :]

    def _predict(self, symbol: str, ctx, deal) -> float | None:
        """The model's value, or None (warm-up, or the model failed: ``fallback_reason``)."""
        if self._error is not None:
            self.last_source = ""
            return None
        try:
            x = self._row(symbol, ctx, deal)
            if x is None:
                self.last_source = ""
                return None
            v = float(self._predictor.predict(x)[0])
            if not np.isfinite(v):
                raise ValueError(f"predicted {v}")
        except Exception as exc:  # a broken model never stops a bot: the rules take over
            self._error = f"{type(exc).__name__}: {exc}"
            self.fallback_reason = f"{self.label} failed ({self._error}); {self._fallback_text}"
            self.last_source = ""
            return None
        self.last_source = self.label
        return v


class ModelExitScorer(_DealModel):
    """An :class:`~strategies.library.confidence.ExitScorer` from an active ``safu_exit``
    classifier: ``score`` = the model's probability that exiting now beats holding (see
    :class:`_DealModel` for the row). ``fallback``: the rule-based scorer
    (:class:`~strategies.library.confidence.RuleExitScorer`) for warm-up candles and after a
    failure. It has no ``series`` / ``exit_factors``, so Smart DCA asks it on every candle of an
    open deal (one cached feature pass per symbol, one single-row predict per candle)."""

    kind = "safu_exit"
    _fallback_text = "rule-based exit score used"

    def __init__(self, load: Callable[[], Any], fallback, *, label: str, params: dict[str, Any]) -> None:
        super().__init__(load, label=label, params=params)
        self.fallback = fallback

    def score(self, symbol: str, ctx, deal) -> float:
        """Exit score in [0, 1] at the closed candle ``ctx.i`` for ``deal`` (a DealSnapshot)."""
        v = self._predict(symbol, ctx, deal)
        return float(self.fallback.score(symbol, ctx, deal)) if v is None else v


class ModelSpend(_DealModel):
    """A :class:`~strategies.library.confidence.SpendModel` from an active ``dca_spend``
    regressor: ``spend_fraction`` = the predicted total entry cost of the deal ÷ its maximum
    spend, from the state when the ladder places safety orders (the rows it was trained on).
    ``margin`` (fraction, default 0.25): head-room over the prediction in the spend guard's cap
    ``min(rule cap, fraction x (1 + margin) x 100 %)``. None (warm-up, failure): the rule cap."""

    kind = "dca_spend"
    _fallback_text = "rule-based spend cap used"

    def __init__(self, load: Callable[[], Any], *, label: str, params: dict[str, Any], margin: float = 0.25) -> None:
        super().__init__(load, label=label, params=params)
        if not (margin >= 0):
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        self.margin = float(margin)

    def spend_fraction(self, symbol: str, ctx, deal) -> float | None:
        v = self._predict(symbol, ctx, deal)
        return None if v is None else max(v, 0.0)
