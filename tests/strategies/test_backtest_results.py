"""Backtest results as the run page reads them: chart helpers (axis precision, curves, trade
markers) and the stored report of a real run on the bundled candles (pairs, open deals,
decision log)."""

from __future__ import annotations

import pytest

from strategies.charts import axis_precision, curves, trade_markers


class TestAxisPrecision:
    @pytest.mark.parametrize(
        "values,kw,expected",
        [
            ([0.0, -1.6], {}, 1),  # ticks 0.32 apart: one decimal
            ([0.0, -0.2], {}, 2),  # ticks 0.04 apart
            ([0.0, -0.2, -1.6], {}, 1),
            ([0.0, -0.012], {}, 3),
            ([0.0, -25.0], {}, 0),
            ([10_000.0, 10_400.0], {}, 0),
            ([10_000.0, 10_400.0], {"min_decimals": 2}, 2),
            ([0.0, 0.0], {}, 1),  # flat at zero: the range is taken as 1
            ([0.25, 0.25], {}, 2),  # flat: its magnitude is the range
            ([], {}, 2),
            ([0.0, -1e-12], {"max_decimals": 6}, 6),
            ([float("nan"), 0.0, -1.6], {}, 1),
        ],
    )
    def test_fits_the_range(self, values, kw, expected):
        assert axis_precision(values, **kw) == expected


def test_curves_drawdown_and_last_point_wins():
    equity, drawdown = curves(
        [
            {"time": "2025-04-01T00:00:00Z", "equity": 100.0},
            {"time": "2025-04-01T01:00:00Z", "equity": 110.0},
            {"time": "2025-04-01T01:00:00Z", "equity": 120.0},
            {"time": "2025-04-01T02:00:00Z", "equity": 108.0},
            {"time": "2025-04-01T03:00:00Z", "equity": float("nan")},
        ]
    )
    assert equity == [
        {"time": 1743465600, "value": 100.0},
        {"time": 1743469200, "value": 120.0},
        {"time": 1743472800, "value": 108.0},
    ]
    assert [p["value"] for p in drawdown] == [0.0, 0.0, -10.0]


def test_trade_markers_entry_safety_exit_on_their_bars():
    trade = {
        "side": "long",
        "orders": [
            {"time": "2025-04-01T00:00:00Z", "side": "buy", "tag": "base", "price": 100.0},
            {"time": "2025-04-01T02:30:00Z", "side": "buy", "tag": "so1", "price": 98.0},
            {"time": "2025-04-01T05:10:00Z", "side": "sell", "tag": "take_profit", "price": 101.0},
        ],
    }
    still_open = {
        "side": "long",
        "orders": [{"time": "2025-04-01T06:00:00Z", "side": "buy", "tag": "base", "price": 99.0}],
    }
    t0 = 1743465600
    assert trade_markers([trade], [still_open], bar_s=3600) == [
        {"shape": "arrowUp", "color": "#16c784", "text": "entry", "position": "belowBar", "time": t0, "price": 100.0},
        {"shape": "circle", "color": "#f0b90b", "text": "SO", "position": "aboveBar", "time": t0 + 7200, "price": 98.0},
        {
            "shape": "arrowDown",
            "color": "#ea3943",
            "text": "take_profit",
            "position": "aboveBar",
            "time": t0 + 5 * 3600,
            "price": 101.0,
        },
        {
            "shape": "arrowUp",
            "color": "#16c784",
            "text": "entry",
            "position": "belowBar",
            "time": t0 + 6 * 3600,
            "price": 99.0,
        },
    ]
