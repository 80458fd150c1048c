"""Training sets: feature rows joined with labels on (symbol, candle time) (pure core, no Django).

A feature frame is any object with ``.time`` (int64 epoch ms, candle open times, increasing),
``.names`` (tuple of str) and ``.values`` (float32 ``(rows, len(names))``) — the shape of
``mlops.core.features.FeatureFrame``. A :class:`~mlops.core.labels.LabelSet` row at time ``t``
joins the feature row of the same symbol at the same ``t`` (the decision candle: features use
its close and earlier; the label uses what came after).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .labels import LabelSet

__all__ = ["Dataset", "build_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """``X`` float32 ``(n, f)``; ``y`` float64 ``(n,)``; ``times`` / ``horizons_ms`` int64
    ``(n,)`` epoch ms; ``symbols`` object ``(n,)``; ``feature_names`` tuple; rows in
    (time, symbol) order; ``dropped``: counts of label rows left out, by reason."""

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    horizons_ms: np.ndarray
    symbols: np.ndarray
    feature_names: tuple[str, ...]
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.y)


def build_dataset(frames: Mapping[str, object], labels: LabelSet, label: str, extra: Sequence[str] = ()) -> Dataset:
    """Join ``frames`` (``{symbol: feature frame}``, all with the same ``names``) with the
    ``label`` column of ``labels``.

    ``extra``: label-set columns appended to each row's features after the frame's (the
    deal-state features of the DCA deal models, which are a property of the decision point, not
    of the candle): ``X`` is ``(n, len(names) + len(extra))`` and ``feature_names`` is
    ``names + extra``. NaN in an extra column stays (XGBoost's missing value); ``KeyError``
    for an extra column the label set does not hold.

    Label rows are dropped (and counted in ``Dataset.dropped``) when the label is NaN
    (``"nan_label"``), the symbol has no frame (``"no_features"``), the frame has no row at that
    time (``"no_feature_row"``) or the feature row holds a NaN (``"nan_features"``: warm-up).
    Raises ``KeyError`` for an unknown label and ``ValueError`` when frames disagree on names
    or a frame's values do not match its names.
    """
    for col in (label, *extra):
        if col not in labels.labels:
            raise KeyError(f"label {col!r} not in {sorted(labels.labels)}")
    names: tuple[str, ...] | None = None
    for sym, fr in frames.items():
        fn = tuple(fr.names)
        if names is None:
            names = fn
        elif fn != names:
            raise ValueError(f"feature frame of {sym} has names {fn[:3]}..., expected {names[:3]}...")
        if np.shape(fr.values) != (len(fr.time), len(fn)):
            raise ValueError(
                f"feature frame of {sym}: values {np.shape(fr.values)}, expected ({len(fr.time)}, {len(fn)})"
            )
    names = (names or ()) + tuple(extra)
    y_all = labels.labels[label]
    dropped = {"nan_label": 0, "no_features": 0, "no_feature_row": 0, "nan_features": 0}
    rows_x, keep = [], []
    for sym in sorted(set(labels.symbol.tolist())):
        idx = np.flatnonzero((labels.symbol == sym) & ~np.isnan(y_all))
        dropped["nan_label"] += int(np.sum((labels.symbol == sym) & np.isnan(y_all)))
        fr = frames.get(sym)
        if fr is None:
            dropped["no_features"] += len(idx)
            continue
        ft = np.asarray(fr.time, dtype=np.int64)
        pos = np.searchsorted(ft, labels.time[idx])
        pos_c = np.minimum(pos, len(ft) - 1)
        found = (pos < len(ft)) & (ft[pos_c] == labels.time[idx]) if len(ft) else np.zeros(len(idx), bool)
        dropped["no_feature_row"] += int((~found).sum())
        idx, pos = idx[found], pos[found]
        vals = np.asarray(fr.values, dtype=np.float32)[pos]
        ok = ~np.isnan(vals).any(axis=1)
        dropped["nan_features"] += int((~ok).sum())
        if extra:
            cols = np.column_stack([labels.labels[e][idx] for e in extra]).astype(np.float32)
            vals = np.hstack([vals, cols])
        rows_x.append(vals[ok])
        keep.append(idx[ok])
    sel = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    X = np.concatenate(rows_x) if rows_x else np.zeros((0, len(names)), dtype=np.float32)
    order = np.lexsort((labels.symbol[sel].astype(str), labels.time[sel]))
    sel, X = sel[order], X[order]
    return Dataset(
        X=np.ascontiguousarray(X, dtype=np.float32),
        y=y_all[sel].astype(np.float64),
        times=labels.time[sel].astype(np.int64),
        horizons_ms=labels.horizon_ms[sel].astype(np.int64),
        symbols=labels.symbol[sel],
        feature_names=names,
        dropped=dropped,
    )
