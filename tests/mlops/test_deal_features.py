"""Deal-state features of an open DCA deal."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from mlops.core.features import DEAL_FEATURE_NAMES, deal_features

H = 3_600_000
BASE = dict(
    side="long",
    avg_entry=100.0,
    close=95.0,
    safety_orders_filled=2,
    safety_orders_max=5,
    spent_quote=300.0,
    max_spend_quote=1000.0,
    opened_at_ms=1_700_000_000_000,
    now_ms=1_700_000_000_000 + 30 * H,
    take_profit_price=101.5,
)


def row(**kw):
    return dict(zip(DEAL_FEATURE_NAMES, deal_features(**{**BASE, **kw}).tolist(), strict=True))


def test_names():
    assert DEAL_FEATURE_NAMES == (
        "deal_pnl_pct",
        "deal_drawdown_pct",
        "deal_so_used",
        "deal_so_used_frac",
        "deal_spend_frac",
        "deal_hours_open",
        "deal_tp_distance_pct",
    )


def test_long_deal_in_drawdown():
    out = deal_features(**BASE)
    assert out.dtype == np.float32 and out.shape == (7,)
    assert row() == {
        "deal_pnl_pct": float(np.float32(-5.0)),
        "deal_drawdown_pct": float(np.float32(5.0)),
        "deal_so_used": 2.0,
        "deal_so_used_frac": float(np.float32(0.4)),
        "deal_spend_frac": float(np.float32(0.3)),
        "deal_hours_open": 30.0,
        "deal_tp_distance_pct": float(np.float32((101.5 / 95 - 1) * 100)),
    }


def test_short_deal_in_profit_with_decimals_and_no_tp():
    r = row(
        side="short",
        avg_entry=Decimal("100"),
        close=Decimal("80"),
        spent_quote=Decimal("0"),
        safety_orders_filled=0,
        safety_orders_max=0,
        take_profit_price=None,
    )
    assert r["deal_pnl_pct"] == 25.0  # 100 / 80 - 1
    assert r["deal_drawdown_pct"] == 0.0
    assert r["deal_so_used_frac"] == 0.0 and r["deal_spend_frac"] == 0.0
    assert math.isnan(r["deal_tp_distance_pct"])
    assert row(side="short", close=100.0, take_profit_price=98.0)["deal_tp_distance_pct"] == float(np.float32(2.0))


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"side": "buy"}, "side must be"),
        ({"avg_entry": 0}, "avg_entry must be a positive"),
        ({"close": -1.0}, "close must be a positive"),
        ({"max_spend_quote": 0}, "max_spend_quote must be a positive"),
        ({"spent_quote": -1}, "spent_quote must be >= 0"),
        ({"safety_orders_filled": 6}, "within 0..5"),
        ({"safety_orders_filled": -1}, "within 0..5"),
        ({"now_ms": BASE["opened_at_ms"] - 1}, "is before opened_at_ms"),
        ({"take_profit_price": 0.0}, "take_profit_price must be a positive"),
    ],
)
def test_bad_inputs_raise(kw, message):
    with pytest.raises(ValueError, match=message):
        deal_features(**{**BASE, **kw})
