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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ModelConfidence", "BTC_SYMBOL"]

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
