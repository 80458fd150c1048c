"""The BTC Risk Panel's figures (a read, nothing written): the market regime and the Smart DCA
BTC filter over the stored BTC/USDT candles.

* **Regime** — exactly the risk manager's circuit breaker (:mod:`strategies.risk.regime`, the
  default :class:`~strategies.risk.RiskConfig`): at every stored BTC candle the three signals
  (BTC 24 h return %, mean 24 h return % of the stored universe symbols, 24 h / 720 h volatility
  ratio) from closes with open time ≤ that candle, classified, then smoothed by
  :func:`~strategies.risk.regime.next_regime` (3 h hysteresis), starting NORMAL at the first
  candle. The current regime is the one at the newest candle; ``changes`` lists every switch.
* **BTC filter** — :class:`~strategies.library.guards.BtcMarketFilter` with its defaults
  (rule ``ema``: close below EMA200 blocks new long deals and safety orders) on the same candles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from market7.timeframes import ms_to_dt, timeframe_ms
from strategies.engine.feed import Candles
from strategies.library.guards import BtcMarketFilter
from strategies.risk import RiskConfig
from strategies.risk.regime import Regime, classify, compute_metrics, next_regime
from strategies.risk.testing import ArrayMarketData
from trading.models import Market
from trading.selectors.candles import candles_arrays

BTC_SYMBOL = "BTC/USDT"
TIMEFRAME = "1h"
CHART_POINTS = 2000  # newest BTC closes sent to the line chart


@dataclass
class BtcRiskPanel:
    """``regime``: one of :class:`~strategies.risk.regime.Regime` (None without BTC candles);
    ``metrics``: its inputs (``RegimeMetrics.to_dict()``: percent returns, vol ratio);
    ``filter``: ``{"blocked", "close", "ema", "ema_period", "reason"}`` (USDT prices);
    ``changes``: ``[{"time": datetime UTC, "from", "to", "btc_return_pct", ...}]`` newest first;
    ``chart``: ``[{"time": epoch s, "value": close, "regime"}]`` oldest first."""

    exchange: str
    candles: int = 0
    as_of: object = None
    regime: str | None = None
    since: object = None
    metrics: dict = field(default_factory=dict)
    universe: list[str] = field(default_factory=list)
    filter: dict = field(default_factory=dict)
    changes: list[dict] = field(default_factory=list)
    chart: list[dict] = field(default_factory=list)


def btc_risk_panel(*, exchange: str = "binance", cfg: RiskConfig | None = None) -> BtcRiskPanel:
    """The panel over every stored 1h candle of BTC/USDT (and of the regime universe) on ``exchange``."""
    cfg = cfg or RiskConfig()
    panel = BtcRiskPanel(exchange=exchange)
    markets = {m.symbol: m for m in Market.objects.filter(exchange__code=exchange, symbol__in=cfg.regime_universe)}
    if cfg.regime_symbol not in markets:
        return panel
    series = {}
    for sym, m in markets.items():
        a = candles_arrays(market=m, timeframe=TIMEFRAME)
        if len(a["time"]):
            series[sym] = (a["time"], a["close"])
            if sym == cfg.regime_symbol:
                btc = a
    if cfg.regime_symbol not in series:
        return panel
    panel.universe = sorted(series)
    view = ArrayMarketData(series, timeframe_ms(TIMEFRAME))
    times = btc["time"]
    regime, since, metrics = Regime.NORMAL, None, None
    regimes = []
    for t in times.tolist():
        metrics = compute_metrics(view, cfg, t)
        new = next_regime(regime, since, classify(metrics, cfg), t, cfg.regime_min_hold_hours)
        if new != regime:
            panel.changes.append({"time": ms_to_dt(t), "from": regime, "to": new, **metrics.to_dict()})
            regime, since = new, t
        elif since is None:
            since = t
        regimes.append(regime)
    panel.changes.reverse()
    panel.candles = len(times)
    panel.as_of = ms_to_dt(int(times[-1]))
    panel.regime, panel.since, panel.metrics = regime, ms_to_dt(since), metrics.to_dict()
    flt = BtcMarketFilter()
    candles = Candles.from_arrays(btc["time"], btc["open"], btc["high"], btc["low"], btc["close"], btc["volume"])
    s = flt.series(candles, "long", timeframe_ms(TIMEFRAME))
    close, ema, change = float(s["close"][-1]), float(s["ema"][-1]), float(s["change"][-1])
    blocked = bool(s["block"][-1])
    decision = flt.check(int(times[-1]), BTC_SYMBOL, "long", blocked, close, ema, change, "new deal")
    panel.filter = {
        "blocked": blocked,
        "close": close,
        "ema": None if np.isnan(ema) else ema,
        "ema_period": flt.ema_period,
        "reason": decision.reason,
    }
    k = max(0, len(times) - CHART_POINTS)
    panel.chart = [
        {"time": int(t) // 1000, "value": float(c), "regime": r}
        for t, c, r in zip(times[k:].tolist(), btc["close"][k:].tolist(), regimes[k:], strict=True)
    ]
    return panel
