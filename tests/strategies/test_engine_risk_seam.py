"""The portfolio-risk seam: the engine calls a RiskManager-shaped object (strategies.risk
contract) once per candle close and before every new deal, and records its decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from strategies.engine import Decision, Engine, MarketSpec
from strategies.engine.testing import T0, make_feed
from strategies.library.smart_dca import SmartDCA

H = 3_600_000
SYM = "ETH/USDT"


@dataclass
class _RD:
    approved: bool
    quote_amount: float
    decisions: list = field(default_factory=list)


class FakeRisk:
    """Blocks the first entry, halves the second; reports a pause on candle 1."""

    def __init__(self):
        self.calls = 0
        self.views = []

    def on_candle(self, time_ms, view):
        self.views.append(view)
        return [Decision(time_ms, "drawdown_pause", "info", "paused")] if time_ms == T0 + H else []

    def check_entry(self, req, view):
        self.calls += 1
        assert view.market.closes(SYM, 10**15, 3)[-1] == req.price  # causal view ends at the candle
        if self.calls == 1:
            return _RD(
                False, 0.0, [Decision(req.time_ms, "daily_loss_limit", "block", "daily loss 3.1% > 3%", req.symbol)]
            )
        return _RD(
            True,
            req.quote_amount / 2,
            [
                Decision(
                    req.time_ms,
                    "position_sizing",
                    "resize",
                    f"{req.quote_amount:g} -> {req.quote_amount / 2:g}",
                    req.symbol,
                )
            ],
        )

    def state_dict(self):
        return {"calls": self.calls}

    def load_state(self, d):
        self.calls = d["calls"]


def test_risk_blocks_resizes_and_is_called_every_candle():
    rows = [(100, 100.5, 99.5, 100)] * 4
    risk = FakeRisk()
    eng = Engine(
        SmartDCA({"base_order_size": 100, "max_safety_orders": 0}),
        [MarketSpec(SYM, 1e-8, 0.01, 0, 1, 0, 0)],
        risk=risk,
        capital=1000,
    )
    res = eng.run(make_feed({SYM: rows}))
    assert [(d.rule, d.outcome, d.time) for d in res.decisions] == [
        ("daily_loss_limit", "block", T0),
        ("drawdown_pause", "info", T0 + H),
        ("position_sizing", "resize", T0 + H),
    ]
    base = [o for o in res.orders if o.tag == "base_order"][0]
    assert base.amount == 0.5 and base.created_at == T0 + 2 * H  # 50 quote at 100
    assert len(risk.views) == 4 and risk.views[-1].positions[0].notional == 50.0
    assert res.state.risk == {"calls": 2}
    # naive loop, same answers
    risk2 = FakeRisk()
    eng2 = Engine(
        SmartDCA({"base_order_size": 100, "max_safety_orders": 0}),
        [MarketSpec(SYM, 1e-8, 0.01, 0, 1, 0, 0)],
        risk=risk2,
        capital=1000,
        skip=False,
    )
    assert eng2.run(make_feed({SYM: rows})).to_dict() == res.to_dict()
