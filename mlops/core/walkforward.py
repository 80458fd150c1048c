"""Purged walk-forward splits (pure core, no Django).

López de Prado, *Advances in Financial Machine Learning* (AFML), ch. 7.4: labels that span
time leak across a train/test boundary, so training rows whose label window ``[t, t + h]``
reaches the test block are **purged**, and an **embargo** keeps a gap around the test block.
Here only the past is trained (walk-forward, never k-fold with future train rows), so the
embargo sits between the end of training and the start of the test block.

The distinct row times are cut into ``n_folds + 1`` consecutive blocks of (almost) equal
numbers of distinct times (``numpy.array_split``); rows sharing a time stay in one block.
Block 0 only trains; fold ``k`` (1..n_folds) tests on block ``k`` and trains on earlier rows:

* expanding (default): every row before the test block;
* rolling: only rows with ``t >= test_start − embargo_ms − window_ms`` (``window_ms`` defaults
  to the time span of block 0);

minus the purged rows (``t + h >= test_start``) and the embargoed ones
(``t >= test_start − embargo_ms``). Times and horizons are epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "splits"]


@dataclass(frozen=True, eq=False)
class Fold:
    """One walk-forward fold. ``train_idx`` / ``test_idx``: sorted int64 row indexes into the
    arrays given to :func:`splits`. ``train_end_ms``: the latest ``t + h`` of the training rows
    (the last candle any training label saw; ``-1`` with no training rows);
    ``test_start_ms`` / ``test_end_ms``: first and last row time of the test block (inclusive)."""

    train_idx: np.ndarray
    test_idx: np.ndarray
    train_end_ms: int
    test_start_ms: int
    test_end_ms: int

    def to_dict(self) -> dict[str, int]:
        return {
            "train_rows": len(self.train_idx),
            "test_rows": len(self.test_idx),
            "train_end_ms": self.train_end_ms,
            "test_start_ms": self.test_start_ms,
            "test_end_ms": self.test_end_ms,
        }


def splits(
    times: np.ndarray,
    horizons_ms: np.ndarray,
    n_folds: int,
    embargo_ms: int = 0,
    mode: str = "expanding",
    window_ms: int | None = None,
) -> list[Fold]:
    """Purged walk-forward folds over rows at ``times`` (int64 epoch ms, any order) whose labels
    span ``[t, t + horizons_ms]``.

    Returns ``n_folds`` :class:`Fold` objects in time order (a fold may have no training rows
    when everything before it is purged; the caller decides). Raises ``ValueError`` when the
    arrays differ in length, a horizon or ``embargo_ms`` is negative, ``mode`` is not
    ``"expanding"``/``"rolling"``, or there are fewer distinct times than ``n_folds + 1``.
    """
    t = np.asarray(times, dtype=np.int64)
    h = np.asarray(horizons_ms, dtype=np.int64)
    if t.ndim != 1 or t.shape != h.shape:
        raise ValueError(f"times and horizons_ms must be 1-D of one length, got {t.shape} and {h.shape}")
    if len(h) and int(h.min()) < 0:
        raise ValueError("horizons_ms must be >= 0")
    if embargo_ms < 0:
        raise ValueError(f"embargo_ms must be >= 0, got {embargo_ms!r}")
    if mode not in ("expanding", "rolling"):
        raise ValueError(f"mode must be 'expanding' or 'rolling', got {mode!r}")
    n_folds = int(n_folds)
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds!r}")
    uniq = np.unique(t)
    if len(uniq) < n_folds + 1:
        raise ValueError(f"{len(uniq)} distinct times cannot make {n_folds} folds (need >= {n_folds + 1})")
    blocks = np.array_split(uniq, n_folds + 1)
    if mode == "rolling" and window_ms is None:
        window_ms = int(blocks[0][-1] - blocks[0][0])
    end = t + h
    folds = []
    for k in range(1, n_folds + 1):
        start, stop = int(blocks[k][0]), int(blocks[k][-1])
        test = np.flatnonzero((t >= start) & (t <= stop))
        train = (t < start - embargo_ms) & (end < start)
        if mode == "rolling":
            train &= t >= start - embargo_ms - int(window_ms)
        tr = np.flatnonzero(train)
        folds.append(Fold(tr, test, int(end[tr].max()) if len(tr) else -1, start, stop))
    return folds
