"""Smart DCA with plug-in models: an exit scorer with neither ``series`` nor ``exit_factors``
(an ML model's) is asked on every candle of an open deal and decides exactly as the vectorized
rule scorer it wraps; what it is shown about the deal; a spend model lowering the spend guard's
cap with a reason naming it; ``create_strategy`` passing the models through."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategies.engine import Engine, Feed, MarketSpec, SimulatedBroker, load_csv
from strategies.engine.testing import T0, make_feed
from strategies.library.confidence import DealSnapshot, RuleExitScorer
from strategies.library.smart_dca import SmartDCA
from strategies.registry import create_strategy
from tests.mlops.conftest import DCA_LADDER

H = 3_600_000
SYM = "BTC/USDT"
BUNDLED = Path(__file__).resolve().parents[2] / "trading" / "data" / "bundled"
SPEC = MarketSpec(SYM, 1e-8, 0.01, 0.0, 1.0, 0, 0)
DCA = dict(
    **DCA_LADDER,
    max_active_deals=2,
    safu_exit_enabled=True,
    safu_threshold=0.62,
)


class ScoreOnly:
    """The rule scorer behind the bare protocol: no ``series``, no ``exit_factors``."""

    def __init__(self) -> None:
        self.rule = RuleExitScorer(20.0)
        self.calls = 0

    def score(self, symbol, ctx, deal):
        self.calls += 1
        return self.rule.score(symbol, ctx, deal)


def test_a_scorer_without_series_is_asked_per_candle_and_decides_like_the_vectorized_rule():
    feed = Feed("1h", {s: load_csv(BUNDLED / f"{s.split('/')[0]}USDT-1h.csv.gz") for s in ("ETH/USDT", "SOL/USDT")})
    specs = [MarketSpec(s, 1e-8, 0.01, 0.0, 1.0, 10, 10) for s in ("ETH/USDT", "SOL/USDT")]
    t = feed.candles("ETH/USDT").time
    runs = []
    for scorer in (None, ScoreOnly()):
        eng = Engine(SmartDCA(DCA, exit_scorer=scorer), specs, SimulatedBroker(), capital=10_000)
        runs.append((eng.run(feed, start_ms=int(t[200]), end_ms=int(t[2400])), scorer))
    (vec, _), (naive, scorer) = runs
    safu = [tr for tr in vec.trades if tr.exit_reason == "safu_exit"]
    assert len(safu) >= 3  # the rule fires on this data: the comparison is not vacuous
    key = [(tr.symbol, tr.opened_at, tr.closed_at, tr.exit_reason, round(tr.pnl, 9)) for tr in vec.trades]
    assert key == [(tr.symbol, tr.opened_at, tr.closed_at, tr.exit_reason, round(tr.pnl, 9)) for tr in naive.trades]
    assert [d.reason for d in vec.decisions if d.rule == "safu_exit"] == [
        d.reason for d in naive.decisions if d.rule == "safu_exit"
    ]
    # asked at every candle of every deal after its last entry fill: far more than once per deal
    assert scorer.calls > 10 * len(naive.trades)


class Recorder:
    last_source = "safu_exit v7"

    def __init__(self) -> None:
        self.seen: list[tuple[int, DealSnapshot]] = []

    def score(self, symbol, ctx, deal):
        self.seen.append((ctx.i, deal))
        return 0.9 if ctx.i >= 4 else 0.1


def test_the_scorer_sees_the_deal_state_and_the_reason_names_it():
    rows = [
        (100, 100.5, 99.5, 100),  # 0: base order decided
        (100, 100.2, 99.8, 100),  # 1: base fills at 100 (1 unit)
        (99.5, 99.6, 98.5, 99),  # 2: SO1 at 99 fills (10 quote)
        (99, 99.2, 98.8, 99),
        (98, 98.2, 97.8, 98),  # 4: score 0.9 -> exit
        (98, 98.2, 97.8, 98),
    ]
    rec = Recorder()
    params = dict(
        base_order_size=100,
        safety_order_size=10,
        max_safety_orders=1,
        price_deviation=1.0,
        take_profit=1.0,
        safu_exit_enabled=True,
        safu_threshold=0.8,
    )
    eng = Engine(SmartDCA(params, exit_scorer=rec), [SPEC], SimulatedBroker(), capital=10_000)
    res = eng.run(make_feed({SYM: rows}))
    (t,) = res.trades
    assert (t.exit_reason, t.closed_at) == ("safu_exit", T0 + 5 * H)
    i, snap = rec.seen[-1]
    amount = 1.0 + 10 / 99
    assert i == 4
    assert snap.side == "long" and snap.safety_orders_filled == 1 and snap.opened_at == T0 + H
    assert snap.spent_quote == pytest.approx(110.0, abs=1e-6) and snap.amount == pytest.approx(amount, abs=1e-8)
    assert snap.entry_price == pytest.approx(110.0 / amount, rel=1e-9)
    assert snap.take_profit_price == round(110.0 / amount * 1.01, 2)
    (d,) = [d for d in res.decisions if d.rule == "safu_exit"]
    dd = (110.0 / amount - 98) / (110.0 / amount) * 100
    assert d.reason == f"exit score 0.90 (safu_exit v7) >= 0.8 (drawdown {dd:.2f}%); deal closed"
    assert d.payload["source"] == "safu_exit v7"


class FixedSpend:
    margin = 0.25
    last_source = "dca_spend v2"

    def __init__(self, fraction):
        self.fraction = fraction
        self.asked: list[DealSnapshot] = []

    def spend_fraction(self, symbol, ctx, deal):
        self.asked.append(deal)
        return self.fraction


SPEND = dict(
    base_order_size=100,
    safety_order_size=100,
    max_safety_orders=3,
    active_safety_orders=3,
    price_deviation=1.0,
    step_scale=1.0,
    volume_scale=1.0,
    take_profit=1.0,
    spend_guard_enabled=True,
    spend_guard_max_pct=100,
    spend_guard_k=0,
)
FLAT = [(100, 100.5, 99.5, 100), (100, 100.2, 99.8, 100), (100, 100.2, 99.8, 100)]


def test_a_spend_model_lowers_the_spend_guard_cap_with_the_models_name():
    # budget 400: base 100 + 3 x 100; predicted 0.4 x 1.25 = 50 % -> only SO1 (50 %) fits
    model = FixedSpend(0.4)
    res = Engine(SmartDCA(SPEND, spend_model=model), [SPEC], SimulatedBroker(), capital=10_000).run(
        make_feed({SYM: FLAT})
    )
    assert [o.so_index for o in res.orders if o.tag == "safety_order"] == [1]
    (d,) = [d for d in res.decisions if d.rule == "spend_guard"]
    assert d.outcome == "block"
    avg = 200 / (1 + 100 / 99)  # base at 100 and the resting SO1 at 99, before SO2 at 98
    assert f"{(avg - 98) / avg * 100:.2f}" == "1.51"
    assert d.reason == (
        "deal spend 75.0% > cap 50% by dca_spend v2 (predicted spend 40.0% + 25% margin) (rule cap 100%)"
        " (drawdown 1.51%); safety order 2 not placed"
    )
    assert (d.payload["rule_cap_pct"], d.payload["model_cap_pct"], d.payload["cap_pct"]) == (100.0, 50.0, 50.0)
    assert model.asked[0].spent_quote == 100.0 and model.asked[0].safety_orders_filled == 0
    # the rule cap alone (no model, or a model predicting more than the rule allows) places all three
    for m in (None, FixedSpend(0.9), FixedSpend(None)):
        res = Engine(SmartDCA(SPEND, spend_model=m), [SPEC], SimulatedBroker(), capital=10_000).run(
            make_feed({SYM: FLAT})
        )
        assert [o.so_index for o in res.orders if o.tag == "safety_order"] == [1, 2, 3]
        assert not [d for d in res.decisions if d.rule == "spend_guard"]


def test_create_strategy_passes_the_models_to_strategies_that_take_them():
    s = create_strategy("smart_dca", {}, exit_scorer=ScoreOnly(), spend_model=FixedSpend(0.5))
    assert isinstance(s.exit_scorer, ScoreOnly) and s.spend_model.fraction == 0.5
    assert create_strategy("smart_dca", {}).spend_model is None
    with pytest.raises(TypeError, match="strategy 'sma_cross' does not take an exit_scorer"):
        create_strategy("sma_cross", {}, exit_scorer=ScoreOnly())
    with pytest.raises(TypeError, match="strategy 'swing' does not take a spend_model"):
        create_strategy("swing", {}, spend_model=FixedSpend(0.5))
