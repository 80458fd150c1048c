"""The manager's per-strategy parameters ``<name>.<param>`` (issue 11 §3): an override changes
what the sub-strategy trades (real bundled candles, exact counts), and a bad one is refused
with the strategy and field named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from strategies.base import ParamError
from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed, load_csv
from strategies.library.manager import ManagerStrategy, sub_params_of
from strategies.library.signal_strategy import passing_signals
from strategies.registry import create_strategy, get_strategy

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
SYMS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
N = 1500
SWING_ONLY = {"alloc_dca_detector": 0.0, "alloc_channel": 0.0, "alloc_swing": 100.0, "max_active_deals": 3}


@pytest.fixture(scope="module")
def feed() -> Feed:
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.replace('/', '')}-1h.csv.gz")[:N] for s in SYMS})


def run(feed, params):
    specs = [MarketSpec.binance_like(s, float(feed.candles(s).close[-1])) for s in SYMS]
    return Engine(create_strategy("manager", params), specs, SimulatedBroker(), capital=10_000.0).run(feed)


def chosen_times(res):
    return Counter((d.symbol, d.time) for d in res.decisions if d.reason.startswith("swing chosen"))


def test_the_schema_has_each_strategys_own_parameters_with_their_defaults():
    names = {p.name: p for p in ManagerStrategy.PARAMS}
    swing = {p.name: p for p in get_strategy("swing").PARAMS}
    assert names["swing.volume_mult"].default == swing["volume_mult"].default == 2.0
    assert (names["swing.volume_mult"].group, names["swing.volume_mult"].label) == ("swing", "swing: volume mult")
    assert "swing.base_order_size" not in names  # the deal size stays the manager's
    m = create_strategy("manager", {"swing.volume_mult": 1.5})
    assert m.subs["swing"].params["volume_mult"] == 1.5 and m.subs["channel"].params["lookback"] == 50
    assert sub_params_of({"swing.lookback": 30, "alloc_swing": 30.0}, "swing") == {"lookback": 30}


def test_an_override_changes_the_trades(feed):
    default, looser = run(feed, SWING_ONLY), run(feed, {**SWING_ONLY, "swing.volume_mult": 1.5})
    assert (len(default.trades), len(looser.trades)) == (17, 19)
    for res, params in ((default, {}), (looser, {"volume_mult": 1.5})):
        passing = {(s, feed.candles(s).time[i]) for s in SYMS for i in passing_signals("swing", params, feed, s)}
        assert set(chosen_times(res)) <= passing
    assert set(chosen_times(looser)) - set(chosen_times(default))  # entries only the override allows


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"swing.volume_mult": 0.01}, {"swing.volume_mult": "swing: must be >= 0.1 x"}),
        ({"swing.lookback": "x"}, {"swing.lookback": "swing: must be a whole number"}),
        ({"swing.nope": 1}, {"swing.nope": "swing: unknown parameter"}),
        ({"scalping.sma_fast": 30}, {"scalping.sma_fast": "scalping: need sma_fast < sma_mid < sma_slow"}),
    ],
)
def test_an_invalid_override_is_refused_naming_the_strategy_and_field(params, errors):
    with pytest.raises(ParamError) as e:
        create_strategy("manager", params)
    assert e.value.errors == errors
