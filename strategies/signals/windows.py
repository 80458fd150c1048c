"""Helpers shared by the ``dca_detector``, ``swing`` and ``channel`` detectors: parameter
resolution against a :class:`~strategies.base.Param` schema, causal rolling windows over
candle arrays, and the candle indexes a detector evaluates.

Pure numpy (no Django). Every rolling helper is causal: element ``i`` depends only on
elements ``0..i`` and is NaN where the window is not full yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from strategies.base import Param

from ._paramcheck import shift, since_mask, validate

__all__ = ["resolve_params", "rolling_max", "rolling_mean", "rolling_min", "shift1", "evaluated", "clip01"]


def resolve_params(specs: Iterable[Param], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` coerced to the schema's types, missing keys filled with the defaults (the
    seed's values). :class:`~strategies.base.ParamError` names every bad or unknown key
    (:func:`strategies.signals._paramcheck.validate`, the one implementation)."""
    return validate(tuple(specs), params)


def _rolling(x: np.ndarray, n: int, fn) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if n >= 1 and len(x) >= n:
        out[n - 1 :] = fn(sliding_window_view(x, n), axis=1)
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Max of ``x[i-n+1 .. i]`` (the current element included); NaN before ``n`` elements."""
    return _rolling(np.asarray(x, dtype=np.float64), n, np.max)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Min of ``x[i-n+1 .. i]`` (the current element included); NaN before ``n`` elements."""
    return _rolling(np.asarray(x, dtype=np.float64), n, np.min)


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Arithmetic mean of ``x[i-n+1 .. i]``; NaN before ``n`` elements."""
    return _rolling(np.asarray(x, dtype=np.float64), n, np.mean)


def shift1(x: np.ndarray) -> np.ndarray:
    """``x`` one step later: ``out[i] = x[i-1]`` (NaN at 0) — a window that excludes the
    current element."""
    return shift(np.asarray(x, dtype=np.float64), 1)


def evaluated(time: np.ndarray, since_ms: int | None, ready: np.ndarray) -> np.ndarray:
    """Indexes of the candles to evaluate: open time ≥ ``since_ms`` (all when None) and
    ``ready`` (enough history for every input)."""
    return np.flatnonzero(np.asarray(ready, dtype=bool) & since_mask(time, since_ms))


def clip01(x: float) -> float:
    """``x`` clipped to [0, 1]."""
    return float(min(1.0, max(0.0, x)))
