"""PSI of live feature values against training bins (mlops.core.drift), worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops.core.drift import EPSILON, psi, psi_level

EDGES = [0.0, 1.0, 2.0, 3.0, 4.0]
QUARTERS = [0.25, 0.25, 0.25, 0.25]


def test_same_distribution_is_zero():
    assert psi(EDGES, QUARTERS, [0.5, 1.5, 2.5, 3.5]) == 0.0


def test_shifted_mass_by_hand():
    # live shares 1/8, 2/8, 1/8, 4/8 against 1/4 each:
    # (-1/8)ln(1/2) + 0 + (-1/8)ln(1/2) + (1/4)ln 2 = (1/2) ln 2
    value = psi(EDGES, QUARTERS, [0.5, 1.5, 1.5, 2.5, 3.5, 3.5, 3.5, 3.5])
    assert value == pytest.approx(0.5 * math.log(2), abs=1e-15)
    assert round(value, 6) == 0.346574
    assert psi_level(value) == "shifted"


def test_out_of_range_values_count_in_the_end_bins_and_an_edge_belongs_to_the_upper_bin():
    # 0.5 -> bin 0; 1.0 (edge), 1.5 and 5 (above the last edge) -> bin 1: shares 1/4, 3/4
    # (-1/4)ln(1/2) + (1/4)ln(3/2) = (1/4) ln 3
    assert psi([0.0, 1.0, 2.0], [0.5, 0.5], [0.5, 1.5, 5.0, 1.0]) == pytest.approx(0.25 * math.log(3), abs=1e-15)


def test_empty_bins_are_floored_at_epsilon_and_missing_values_ignored():
    # all values in bin 0 (-3 is below e0); three empty bins at EPSILON:
    # (1 - 1/4)ln 4 + 3 (1e-4 - 1/4) ln(1e-4 / 0.25)
    value = psi(EDGES, QUARTERS, [0.5, -3.0, None, float("nan")])
    assert EPSILON == 1e-4
    assert value == pytest.approx(0.75 * math.log(4) + 3 * (1e-4 - 0.25) * math.log(1e-4 / 0.25), abs=1e-12)
    assert round(value, 4) == 6.9054


def test_no_live_values_is_none():
    assert psi(EDGES, QUARTERS, []) is None
    assert psi(EDGES, QUARTERS, [None, float("nan")]) is None
    assert psi_level(None) == "none"


@pytest.mark.parametrize(
    ("edges", "fractions", "message"),
    [
        ([0.0], [], "at least 2 edges"),
        ([0.0, 1.0, 2.0], [1.0], "3 edges need 2 fractions, got 1"),
        ([0.0, 1.0, 1.0], [0.5, 0.5], "strictly increasing"),
    ],
)
def test_bad_bins_are_refused(edges, fractions, message):
    with pytest.raises(ValueError, match=message):
        psi(edges, fractions, [0.5])


def test_levels_at_the_thresholds():
    assert [psi_level(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "shifted",
        "shifted",
    ]


def test_a_feature_constant_in_training_has_one_bin_and_no_drift():
    from mlops.services.pipeline import feature_bins

    bins = feature_bins(np.full((50, 1), 3.0, np.float32), ["const"])["const"]
    assert bins == {"edges": [3.0, 3.0], "fractions": [1.0]}
    assert psi(bins["edges"], bins["fractions"], [3.0, 7.0, -1.0]) == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        psi([1.0, 1.0, 2.0], [0.5, 0.5], [1.5])
