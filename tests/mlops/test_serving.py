"""Active models serve the owner's bots (strategies.providers hooks): feature snapshots at
each deal's decision candle with the model's score, outcomes when deals close, and a broken
model falling back to the rules with a recorded reason — the bot never stops."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import xgboost as xgb

from mlops.core.artifacts import save_booster
from mlops.core.features import FEATURE_NAMES, compute_features, feature_hash
from mlops.core.predict import Predictor
from mlops.models import FeatureSnapshot, ModelVersion
from mlops.services import serving
from tests.trading.conftest import DCA_PARAMS, load_bundled, make_replay_bot, step_at
from trading.models import BotEvent, Trade
from trading.services.feeds import feed_origin_ms

PARAMS = {**DCA_PARAMS, "confidence_dca_guard_enabled": True, "confidence_threshold": 0.5}
TEN_DAYS = 10 * 24  # step_at: market hours at 3600x


@pytest.fixture
def markets(db):
    return [load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz")]


def active_model(owner, directory, *, kind="confidence", strategy="smart_dca") -> ModelVersion:
    """A real XGBoost classifier on the real feature set (trained on noise: any model will do
    to check the wiring; the scores are recomputed independently below)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, len(FEATURE_NAMES))).astype(np.float32)
    y = (X[:, FEATURE_NAMES.index("rsi_14")] > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0).fit(X, y)
    path, sha = save_booster(model, directory / f"u{owner.pk}", f"{kind}-{strategy}-v1")
    return ModelVersion.objects.create(
        owner=owner,
        kind=kind,
        strategy=strategy,
        version=1,
        status="active",
        train_start=datetime(2024, 1, 1, tzinfo=UTC),
        train_end=datetime(2024, 12, 31, tzinfo=UTC),
        features=list(FEATURE_NAMES),
        features_hash=feature_hash(FEATURE_NAMES),
        artifact_path=str(path.relative_to(directory)),
        artifact_sha256=sha,
    )


def test_an_active_model_scores_the_bots_deals_and_learns_their_outcomes(markets, models_dir, user):
    v = active_model(user, models_dir)
    bot = make_replay_bot(user, params=PARAMS)
    report = step_at(bot, TEN_DAYS)
    assert report.outcome == "stepped"
    trades = list(Trade.objects.filter(bot=bot).select_related("market").order_by("opened_at", "id"))
    snaps = {s.deal_id: s for s in FeatureSnapshot.objects.filter(bot_id=bot.pk)}
    assert len(trades) > 0 and set(snaps) == {t.deal_id for t in trades}
    predictor = Predictor(models_dir / v.artifact_path, v.artifact_sha256, v.features, v.kind)
    origin = feed_origin_ms(bot)  # the bot's feed: from its warm-up origin on
    btc = load_candles("BTC/USDT", origin)
    for t in trades:
        s = snaps[t.deal_id]
        c = load_candles(t.market.symbol, origin)
        i = int(np.searchsorted(c.time, int(t.opened_at.timestamp() * 1000))) - 1
        assert s.time.timestamp() * 1000 == c.time[i]
        row = compute_features(c[: i + 1], btc=btc if t.market.symbol != "BTC/USDT" else c[: i + 1]).values[-1]
        assert s.values == [None if not np.isfinite(x) else round(float(x), 7) for x in row]
        got = np.array([np.nan if x is None else x for x in s.values])
        assert s.score == pytest.approx(float(predictor.predict(got.astype(np.float32)[None, :])[0]), abs=1e-6)
        assert (s.version_id, s.kind, s.features_hash, s.owner_id) == (v.pk, "confidence", v.features_hash, user.pk)
        if t.status == Trade.Status.CLOSED:
            quick = t.exit_reason == "take_profit" and (t.closed_at - t.opened_at).total_seconds() <= 48 * 3600
            assert s.outcome == (1.0 if quick else 0.0)
        else:
            assert s.outcome is None
    assert not BotEvent.objects.filter(bot=bot, rule="ml_fallback").exists()
    # stepping again writes no second snapshot of the same deals
    step_at(bot, TEN_DAYS + 1)
    assert FeatureSnapshot.objects.filter(bot_id=bot.pk, deal_id__in=list(snaps)).count() == len(snaps)


def load_candles(symbol, origin_ms):
    from strategies.engine import Candles
    from trading.models import Market
    from trading.selectors.candles import candles_arrays

    return Candles(**candles_arrays(market=Market.objects.get(symbol=symbol), timeframe="1h", start=origin_ms))


def test_a_tampered_model_falls_back_to_the_rules_with_the_reason(markets, models_dir, user, other_user):
    v = active_model(user, models_dir)
    (models_dir / v.artifact_path).write_text((models_dir / v.artifact_path).read_text().replace("1", "2", 1))
    served = make_replay_bot(user, params=PARAMS)
    plain = make_replay_bot(other_user, params=PARAMS)  # no model: the rules serve
    assert step_at(served, TEN_DAYS).outcome == "stepped"
    assert step_at(plain, TEN_DAYS).outcome == "stepped"
    served.refresh_from_db()
    assert served.status == "running"
    ev = BotEvent.objects.get(bot=served, rule="ml_fallback")
    assert ev.outcome == "fallback"
    assert ev.reason.startswith("confidence v1 failed (ValueError: model artifact ")
    assert "sha256 mismatch" in ev.reason and ev.reason.endswith("rule-based confidence used")

    def deals(b):
        return list(
            Trade.objects.filter(bot=b).order_by("opened_at", "id").values_list("opened_at", "avg_entry", "status")
        )

    assert deals(served) == deals(plain) != []
    assert FeatureSnapshot.objects.count() == 0


def test_no_active_model_means_no_provider(markets, models_dir, user):
    v = active_model(user, models_dir)
    ModelVersion.objects.filter(pk=v.pk).update(status="retired")
    assert serving.provider_for_bot(owner_id=user.pk, strategy="smart_dca", params={}) is None
    assert serving.provider_for_bot(owner_id=user.pk, strategy="sma_cross", params={}) is None


def test_a_served_bot_reads_btc_for_the_models_btc_features(markets, models_dir, user):
    active_model(user, models_dir)
    bot = make_replay_bot(user, markets=("ETH/USDT",), params=PARAMS)
    step_at(bot, TEN_DAYS)
    snaps = list(FeatureSnapshot.objects.filter(bot_id=bot.pk))
    assert snaps and all(s.symbol == "ETH/USDT" for s in snaps)
    i = FEATURE_NAMES.index("btc_rsi_14")
    assert all(s.values[i] is not None for s in snaps)
    assert not Trade.objects.filter(bot=bot, market__symbol="BTC/USDT").exists()  # watched, not traded
