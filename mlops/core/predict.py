"""Inference with a hash-checked model artifact (pure core, no Django).

``Predictor(path, sha256, feature_names, kind).predict(X)`` — the path and hash come from the
registry row; the booster is loaded once (:func:`mlops.core.artifacts.load_booster`) and
predicts in place (``Booster.inplace_predict``, no DMatrix copy), so a batch of 100 rows takes a
fraction of a millisecond (``benchmarks/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .artifacts import load_booster
from .train import CLASSIFIERS, REGRESSORS, clip_prediction

__all__ = ["Predictor"]


class Predictor:
    """A loaded model of ``kind`` expecting the columns ``feature_names`` in that order.

    Raises ``FileNotFoundError`` / ``ValueError`` from :func:`load_booster`; ``ValueError`` for
    an unknown kind or when the booster's feature count differs from ``len(feature_names)``.
    """

    def __init__(self, path: str | Path, sha256: str, feature_names: Sequence[str], kind: str) -> None:
        if kind not in CLASSIFIERS | REGRESSORS:
            raise ValueError(f"unknown model kind {kind!r}")
        self.kind = kind
        self.feature_names = tuple(feature_names)
        self.path = Path(path)
        self.sha256 = sha256
        self.booster = load_booster(path, sha256)
        n = self.booster.num_features()
        if n != len(self.feature_names):
            raise ValueError(f"model {self.path} has {n} features, {len(self.feature_names)} names given")

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIERS

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``X``: 2-D ``(rows, len(feature_names))`` (float32; other dtypes are converted; NaN is
        XGBoost's missing value). Returns float64 ``(rows,)``: the probability of label 1 for a
        classifier, the prediction in label units for a regressor (``size_multiplier`` clipped to
        0.5–1.5). Raises ``ValueError`` for a wrong shape."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must be 2-D with {len(self.feature_names)} columns, got shape {X.shape}")
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        out = np.asarray(self.booster.inplace_predict(X), dtype=np.float64).reshape(-1)
        return clip_prediction(self.kind, out)
