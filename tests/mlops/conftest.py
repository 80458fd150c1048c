"""Fixtures and constants shared by the tests/mlops modules."""

from __future__ import annotations

import pytest
from django.test import override_settings

# A Smart DCA ladder the labels and serving tests trade (quote amounts; percent deviations)
DCA_LADDER = {
    "base_order_size": 50,
    "safety_order_size": 50,
    "max_safety_orders": 4,
    "active_safety_orders": 2,
    "price_deviation": 1.0,
    "step_scale": 1.3,
    "volume_scale": 1.4,
    "take_profit": 1.5,
}


@pytest.fixture
def models_dir(tmp_path):
    """``MARKET7_MODELS_DIR`` in a fresh folder, with the process's loaded-model cache emptied
    before and after (a model of another test must not serve this one's bots)."""
    from mlops.services import serving

    serving._predictors.clear()
    with override_settings(MARKET7_MODELS_DIR=tmp_path / "models"):
        yield tmp_path / "models"
    serving._predictors.clear()
