"""The feature set on the 21 symbols × 20 months of ../shared/data (skips when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.core.features import FEATURE_NAMES, compute_features, features_at, features_latest_many
from strategies.engine.feed import load_csv

pytestmark = pytest.mark.shared_data


@pytest.fixture
def shared(shared_data_dir):
    path = shared_data_dir / "spot"
    return {p.name.split("-")[0]: load_csv(p) for p in sorted(path.glob("*-1h.csv.gz"))}


def test_shared_data_truncation_and_windows(shared):
    assert len(shared) == 21
    btc = shared["BTCUSDT"]
    full = {s: compute_features(c, btc) for s, c in shared.items()}
    for s, c in shared.items():
        f = full[s]
        assert f.values.shape == (len(c), len(FEATURE_NAMES))
        # after a year of history every feature is defined
        assert np.isfinite(f.values[8760:]).all(), s
        cut = len(c) - 5000
        part = compute_features(c[:cut], btc.until(int(c.time[cut - 1])))
        assert np.array_equal(part.values, f.values[:cut], equal_nan=True), s
        for i in (250, 2100, 9000, len(c) - 1):
            np.testing.assert_allclose(features_at(c, i, btc), f.values[i], rtol=1e-4, atol=1e-5, err_msg=s)
    # the inference path for every symbol at several candles
    for back in (0, 777, 6000):
        batch = {s: c[len(c) - back - 2000 : len(c) - back] for s, c in shared.items()}
        symbols, rows = features_latest_many(batch, btc)
        ref = np.stack([full[s].values[len(shared[s]) - back - 1] for s in symbols])
        np.testing.assert_allclose(rows, ref, rtol=1e-4, atol=1e-5)
