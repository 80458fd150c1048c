"""The deal models serve Smart DCA (issue 12, inference): an active ``safu_exit`` classifier is
the bot's SAFU exit scorer and closes deals the rule scorer keeps, with the model and its score
in the reason; a tampered artifact falls back to the rules with the reason recorded; an active
``dca_spend`` regressor lowers the spend guard's cap in a backtest, named in the reason. The
models are real XGBoost boosters on the real feature set (candle + deal-state features)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import xgboost as xgb

from mlops.core.artifacts import save_booster
from mlops.core.deal_features import DEAL_FEATURE_NAMES, deal_features
from mlops.core.features import FEATURE_NAMES, compute_features, feature_hash
from mlops.core.predict import Predictor
from mlops.models import ModelVersion
from strategies.backtest import BacktestConfig, run_backtest
from strategies.engine import Candles, Feed, MarketSpec
from strategies.providers import confidence_provider_for, providers_for
from tests.mlops.conftest import DCA_LADDER
from tests.trading.conftest import load_bundled, make_replay_bot, step_at
from trading.models import BotEvent, Fill, Market, Order, Trade
from trading.selectors.candles import candles_arrays
from trading.services.feeds import feed_origin_ms

NAMES = (*FEATURE_NAMES, *DEAL_FEATURE_NAMES)
SAFU = {
    "max_active_deals": 2,
    "take_profit": 1.0,
    "stop_loss": 5.0,
    "safu_exit_enabled": True,
    "safu_threshold": 0.9,
}
TEN_DAYS = 10 * 24


@pytest.fixture
def markets(db):
    return [load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz")]


def register(owner, directory, model, kind: str) -> ModelVersion:
    path, sha = save_booster(model, directory / f"u{owner.pk}", f"{kind}-smart_dca-v1")
    return ModelVersion.objects.create(
        owner=owner,
        kind=kind,
        strategy="smart_dca",
        version=1,
        status="active",
        train_start=datetime(2024, 1, 1, tzinfo=UTC),
        train_end=datetime(2024, 12, 31, tzinfo=UTC),
        features=list(NAMES),
        features_hash=feature_hash(NAMES),
        artifact_path=str(path.relative_to(directory)),
        artifact_sha256=sha,
    )


def noise(rows=400, seed=3):
    return np.random.default_rng(seed).normal(size=(rows, len(NAMES))).astype(np.float32)


def safu_model(owner, directory) -> ModelVersion:
    """Exit (1) exactly when the deal is more than 0.5 % under its average entry: the score is
    near 1 for any such deal, near 0 otherwise, whatever the candles say."""
    X = noise()
    dd = NAMES.index("deal_drawdown_pct")
    X[:, dd] = np.abs(X[:, dd]) * 2
    y = (X[:, dd] > 0.5).astype(int)
    model = xgb.XGBClassifier(n_estimators=30, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
    return register(owner, directory, model, "safu_exit")


def trades(bot):
    return list(Trade.objects.filter(bot=bot).order_by("opened_at", "id"))


def test_an_active_safu_model_closes_deals_the_rule_scorer_keeps(markets, models_dir, user, other_user):
    v = safu_model(user, models_dir)
    got = providers_for(owner_id=user.pk, strategy="smart_dca", params=SAFU)
    assert sorted(got) == ["exit_scorer"] and got["exit_scorer"].label == "safu_exit v1"
    assert confidence_provider_for(owner_id=user.pk, strategy="smart_dca", params=SAFU) is None
    served = make_replay_bot(user, params=SAFU)
    plain = make_replay_bot(other_user, params=SAFU)  # no model: the rule scorer
    assert step_at(served, TEN_DAYS).outcome == "stepped"
    assert step_at(plain, TEN_DAYS).outcome == "stepped"
    assert not [t for t in trades(plain) if t.exit_reason == "safu_exit"]
    assert not BotEvent.objects.filter(bot=plain, rule="safu_exit").exists()
    closed = sorted((t for t in trades(served) if t.exit_reason == "safu_exit"), key=lambda t: (t.closed_at, t.pk))
    assert len(closed) == 33
    events = list(
        BotEvent.objects.filter(bot=served, rule="safu_exit", kind=BotEvent.Kind.DECISION).order_by("time", "id")
    )
    assert len(events) == len(closed)
    predictor = Predictor(models_dir / v.artifact_path, v.artifact_sha256, v.features, v.kind)
    origin = feed_origin_ms(served)  # the bot's feed: from its warm-up origin on
    btc = candles("BTC/USDT", origin)
    for t, ev in zip(closed, events, strict=True):
        assert ev.outcome == "exit"
        assert ev.reason.startswith("exit score ") and " (safu_exit v1) >= 0.9 (drawdown " in ev.reason
        score = float(ev.reason.split()[2])
        dd = float(ev.reason.split("(drawdown ")[1].split("%")[0])
        assert 0.9 <= score <= 1.0 and dd > 0.5
        # the score again, independently: candle features at the decision candle (the close
        # before the exit fill) + the deal's state there from its stored fills
        sym = t.market.symbol
        c = candles(sym, origin)
        i = int(np.searchsorted(c.time, int(t.closed_at.timestamp() * 1000))) - 1
        row = compute_features(c[: i + 1], btc=btc if sym != "BTC/USDT" else c[: i + 1]).values[-1]
        x = np.concatenate([row, deal_row(t, c, i)]).astype(np.float32)[None, :]
        assert f"{float(predictor.predict(x)[0]):.2f}" == f"{score:.2f}"
    assert not BotEvent.objects.filter(bot=served, rule="ml_fallback").exists()


def candles(symbol: str, start_ms: int | None = None) -> Candles:
    m = Market.objects.get(symbol=symbol)
    return Candles(**candles_arrays(market=m, timeframe="1h", **({} if start_ms is None else {"start": start_ms})))


def deal_row(trade, c: Candles, i: int) -> np.ndarray:
    """The deal's state at the close of candle ``i`` from its stored fills (Smart DCA's default
    ladder: base 20, safety orders 40 x 5, volume scale 1 -> max spend 220 quote)."""
    close_ms = int(c.time[i]) + 3_600_000
    fills = Fill.objects.filter(order__bot=trade.bot, order__deal_id=trade.deal_id, order__side="buy")
    buys = [f for f in fills.select_related("order") if int(f.time.timestamp() * 1000) < close_ms]
    spent = sum(float(f.price) * float(f.amount) for f in buys)
    avg = spent / sum(float(f.amount) for f in buys)
    tp = (
        Order.objects.filter(bot=trade.bot, deal_id=trade.deal_id, tag="take_profit").order_by("placed_at", "id").last()
    )
    return deal_features(
        side="long",
        avg_entry=avg,
        close=float(c.close[i]),
        safety_orders_filled=sum(f.order.tag.startswith("safety_order") for f in buys),
        safety_orders_max=5,
        spent_quote=spent,
        max_spend_quote=20 + 40 * 5,
        opened_at_ms=int(trade.opened_at.timestamp() * 1000),
        now_ms=close_ms,
        take_profit_price=float(tp.price),
    )


def test_a_tampered_safu_model_falls_back_to_the_rules_with_the_reason(markets, models_dir, user, other_user):
    v = safu_model(user, models_dir)
    art = models_dir / v.artifact_path
    art.write_text(art.read_text().replace("1", "2", 1))
    served = make_replay_bot(user, params=SAFU)
    plain = make_replay_bot(other_user, params=SAFU)
    assert step_at(served, TEN_DAYS).outcome == "stepped"
    assert step_at(plain, TEN_DAYS).outcome == "stepped"
    served.refresh_from_db()
    assert served.status == "running"
    ev = BotEvent.objects.get(bot=served, rule="ml_fallback")
    assert ev.outcome == "fallback"
    assert ev.reason.startswith("safu_exit v1 failed (ValueError: model artifact ")
    assert "sha256 mismatch" in ev.reason and ev.reason.endswith("rule-based exit score used")

    def deals(b):
        return [(t.opened_at, t.avg_entry, t.status, t.exit_reason) for t in trades(b)]

    assert deals(served) == deals(plain) != []


SPEND = dict(
    **DCA_LADDER,
    max_active_deals=1,
    spend_guard_enabled=True,
    spend_guard_max_pct=100,
    spend_guard_k=0,
)
BUDGET = 50 + 50 * (1 + 1.4 + 1.4**2 + 1.4**3)  # 405.3 quote


def test_a_backtest_with_an_active_dca_spend_model_caps_the_spend(markets, models_dir, user):
    """Predicted total spend 20 % of the budget before any safety order filled, 70 % after:
    the cap is 25 % (SO1 fits, SO2 does not) until SO1 fills, then 87.5 %."""
    X = noise()
    so = NAMES.index("deal_so_used")
    X[:, so] = np.random.default_rng(5).integers(0, 4, size=len(X))
    y = np.where(X[:, so] >= 1, 0.7, 0.2)
    model = xgb.XGBRegressor(n_estimators=60, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
    v = register(user, models_dir, model, "dca_spend")
    spend = providers_for(owner_id=user.pk, strategy="smart_dca", params=SPEND)["spend_model"]
    assert (spend.label, spend.margin, spend.max_spend) == ("dca_spend v1", 0.25, pytest.approx(BUDGET))
    eth = candles("ETH/USDT")
    feed = Feed("1h", {"ETH/USDT": eth, "BTC/USDT": candles("BTC/USDT")})
    cfg = BacktestConfig("smart_dca", SPEND, ("ETH/USDT",), "1h", int(eth.time[300]), int(eth.time[-1]), 10_000.0)
    markets_ = [MarketSpec.binance_like("ETH/USDT", float(eth.close[0]))]
    res, _ = run_backtest(cfg, feed, markets_, spend_model=spend, decision_log_cap=0)
    plain, _ = run_backtest(cfg, feed, markets_, decision_log_cap=0)
    blocks = [d for d in res.decisions if d.rule == "spend_guard" and d.outcome == "block"]
    assert blocks and not [d for d in plain.decisions if d.rule == "spend_guard"]
    first = blocks[0]
    cap = first.payload["model_cap_pct"]
    assert cap == pytest.approx(25.0, abs=0.05)  # 0.2 x 1.25 x 100 (the regressor's ~0.2)
    assert first.payload["spend_pct"] == pytest.approx((100 + 70) / BUDGET * 100, abs=0.2)  # fills slip a little
    assert first.reason == (
        f"deal spend {first.payload['spend_pct']:.1f}% > cap {cap:.2f}% by dca_spend v1 (predicted spend 20.0% + 25%"
        f" margin) (rule cap 100%) (drawdown {first.payload['drawdown_pct']:.2f}%); safety order 2 not placed"
    )
    assert spend.fallback_reason is None
    # the same cap from the registered artifact on the deal's row (before any safety order fill)
    predictor = Predictor(models_dir / v.artifact_path, v.artifact_sha256, v.features, v.kind)
    c = eth
    i = int(np.searchsorted(c.time, first.time))
    deal = next(t for t in res.trades if t.opened_at <= first.time + 3_600_000 and first.time < t.closed_at)
    base = next(f for f in res.fills if f.deal_id == deal.deal_id and f.tag == "base_order")
    tp = next(o for o in res.orders if o.deal_id == deal.deal_id and o.tag == "take_profit")
    row = compute_features(c[: i + 1], btc=feed.candles("BTC/USDT")).values[-1]
    d = deal_features(
        side="long",
        avg_entry=base.price,
        close=float(c.close[i]),
        safety_orders_filled=0,
        safety_orders_max=4,
        spent_quote=base.price * base.amount,
        max_spend_quote=BUDGET,
        opened_at_ms=deal.opened_at,
        now_ms=first.time + 3_600_000,
        take_profit_price=tp.price,
    )
    pred = float(predictor.predict(np.concatenate([row, d]).astype(np.float32)[None, :])[0])
    assert cap == pytest.approx(pred * 125.0, rel=1e-9)
    # every block is the model's (the rule cap of 100 % never binds) and it placed fewer orders
    assert all(" by dca_spend v1 (predicted spend " in d.reason for d in blocks)
    placed = [sum(o.tag == "safety_order" for o in r.orders) for r in (res, plain)]
    assert placed[0] < placed[1]
