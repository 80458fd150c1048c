"""Purged walk-forward splits: exact index sets on hand-made times, and the no-leak property."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.core.walkforward import splits

H = 3_600_000
T = np.arange(12, dtype=np.int64) * H  # blocks of 3 distinct times: 0-2 | 3-5 | 6-8 | 9-11


def idx(folds):
    return [(f.train_idx.tolist(), f.test_idx.tolist()) for f in folds]


def test_expanding_without_horizon_or_embargo():
    folds = splits(T, np.zeros(12, np.int64), 3)
    assert idx(folds) == [([0, 1, 2], [3, 4, 5]), ([0, 1, 2, 3, 4, 5], [6, 7, 8]), (list(range(9)), [9, 10, 11])]
    assert [(f.train_end_ms, f.test_start_ms, f.test_end_ms) for f in folds] == [
        (2 * H, 3 * H, 5 * H),
        (5 * H, 6 * H, 8 * H),
        (8 * H, 9 * H, 11 * H),
    ]


def test_purge_drops_training_rows_whose_label_reaches_the_test_block():
    folds = splits(T, np.full(12, 2 * H), 3)
    # train needs t + 2h < test start: fold 1 (start 3h) keeps t <= 0h
    assert idx(folds) == [([0], [3, 4, 5]), ([0, 1, 2, 3], [6, 7, 8]), ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11])]
    assert [f.train_end_ms for f in folds] == [2 * H, 5 * H, 8 * H]


def test_horizons_per_row_purge_only_the_long_labels():
    h = np.zeros(12, np.int64)
    h[1] = 5 * H  # row 1's label runs to 6h: purged from folds testing 3h-5h and 6h-8h
    h[4] = H
    folds = splits(T, h, 3)
    assert idx(folds) == [([0, 2], [3, 4, 5]), ([0, 2, 3, 4, 5], [6, 7, 8]), ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11])]


def test_embargo_sits_between_train_end_and_test_start():
    folds = splits(T, np.zeros(12, np.int64), 3, embargo_ms=H)
    assert idx(folds) == [([0, 1], [3, 4, 5]), ([0, 1, 2, 3, 4], [6, 7, 8]), (list(range(8)), [9, 10, 11])]


def test_rolling_window_defaults_to_the_first_block_span():
    folds = splits(T, np.zeros(12, np.int64), 3, mode="rolling")
    # window 2h: train t >= start - 2h
    assert idx(folds) == [([1, 2], [3, 4, 5]), ([4, 5], [6, 7, 8]), ([7, 8], [9, 10, 11])]
    folds = splits(T, np.zeros(12, np.int64), 3, mode="rolling", window_ms=4 * H)
    assert idx(folds)[2] == ([5, 6, 7, 8], [9, 10, 11])


def test_rows_sharing_a_time_stay_in_one_block_in_any_order():
    t = np.repeat(np.arange(4, dtype=np.int64) * H, 2)[::-1]  # two symbols per candle, reversed
    folds = splits(t, np.zeros(8, np.int64), 3)
    assert idx(folds) == [([6, 7], [4, 5]), ([4, 5, 6, 7], [2, 3]), ([2, 3, 4, 5, 6, 7], [0, 1])]


def test_errors():
    with pytest.raises(ValueError, match="3 distinct times cannot make 3 folds"):
        splits(np.array([0, 1, 2]), np.zeros(3, np.int64), 3)
    with pytest.raises(ValueError, match="mode must be"):
        splits(T, np.zeros(12, np.int64), 3, mode="kfold")
    with pytest.raises(ValueError, match="horizons_ms must be >= 0"):
        splits(T, np.full(12, -1), 3)


@pytest.mark.parametrize("seed", range(5))
def test_property_no_training_label_reaches_its_test_block(seed):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2000, 400)) * H
    h = rng.integers(0, 48, 400) * H
    embargo = int(rng.integers(0, 24)) * H
    for mode in ("expanding", "rolling"):
        folds = splits(t, h, 5, embargo_ms=embargo, mode=mode)
        tested = np.concatenate([f.test_idx for f in folds])
        assert len(np.unique(tested)) == len(tested)  # test blocks are disjoint
        for f in folds:
            assert len(f.train_idx) > 0
            assert (t[f.train_idx] + h[f.train_idx] < f.test_start_ms).all()
            assert (t[f.train_idx] < f.test_start_ms - embargo).all()
            assert (t[f.test_idx] >= f.test_start_ms).all() and (t[f.test_idx] <= f.test_end_ms).all()
            # every row before the block that is neither purged nor embargoed is trained on (expanding)
            if mode == "expanding":
                ok = np.flatnonzero((t + h < f.test_start_ms) & (t < f.test_start_ms - embargo))
                assert f.train_idx.tolist() == ok.tolist()
