"""The five detectors as strategies on the ONE engine (issue 11 §1–2): each backtested on real
bundled candles with exact trades, deals opened exactly at the detector's passing signals, the
same result with and without candle skipping and across a state round-trip, and Smart DCA's
``fork_signal`` start condition. The paper-bot replay equality is in
``test_signal_strategy_replay.py``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strategies.base import ParamError
from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed, load_csv
from strategies.registry import create_strategy, get_strategy
from strategies.signals import DetectorInput, get_detector

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
HOUR = 3_600_000
N = 1500  # candles: 2025-03-05 00:00 .. 2025-05-06 11:00 UTC
SOL = "SOL/USDT"


@pytest.fixture(scope="module")
def feed() -> Feed:
    """SOL/USDT (traded) and BTC/USDT (fork_score's market condition), 1h, first N candles."""
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.replace('/', '')}-1h.csv.gz")[:N] for s in (SOL, "BTC/USDT")})


def _run(feed, name, params=None, *, skip=True, state=None, end_ms=None, start_ms=None):
    strategy = create_strategy(name, params or {})
    spec = MarketSpec.binance_like(SOL, float(feed.candles(SOL).close[-1]))
    engine = Engine(strategy, [spec], SimulatedBroker(), capital=10_000.0, skip=skip)
    return engine.run(feed, start_ms=start_ms, end_ms=end_ms, state=state)


def _passing_times(feed, name) -> list[int]:
    c = feed.candles(SOL)
    sigs = get_detector(name).detect(DetectorInput(SOL, "1h", c, feed.candles("BTC/USDT")))
    return [s.time for s in sigs if s.passed]


# name -> (trades, first entry price, exit reasons)
EXPECTED = {
    "channel": (23, 134.29, {"range_break": 9, "stop_loss": 12, "take_profit": 2}),
    "dca_detector": (3, 116.28089754959161, {"stop_loss": 2, "take_profit": 1}),
    "fork_score": (30, 140.61, {"stop_loss": 23, "take_profit": 7}),
    "scalping": (95, 152.39, {"stop_loss": 64, "take_profit": 31}),
    "swing": (9, 129.5, {"stop_loss": 3, "trailing_stop": 5, "take_profit": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_backtest_trades_exactly_and_opens_at_passing_signals(feed, name):
    result = _run(feed, name)
    n, first_entry, reasons = EXPECTED[name]
    assert len(result.trades) == n
    assert result.trades[0].entry_price == pytest.approx(first_entry, rel=0, abs=1e-9)
    assert dict(Counter(t.exit_reason for t in result.trades)) == reasons
    entries = [d for d in result.decisions if d.outcome == "info" and " entry (" in d.reason]
    skipped = [d for d in result.decisions if d.outcome == "block" and d.reason.startswith("signal skipped")]
    passing = _passing_times(feed, name)
    # every passing signal is traded or skipped with a reason, and nothing else opens a deal
    assert sorted(d.time for d in entries + skipped) == passing
    c = feed.candles(SOL)
    traded = {t.deal_id for t in result.trades} | {d["deal_id"] for d in result.open_deals}
    pending = [d.time for d in entries if d.payload["deal_id"] not in traded]
    assert pending in ([], [int(c.time[-1])])  # only an entry decided on the last candle is unfilled
    for d, t in zip(entries, result.trades, strict=False):
        assert d.payload["deal_id"] == t.deal_id and d.payload["signal"]["time"] == d.time
        assert d.reason.split(": ", 1)[1].startswith(d.payload["signal"]["reason"])
        if name == "dca_detector":  # a grid level fills at the earliest on the next candle
            assert t.opened_at >= d.time + HOUR
        else:  # market entry at the next candle's open
            assert t.opened_at == d.time + HOUR
            assert t.entry_price == pytest.approx(float(c.open[c.index_at(d.time) + 1]), rel=0, abs=1e-9)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_skipping_and_state_round_trip_change_nothing(feed, name):
    whole = _run(feed, name)
    assert [t.to_dict() for t in _run(feed, name, skip=False).trades] == [t.to_dict() for t in whole.trades]
    half = int(feed.candles(SOL).time[N // 2])
    first = _run(feed, name, end_ms=half)
    state = type(first.state).from_dict(json.loads(json.dumps(first.state.to_dict())))
    second = _run(feed, name, state=state)
    assert [t.to_dict() for t in first.trades + second.trades] == [t.to_dict() for t in whole.trades]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_is_the_detectors_plus_the_trading_params(name):
    cls = get_strategy(name)
    names = [p["name"] for p in cls.schema()["params"]]
    detector = [p["name"] for p in get_detector(name).schema()]
    assert names == detector + ["base_order_size", "max_active_deals", "entry_timeout"]
    with pytest.raises(ParamError) as e:
        cls({"nope": 1, "base_order_size": -1})
    assert e.value.errors == {"nope": "unknown parameter", "base_order_size": "must be >= 0 quote"}


def test_swing_trailing_stop_rises_with_the_peak_and_exits_below_it(feed):
    result = _run(feed, "swing")
    c = feed.candles(SOL)
    trail = [t for t in result.trades if t.exit_reason == "trailing_stop"]
    t = trail[0]
    a, b = c.index_at(t.opened_at), c.index_at(t.closed_at)
    peak = float(c.high[a:b].max())  # highest high of the closed candles before the exit candle
    stops = [o for o in result.orders if o.client_order_id in t.orders and o.tag == "trailing_stop"]
    assert len(stops) > 1 and [o.status for o in stops[:-1]] == ["canceled"] * (len(stops) - 1)
    assert [o.stop_price for o in stops] == sorted(o.stop_price for o in stops)  # only ever rises
    last = stops[-1]
    assert last.status == "filled"
    spec = MarketSpec.binance_like(SOL, float(c.close[-1]))
    assert last.stop_price == spec.round_price(peak * (1 - 7 / 100)) == 127.1403
    assert t.exit_price <= last.stop_price and t.exit_price > t.entry_price * 0.95


def test_channel_range_break_closes_at_the_next_open(feed):
    result = _run(feed, "channel")
    c = feed.candles(SOL)
    breaks = [d for d in result.decisions if d.outcome == "exit" and d.reason.startswith("range break")]
    trades = {t.closed_at: t for t in result.trades if t.exit_reason == "range_break"}
    assert len(breaks) == len(trades) == EXPECTED["channel"][2]["range_break"]
    for d in breaks:
        t = trades[d.time + HOUR]
        assert t.exit_price == pytest.approx(float(c.open[c.index_at(d.time) + 1]), rel=0, abs=1e-9)


def test_smart_dca_fork_signal_starts_its_first_deal_at_the_first_passing_fork_candle(feed):
    params = {"start_condition": "fork_signal", "take_profit": 2.0, "max_safety_orders": 2}
    result = _run(feed, "smart_dca", params)
    first = _passing_times(feed, "fork_score")[0]
    assert result.trades[0].opened_at == first + HOUR  # base order decided at that close
    c = feed.candles(SOL)
    assert result.trades[0].entry_price == pytest.approx(float(c.open[c.index_at(first) + 1]), rel=0, abs=1e-9)
    opens = np.array([t.opened_at for t in result.trades]) - HOUR
    assert set(opens.tolist()) <= set(_passing_times(feed, "fork_score"))
    with pytest.raises(ParamError):
        create_strategy("smart_dca", {"start_condition": "fork"})
