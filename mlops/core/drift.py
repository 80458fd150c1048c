"""Feature drift: the Population Stability Index (PSI) of live feature values against the
training distribution of a model version (pure core: numpy only, never Django).

The training pipeline stores, per feature, quantile bins of the training rows in
``ModelVersion.params["feature_bins"]``: ``{"name": {"edges": [e0, ..., ek], "fractions":
[f1, ..., fk]}}`` — ``k`` bins, bin ``i`` spans ``[e(i-1), e(i))`` (the last one closed), and
``f_i`` is the fraction of training rows that fell in it (they sum to 1).

PSI (Siddiqi, *Credit Risk Scorecards*, 2006; Yurdakul, "Statistical properties of the
population stability index", 2018)::

    PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)

with ``e_i`` the training fraction and ``a_i`` the live fraction of bin ``i``. Both are
floored at :data:`EPSILON` (1e-4) so that an empty bin gives a large but finite term instead
of ``ln 0``. Live values below ``e0`` count in the first bin and above ``ek`` in the last (the
training quantile bins are open-ended in practice); NaN values are ignored.

Reading it (the usual rule of thumb): **< 0.1** stable, **0.1 – 0.25** moderate shift (watch),
**≥ 0.25** significant shift (retrain or check the feature).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EPSILON", "PSI_MODERATE", "PSI_SHIFTED", "psi", "psi_level"]

EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_SHIFTED = 0.25


def psi(edges: Sequence[float], fractions: Sequence[float], values: Sequence[float | None]) -> float | None:
    """PSI of ``values`` (live feature values, float; ``None``/NaN ignored) against the
    training bins ``edges`` (k+1 increasing floats) and ``fractions`` (k floats, training
    share per bin). Returns a float ≥ 0, or ``None`` when no finite value is given.

    A feature that was constant in training has one bin with equal edges ``[c, c]``: every
    live value counts in it (PSI 0 — a constant says nothing about drift).

    Raises ``ValueError`` when ``len(fractions) != len(edges) - 1``, there are fewer than 2
    edges, or the edges are not increasing.
    """
    e = np.asarray(edges, dtype=np.float64)
    expected = np.asarray(fractions, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError("feature bins need at least 2 edges")
    if expected.size != e.size - 1:
        raise ValueError(f"{e.size} edges need {e.size - 1} fractions, got {expected.size}")
    if e.size > 2 and np.any(np.diff(e) <= 0) or e.size == 2 and e[1] < e[0]:
        raise ValueError("bin edges must be strictly increasing")
    x = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    # inner edges only: below e0 -> bin 0, at/above ek -> last bin
    idx = np.searchsorted(e[1:-1], x, side="right")
    actual = np.bincount(idx, minlength=expected.size) / x.size
    a = np.maximum(actual, EPSILON)
    b = np.maximum(expected, EPSILON)
    return float(np.sum((a - b) * np.log(a / b)))


def psi_level(value: float | None) -> str:
    """``"stable"`` (< 0.1), ``"moderate"`` (0.1 – 0.25), ``"shifted"`` (≥ 0.25) or ``"none"``
    (no live values)."""
    if value is None:
        return "none"
    if value >= PSI_SHIFTED:
        return "shifted"
    if value >= PSI_MODERATE:
        return "moderate"
    return "stable"
