"""The Signal record and the detector registry (strategies/signals/base.py)."""

from __future__ import annotations

import pytest

from strategies.signals import Component, Signal, get_detector, rrr


def _signal(**kw):
    fields = {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "time": 1_717_243_200_000,
        "strategy": "fork_score",
        "side": "long",
        "score": 0.7,
        "components": {"rsi": Component(28.5, 0.25)},
        "entry": 100.0,
        "stop_loss": 95.0,
        "take_profit": 110.0,
        "rrr": 2.0,
        "reason": "RSI recovering from oversold",
    } | kw
    return Signal(**fields)


def test_rrr_is_reward_over_risk():
    assert rrr(100.0, 95.0, 110.0) == 2.0
    assert rrr(100.0, 104.0, 94.0) == 1.5  # a short
    assert rrr(100.0, 95.0, None) is None and rrr(100.0, 100.0, 110.0) is None


def test_to_dict_is_the_scan_json_shape():
    d = _signal().to_dict()
    assert d["components"] == {"rsi": {"value": 28.5, "points": 0.25}}
    assert (d["symbol"], d["strategy"], d["time"], d["side"], d["score"], d["rrr"]) == (
        "BTC/USDT",
        "fork_score",
        1_717_243_200_000,
        "long",
        0.7,
        2.0,
    )
    assert d["passed"] is True and d["extra"] == {}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"side": "buy"}, "Signal.side must be one of"),
        ({"score": 1.2}, "Signal.score must be in [0, 1]"),
        ({"entry": float("nan")}, "Signal.entry must be finite"),
    ],
)
def test_bad_signals_are_refused(kw, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _signal(**kw)


def test_unknown_detector_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown detector 'nope'"):
        get_detector("nope")


def test_non_finite_numbers_become_null_in_json():
    s = _signal(
        components={"btc": Component(float("nan"), 0.0)}, extra={"atr": float("inf"), "grid": [1.0, float("nan")]}
    )
    d = s.to_dict()
    assert d["components"] == {"btc": {"value": None, "points": 0.0}}
    assert d["extra"] == {"atr": None, "grid": [1.0, None]}
    import json

    assert "NaN" not in json.dumps(d, allow_nan=False)
