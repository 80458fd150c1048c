"""Evaluation of a model on a window it never saw: the same backtest gated and ungated.

``model_evaluate`` runs the strategy twice over the window through the one engine
(:func:`strategies.backtest.run_backtest`):

* **ungated** — the strategy as it trades without the model: Smart DCA with its confidence
  guard off; a detector strategy with its rule-based confidence (the detector's own score);
* **gated** — the same parameters with the model as the strategy's ``ConfidenceProvider``:
  Smart DCA with ``confidence_dca_guard`` on at ``threshold`` (safety orders are held while
  the model's probability is below it); a detector strategy gating its signals on the
  model's probability against its min confidence.

It also scores the model where it matters: the ungated run's deals become labels
(:mod:`mlops.core.labels`) and the model's AUC / Brier / log-loss on them are reported.
A version whose training window — extended by its label horizon (the embargo) — reaches into
the evaluation window is refused with the dates, since its numbers there would be in-sample.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from market7.timeframes import dt_to_ms
from mlops.models import ModelVersion

__all__ = ["EvaluationError", "GATE_KIND", "model_evaluate", "provider_for_version"]

GATE_KIND = {"smart_dca": "confidence"}  # every detector strategy: "success"
SIDE_METRICS = (
    "trades",
    "total_return_pct",
    "win_rate_pct",
    "profit_factor",
    "max_drawdown_pct",
    "sharpe",
    "final_equity",
)


class EvaluationError(ValueError):
    """The evaluation cannot run; the message is one line, for users."""


def gate_kind(strategy: str) -> str:
    return GATE_KIND.get(strategy, "success")


def provider_for_version(version: ModelVersion, *, fallback):
    """A :class:`mlops.core.inference.ModelConfidence` serving ``version`` (artifact loaded on
    first use, hash-checked) with ``fallback`` as the rule-based provider."""
    from mlops.core.inference import ModelConfidence
    from mlops.core.predict import Predictor

    path = settings.MARKET7_MODELS_DIR / version.artifact_path

    def load():
        return Predictor(path, version.artifact_sha256, version.features, version.kind)

    return ModelConfidence(load, fallback, label=f"{version.kind} v{version.version}")


def _version(owner, strategy: str, number: int | None) -> ModelVersion:
    kind = gate_kind(strategy)
    qs = ModelVersion.objects.for_user(owner).filter(kind=kind, strategy=strategy)
    v = qs.filter(version=number).first() if number is not None else qs.filter(status="active").first()
    if v is None:
        which = f"version {number}" if number is not None else "an active version"
        raise EvaluationError(f"no {kind} model for {strategy} ({which}) of this user")
    return v


def _check_unseen(v: ModelVersion, start: datetime, end: datetime) -> None:
    embargo_end = v.train_end + timedelta(hours=v.horizon_hours)
    if start <= embargo_end and end >= v.train_start:
        raise EvaluationError(
            f"{v.kind} v{v.version} was trained on {v.train_start:%Y-%m-%d %H:%M} → {v.train_end:%Y-%m-%d %H:%M} "
            f"(+ {v.horizon_hours:g} h label horizon, to {embargo_end:%Y-%m-%d %H:%M}); the evaluation window "
            f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} overlaps it: choose a window after "
            f"{embargo_end:%Y-%m-%d %H:%M} or before {v.train_start:%Y-%m-%d %H:%M}"
        )


def _side(report: dict[str, Any]) -> dict[str, Any]:
    m = report["metrics"]
    return {k: m.get(k) for k in SIDE_METRICS}


def model_evaluate(
    *,
    owner,
    strategy: str,
    symbols: list[str],
    start: datetime,
    end: datetime,
    timeframe: str = "1h",
    exchange: str = "binance",
    version: int | None = None,
    threshold: float | None = None,
    capital: float = 10_000.0,
) -> dict[str, Any]:
    """Gated vs ungated backtests of ``strategy`` on ``symbols`` over ``start..end`` (aware
    datetimes, candle open times) with the owner's model ``version`` (default: the active one
    of the strategy's gate kind), and the model's classification metrics there.

    Returns ``{"model": {kind, strategy, version, train_start, train_end, horizon_hours},
    "window": {start, end, symbols, timeframe}, "threshold", "ungated": {metrics},
    "gated": {metrics}, "difference": {metric: gated − ungated}, "classification": {auc,
    brier, log_loss, rows, positives_pct} | {"rows": 0}, "fallback": reason | None}``.
    Raises :class:`EvaluationError` (no such model, in-sample window, bad inputs).
    """
    from mlops.core.features import compute_features
    from mlops.core.labels import detector_labels, smart_dca_labels
    from mlops.core.pipeline import BTC_SYMBOL, within_hours
    from mlops.core.train import classifier_metrics
    from strategies.backtest import BacktestConfig, BacktestInputError, iso, run_backtest
    from strategies.library.confidence import RuleConfidence
    from strategies.services.backtests import BacktestError, backtest_feed, backtest_validate
    from trading.brokers import market_spec

    v = _version(owner, strategy, version)
    _check_unseen(v, start, end)
    params = dict(v.params.get("strategy_params") or {})
    try:
        inputs = backtest_validate(
            strategy=strategy,
            symbols=symbols,
            timeframe=timeframe,
            start=start,
            end=end,
            capital=capital,
            params=params,
            exchange=exchange,
        )
    except BacktestError as exc:
        raise EvaluationError(str(exc)) from None
    feed = backtest_feed(inputs)
    markets = [market_spec(m) for m in inputs.markets]
    syms = tuple(m.symbol for m in inputs.markets)
    s_ms, e_ms = dt_to_ms(inputs.start), dt_to_ms(inputs.end)

    if strategy == "smart_dca":
        thr = float(threshold if threshold is not None else params.get("confidence_threshold", 0.4))
        ungated_params = {**inputs.params, "confidence_dca_guard_enabled": False}
        gated_params = {**inputs.params, "confidence_dca_guard_enabled": True, "confidence_threshold": thr}
        fallback = RuleConfidence(str(inputs.params.get("side", "long")))
    else:
        thr = float(threshold) if threshold is not None else None
        ungated_params = gated_params = dict(inputs.params)
        fallback = None
    provider = provider_for_version(v, fallback=fallback or _DetectorScore())

    def run(p, prov):
        cfg = BacktestConfig(strategy, p, syms, timeframe, s_ms, e_ms, float(capital), 10.0, 5.0, inputs.risk)
        try:
            return run_backtest(cfg, feed, markets, confidence_provider=prov, decision_log_cap=0)
        except BacktestInputError as exc:
            raise EvaluationError(str(exc)) from None

    ungated_result, ungated = run(ungated_params, None)
    _, gated = run(gated_params, provider)
    out_u, out_g = _side(ungated), _side(gated)
    diff = {k: (None if out_g[k] is None or out_u[k] is None else round(out_g[k] - out_u[k], 6)) for k in SIDE_METRICS}
    # the model's own metrics on this window's decision points
    if strategy == "smart_dca":
        labels = within_hours(smart_dca_labels(ungated_result, feed, inputs.params)["confidence"], 48.0)
        y_all = labels.labels["confidence"]
    else:
        labels = detector_labels(ungated_result, feed)
        y_all = labels.labels["success"]
    btc = feed.candles(BTC_SYMBOL) if BTC_SYMBOL in feed else None
    provider.bind_feed(feed)
    ys, ps = [], []
    for sym in syms:
        c = feed.candles(sym)
        frame = compute_features(c, btc=btc if sym != BTC_SYMBOL else c)
        rows = np.flatnonzero(labels.symbol == sym)
        if not len(rows):
            continue
        idx = np.searchsorted(frame.time, labels.time[rows])
        probs = provider.series(sym, c)
        ys.append(y_all[rows])
        ps.append(probs[idx])
    y = np.concatenate(ys) if ys else np.zeros(0)
    p = np.concatenate(ps) if ps else np.zeros(0)
    ok = np.isfinite(y)
    if ok.sum() > 0:
        cm = classifier_metrics(y[ok], p[ok], 0.5)
        cls = {k: cm.get(k) for k in ("auc", "brier", "log_loss", "rows", "positives_pct")}
    else:
        cls = {"rows": 0}
    return {
        "model": {
            "kind": v.kind,
            "strategy": v.strategy,
            "version": v.version,
            "train_start": v.train_start.isoformat(),
            "train_end": v.train_end.isoformat(),
            "horizon_hours": v.horizon_hours,
        },
        "window": {"start": iso(s_ms), "end": iso(e_ms), "symbols": list(syms), "timeframe": timeframe},
        "threshold": thr,
        "ungated": out_u,
        "gated": out_g,
        "difference": diff,
        "classification": cls,
        "fallback": provider.fallback_reason,
    }


class _DetectorScore:
    """Fallback for a detector gate: NaN for rows the model cannot score (warm-up) or when it
    fails — the signal strategy then uses its detector's own score, with the reason recorded
    (:func:`strategies.library.confidence.signal_confidence`)."""

    def series(self, symbol, candles):
        return np.full(len(candles), np.nan)
