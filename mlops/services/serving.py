"""Active models serving the bots, and what the bots teach them back.

Registered at start-up (:class:`mlops.apps.MlopsConfig`) into :mod:`strategies.providers`:

* :func:`provider_for_bot` — the owner's **active** version of the strategy's gate model
  (``confidence`` for Smart DCA: its confidence guard; ``success`` for a detector strategy:
  its min-confidence gate) as a :class:`mlops.core.inference.ModelConfidence`. The artifact is
  loaded once per process (hash-checked; cached by path and sha256). No active version: None,
  the strategy's rule-based default serves.
* :func:`providers_for_bot` — the registered factory: that provider plus, for Smart DCA, the
  active ``safu_exit`` model as the SAFU exit scorer and the active ``dca_spend`` model as the
  spend guard's model (:mod:`mlops.core.inference`), keyed as ``create_strategy`` takes them.
* :func:`step_observe` — after each bot step: a :class:`~mlops.models.FeatureSnapshot` of the
  features and the model's score at the decision candle of every deal the step opened (the
  candle before its first fill), the **outcome** of every deal it closed on its snapshot
  (``confidence``: take profit within 48 h → 1 else 0; ``success``: take profit → 1 else 0),
  and — for every model that failed and left the decision to the rules — a bot event
  ``ml_fallback`` with the reason. These rows are the live-accuracy and drift data of the ML Monitor, and real-outcome
  labels for retraining.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from market7.timeframes import ms_to_dt
from mlops.models import FeatureSnapshot, ModelVersion

log = logging.getLogger(__name__)

__all__ = ["provider_for_bot", "providers_for_bot", "step_observe", "predictor_cached"]

DETECTOR_STRATEGIES = frozenset({"fork_score", "scalping", "dca_detector", "swing", "channel"})
TP_TAGS = frozenset({"take_profit", "trailing_take_profit"})
CONFIDENCE_HOURS = 48.0
_lock = threading.Lock()
_predictors: dict[tuple[str, str], Any] = {}


def predictor_cached(version: ModelVersion):
    """The version's :class:`~mlops.core.predict.Predictor`, loaded once per process."""
    from market7.metrics import TimedPredictor
    from mlops.core.predict import Predictor

    key = (version.artifact_path, version.artifact_sha256)
    with _lock:
        hit = _predictors.get(key)
    if hit is None:
        hit = TimedPredictor(  # market7_model_inference_seconds{kind}
            Predictor(
                settings.MARKET7_MODELS_DIR / version.artifact_path,
                version.artifact_sha256,
                version.features,
                version.kind,
            )
        )
        with _lock:
            if len(_predictors) > 32:
                _predictors.clear()
            _predictors[key] = hit
    return hit


def provider_for_bot(*, owner_id: int, strategy: str, params: dict[str, Any]):
    """The owner's active gate model for ``strategy`` as a provider, or None (module doc)."""
    from mlops.core.inference import ModelConfidence
    from mlops.services.evaluation import _DetectorScore
    from strategies.library.confidence import RuleConfidence

    if strategy == "smart_dca":
        kind, fallback = "confidence", RuleConfidence(str((params or {}).get("side", "long")))
    elif strategy in DETECTOR_STRATEGIES:
        kind, fallback = "success", _DetectorScore()
    else:
        return None
    v = ModelVersion.objects.filter(owner_id=owner_id, kind=kind, strategy=strategy, status="active").first()
    if v is None:
        return None
    provider = ModelConfidence(lambda: predictor_cached(v), fallback, label=f"{kind} v{v.version}")
    provider.version = v
    return provider


def providers_for_bot(*, owner_id: int, strategy: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every active model of the owner serving ``strategy``'s bots, keyed as
    :func:`strategies.registry.create_strategy` takes them (the registered provider factory):

    * ``confidence_provider`` — :func:`provider_for_bot` (``confidence`` / ``success``);
    * ``exit_scorer`` — Smart DCA with an active ``safu_exit`` classifier:
      :class:`mlops.core.inference.ModelExitScorer` (rule fallback: ``RuleExitScorer`` with the
      bot's ``safu_drawdown_ref_pct``);
    * ``spend_model`` — Smart DCA with an active ``dca_spend`` regressor:
      :class:`mlops.core.inference.ModelSpend` (margin 25 %).

    Keys without an active model are left out (the rules serve). Each provider carries its
    ``version`` (the registry row) for :func:`step_observe`.
    """
    from mlops.core.inference import ModelExitScorer, ModelSpend
    from strategies.library.confidence import RuleExitScorer

    out: dict[str, Any] = {}
    conf = provider_for_bot(owner_id=owner_id, strategy=strategy, params=params)
    if conf is not None:
        out["confidence_provider"] = conf
    if strategy != "smart_dca":
        return out
    p = dict(params or {})
    active = {
        v.kind: v
        for v in ModelVersion.objects.filter(
            owner_id=owner_id, strategy=strategy, status="active", kind__in=("safu_exit", "dca_spend")
        )
    }
    v = active.get("safu_exit")
    if v is not None:
        rule = RuleExitScorer(float(p.get("safu_drawdown_ref_pct", 20.0)))
        scorer = ModelExitScorer(lambda v=v: predictor_cached(v), rule, label=f"safu_exit v{v.version}", params=p)
        scorer.version = v
        out["exit_scorer"] = scorer
    v = active.get("dca_spend")
    if v is not None:
        spend = ModelSpend(lambda v=v: predictor_cached(v), label=f"dca_spend v{v.version}", params=p)
        spend.version = v
        out["spend_model"] = spend
    return out


def _decision_index(candles, opened_at_ms: int) -> int:
    """Index of the candle whose close decided a deal opened (first fill) at ``opened_at_ms``."""
    return max(int(np.searchsorted(candles.time, opened_at_ms)) - 1, 0)


def step_observe(*, bot, provider, result, feed, providers: dict[str, Any] | None = None) -> None:
    """Snapshots, outcomes and the fallback events of one bot step (module doc): one
    ``ml_fallback`` bot event per model that failed in the step (``providers``: every model
    that served it; ``provider``: the confidence provider, whose decisions are snapshotted)."""
    served = [p for p in (providers or {}).values() if p is not provider]
    for p in served:
        if getattr(p, "version", None) is not None and getattr(p, "fallback_reason", None):
            _fallback_event(bot, p.fallback_reason)
    version = getattr(provider, "version", None)
    if version is None:
        return
    if provider.fallback_reason:
        _fallback_event(bot, provider.fallback_reason)
        return
    _snapshot_new_deals(bot, provider, version, result, feed)
    _record_outcomes(bot, version, result)


def _fallback_event(bot, reason: str) -> None:
    from trading.models import BotEvent

    BotEvent.objects.create(
        bot=bot,
        time=timezone.now(),
        kind=BotEvent.Kind.DECISION,
        rule="ml_fallback",
        outcome="fallback",
        reason=reason[:500],
    )


def _snapshot_new_deals(bot, provider, version: ModelVersion, result, feed) -> None:
    from mlops.core.features import compute_features
    from mlops.core.inference import BTC_SYMBOL

    deals = list(result.open_deals) + [
        {"deal_id": t.deal_id, "symbol": t.symbol, "opened_at": t.opened_at} for t in result.trades
    ]
    if not deals:
        return
    known = set(FeatureSnapshot.objects.filter(bot_id=bot.pk, kind=version.kind).values_list("deal_id", flat=True))
    rows = []
    for d in deals:
        if d["deal_id"] in known or d["symbol"] not in feed:
            continue
        c = feed.candles(d["symbol"])
        i = _decision_index(c, int(d["opened_at"]))
        if i >= len(c):
            continue
        btc = c if d["symbol"] == BTC_SYMBOL else (feed.candles(BTC_SYMBOL) if BTC_SYMBOL in feed else None)
        frame = compute_features(c[: i + 1], btc=btc)
        values = [None if not np.isfinite(x) else round(float(x), 7) for x in frame.values[-1]]
        score = float(provider.series(d["symbol"], c)[i])
        rows.append(
            FeatureSnapshot(
                owner_id=bot.owner_id,
                bot_id=bot.pk,
                version=version,
                kind=version.kind,
                symbol=d["symbol"],
                time=ms_to_dt(int(c.time[i])),
                deal_id=d["deal_id"],
                features_hash=version.features_hash,
                values=values,
                score=score if np.isfinite(score) else 0.5,
            )
        )
        known.add(d["deal_id"])
    FeatureSnapshot.objects.bulk_create(rows, ignore_conflicts=True)


def _record_outcomes(bot, version: ModelVersion, result) -> None:
    for t in result.trades:
        hit = t.exit_reason in TP_TAGS
        if version.kind == "confidence":
            hit = hit and (t.closed_at - t.opened_at) <= CONFIDENCE_HOURS * 3_600_000
        FeatureSnapshot.objects.filter(
            bot_id=bot.pk, kind=version.kind, deal_id=t.deal_id, outcome__isnull=True
        ).update(outcome=1.0 if hit else 0.0)
