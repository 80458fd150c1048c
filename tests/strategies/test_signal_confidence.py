"""Signal strategies' confidence through the ``ConfidenceProvider`` protocol (issue 11: "a
rule-based default now; the ML models plug in later through the same protocol"): the default is
the detector's score; a provider's value gates (``min_*``) and ranks (manager), batched or per
candle; a failing provider falls back to the rule score with the reason; the factory passes it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strategies.backtest import BacktestConfig, BacktestInputError, run_backtest
from strategies.engine import Engine, MarketSpec, SimulatedBroker
from strategies.engine.feed import Feed, load_csv
from strategies.library.confidence import RuleConfidence, SignalConfidence
from strategies.library.manager import ManagerState
from strategies.library.signal_strategy import passing_signals
from strategies.registry import create_strategy, takes_confidence_provider
from strategies.signals import Signal

BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
N = 1500
SOL = "SOL/USDT"


@pytest.fixture(scope="module")
def feed() -> Feed:
    return Feed("1h", {s: load_csv(BUNDLED / f"{s.replace('/', '')}-1h.csv.gz")[:N] for s in (SOL, "BTC/USDT")})


class Const:
    """A batched provider: the same confidence on every candle; counts its calls."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def series(self, symbol, candles):
        self.calls += 1
        return np.full(len(candles), self.value)


class PerCandle:
    """A provider without ``series``: asked per candle (delegates to RuleConfidence)."""

    def __init__(self):
        self.rule = RuleConfidence("long")
        self.asked = []

    def confidence(self, symbol, ctx):
        self.asked.append(ctx.i)
        return self.rule.confidence(symbol, ctx)


class Broken:
    def series(self, symbol, candles):
        raise RuntimeError("model file missing")


class NaNs:
    def confidence(self, symbol, ctx):
        return float("nan")


def run(feed, name, provider=None, params=None):
    strategy = create_strategy(name, params or {}, confidence_provider=provider)
    spec = MarketSpec.binance_like(SOL, float(feed.candles(SOL).close[-1]))
    return Engine(strategy, [spec], SimulatedBroker(), capital=10_000.0).run(feed)


def trades(res):
    return [t.to_dict() for t in res.trades]


def test_a_provider_below_min_refuses_every_candidate_with_the_model_confidence(feed):
    res = run(feed, "swing", Const(0.5))
    candidates = passing_signals("swing", {"min_confidence": 0.0}, feed, SOL)
    assert (len(candidates), len(passing_signals("swing", {}, feed, SOL))) == (30, 16)
    refused = [d for d in res.decisions if d.reason.startswith("signal refused")]
    assert res.trades == [] and len(refused) == 30 == len(res.decisions)
    assert refused[0].reason == (
        "signal refused: confidence 0.50 (model) < min 0.65; "
        "close 0.83% above the 20-candle resistance 128.43 on 3.7x volume"
    )
    assert refused[0].payload == {"confidence": 0.5, "confidence_source": "model", "error": ""}


def test_a_provider_above_min_trades_candidates_its_detector_score_would_refuse(feed):
    high = run(feed, "swing", Const(0.9))
    default = run(feed, "swing")
    assert (len(high.trades), len(default.trades)) == (11, 9)
    entries = [d for d in high.decisions if " entry (" in d.reason]
    assert entries[0].reason.startswith("long entry (market buy, 100 quote, score 0.78, confidence 0.90 (model)): ")
    assert {d.payload["confidence_source"] for d in entries} == {"model"}
    # a detector score of 0.60 < 0.65 traded on the model's 0.9
    assert min(d.payload["signal"]["score"] for d in entries) < 0.65


def test_batched_and_per_candle_providers_give_the_same_trades(feed):
    per = PerCandle()
    a = run(feed, "dca_detector", RuleConfidence("long"))
    b = run(feed, "dca_detector", per)
    assert trades(a) == trades(b) and [d.reason for d in a.decisions] == [d.reason for d in b.decisions]
    # asked exactly on the 15 candidates (rule holds), nowhere else
    assert sorted(set(per.asked)) == sorted(passing_signals("dca_detector", {"min_confidence": 0.0}, feed, SOL))


@pytest.mark.parametrize(
    ("provider", "why"),
    [(Broken(), "rule; model raised RuntimeError('model file missing')"), (NaNs(), "rule; model returned nan")],
)
def test_a_failing_provider_falls_back_to_the_rule_score_with_the_reason(feed, provider, why):
    res = run(feed, "swing", provider)
    default = run(feed, "swing")
    assert trades(res) == trades(default) and len(res.trades) == 9
    entries = [d for d in res.decisions if " entry (" in d.reason]
    assert entries[0].reason.startswith(f"long entry (market buy, 100 quote, score 0.78, confidence 0.78 ({why})): ")
    refused = [d for d in res.decisions if d.reason.startswith("signal refused")]
    assert len(refused) == 30 - 16  # the candidates the rule score (< 0.65) refuses
    assert refused[0].reason.startswith(f"signal refused: confidence 0.60 ({why}) < min 0.65; ")


def test_the_default_is_the_detector_score_unchanged(feed):
    res = run(feed, "fork_score")
    assert len(res.trades) == 30
    entries = [d for d in res.decisions if " entry (" in d.reason]
    assert all("confidence" not in d.reason for d in entries)
    assert {d.payload["confidence_source"] for d in entries} == {"rule"}
    assert [d.payload["confidence"] for d in entries] == [d.payload["signal"]["score"] for d in entries]


def sig(strategy, score, tp=110.0, sl=95.0):
    return Signal("AAA", "1h", 0, strategy, "long", score, {}, 100.0, sl, tp, None, f"{strategy} setup")


def test_the_manager_gates_and_ranks_on_the_providers_confidence():
    m = create_strategy("manager", {"capital": 10_000.0}, confidence_provider=Const(0.5))
    model = lambda v: SignalConfidence(v, "model")  # noqa: E731
    cands = {
        # by score dca (0.8) would win; the model says swing 0.9 vs dca 0.7
        "AAA": [("swing", sig("swing", 0.7), model(0.9)), ("dca_detector", sig("dca_detector", 0.8), model(0.7))],
        # the model's 0.62 is below swing's 0.65 although the detector scored 0.9
        "BBB": [("swing", sig("swing", 0.9), model(0.62))],
    }
    plan = m.plan(ManagerState(), cands, 10_000.0)
    ev = 0.9 * 10 - 0.1 * 5  # EV with p = the model's 0.9
    assert plan["AAA"]["enter"] == ["swing", 750.0, 1, pytest.approx(ev)]
    assert plan["AAA"]["refusals"] == [
        ["dca_detector", "lost conflict on AAA to swing: confidence 0.70 (model) vs 0.90 (model), EV 5.50% vs 8.50%"]
    ]
    assert plan["BBB"] == {
        "enter": None,
        "refusals": [["swing", "below min confidence: confidence 0.62 (model) < 0.65"]],
    }


def test_the_manager_backtest_with_a_provider(feed):
    res = run(feed, "manager", Const(0.3))  # below every strategy's min but channel's 0.30
    per = Counter(d.payload.get("strategy") for d in res.decisions if d.outcome == "info" and "chosen" in d.reason)
    assert set(per) <= {"channel"} and per["channel"] > 0
    refused = [d.reason for d in res.decisions if "below min confidence" in d.reason]
    assert refused and all("confidence 0.30 (model) <" in r for r in refused)


def test_the_factory_and_the_backtest_pass_the_provider(feed):
    assert takes_confidence_provider(type(create_strategy("smart_dca")))
    assert not takes_confidence_provider(type(create_strategy("sma_cross")))
    with pytest.raises(TypeError, match="strategy 'sma_cross' does not take a confidence provider"):
        create_strategy("sma_cross", {}, confidence_provider=Const(0.5))
    c = feed.candles(SOL)
    config = BacktestConfig("swing", {}, (SOL,), "1h", int(c.time[0]), int(c.time[-1]), 10_000.0, 0.0, 0.0)
    spec = MarketSpec.binance_like(SOL, float(c.close[-1]))
    prov = Const(0.5)
    result, _ = run_backtest(config, feed, [spec], confidence_provider=prov)
    assert result.trades == [] and prov.calls == 1
    with pytest.raises(BacktestInputError, match="does not take a confidence provider"):
        run_backtest(BacktestConfig("sma_cross", {}, (SOL,), "1h", 0, 1, 1.0), feed, [spec], confidence_provider=prov)
