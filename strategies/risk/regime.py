"""Market-regime classification for the circuit breaker: PANIC / CAUTION / NORMAL / EUPHORIA.

Pure numpy (no Django). Three signals, all on **hourly** closes whatever the stepping timeframe
(sub-hour candles are sampled every hour, counting back from the latest close; candles of an
hour or longer are used as they are), so the thresholds mean the same on 1m and 1h data:

* ``btc_return_pct`` — return of the regime symbol (default ``BTC/USDT``) over
  ``regime_return_hours`` (24 h), percent;
* ``market_return_pct`` — mean of the same return over the ``regime_universe`` symbols present
  in the market view with enough history (needs ``regime_min_universe`` of them, else ``None``);
* ``vol_ratio`` — population std of the regime symbol's hourly log returns over
  ``regime_vol_short_hours`` (24 h) divided by the same over ``regime_vol_long_hours`` (720 h,
  its baseline); ``None`` until the long window is full.

Classification (first match wins; a ``None`` signal never matches)::

    PANIC     btc <= panic_btc_return_pct  or  market <= panic_market_return_pct
              or (vol_ratio >= panic_vol_ratio and btc <= caution_btc_return_pct)
    EUPHORIA  btc >= euphoria_btc_return_pct  or  market >= euphoria_market_return_pct
    CAUTION   btc <= caution_btc_return_pct  or  market <= caution_market_return_pct
              or vol_ratio >= caution_vol_ratio
    NORMAL    otherwise

The defaults (-8/-12 %, 2.0; +8/+12 %; -4/-6 %, 1.75) come from Binance 1h data 2024-01 ..
2025-08 (``docs/risk.md``): with the 3 h hysteresis about 89.7 % of hours are NORMAL, 8.4 %
CAUTION, 1.2 % PANIC, 0.7 % EUPHORIA; PANIC falls on known crash days (2024-04-13, 2024-08-05,
2025-02-03, 2025-04-07). On 2024-08-05 the crash is CAUTION from 23:00 the evening before and
at 00:00, and PANIC from 01:00 for the rest of the day.

:func:`next_regime` adds hysteresis: moving to a more severe regime is immediate, moving to a
less severe one waits until the current regime has lasted ``regime_min_hold_hours``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.engine.types import MarketDataView

from .config import RiskConfig

__all__ = ["Regime", "RegimeMetrics", "compute_metrics", "classify", "next_regime", "SEVERITY"]

HOUR_MS = 3_600_000


class Regime:
    """Regime names (plain strings, the keys of the per-regime multiplier dicts)."""

    PANIC = "panic"
    CAUTION = "caution"
    NORMAL = "normal"
    EUPHORIA = "euphoria"


SEVERITY = {Regime.NORMAL: 0, Regime.EUPHORIA: 1, Regime.CAUTION: 2, Regime.PANIC: 3}


@dataclass(frozen=True, slots=True)
class RegimeMetrics:
    """The three regime signals (``None`` = not enough data). Returns are percent numbers."""

    btc_return_pct: float | None = None
    market_return_pct: float | None = None
    market_symbols: int = 0
    vol_ratio: float | None = None

    def to_dict(self) -> dict:
        return {
            "btc_return_pct": self.btc_return_pct,
            "market_return_pct": self.market_return_pct,
            "market_symbols": self.market_symbols,
            "vol_ratio": self.vol_ratio,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RegimeMetrics:
        return cls(d["btc_return_pct"], d["market_return_pct"], int(d["market_symbols"]), d["vol_ratio"])

    def describe(self, symbol: str, return_hours: int) -> str:
        """``"BTC/USDT 24h return -10.39%, market 24h return -14.41% over 10 symbols, vol ratio 2.00"``."""

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2f}%"

        vol = "n/a" if self.vol_ratio is None else f"{self.vol_ratio:.2f}"
        return (
            f"{symbol} {return_hours}h return {pct(self.btc_return_pct)}, "
            f"market {return_hours}h return {pct(self.market_return_pct)} over {self.market_symbols} symbols, "
            f"vol ratio {vol}"
        )


def _sampling(timeframe_ms: int) -> tuple[int, int]:
    """``(stride in candles, sample length in ms)``: hourly samples for sub-hour candles."""
    if timeframe_ms >= HOUR_MS:
        return 1, timeframe_ms
    return max(1, HOUR_MS // timeframe_ms), HOUR_MS


def _samples(market: MarketDataView, symbol: str, until_ms: int, n: int, stride: int) -> np.ndarray | None:
    """``n`` closes spaced ``stride`` candles apart ending at the latest close, oldest first;
    ``None`` when the symbol is unknown or has too little history."""
    need = (n - 1) * stride + 1
    try:
        c = market.closes(symbol, until_ms, need)
    except KeyError:
        return None
    if len(c) < need:
        return None
    return c[::-1][::stride][::-1] if stride > 1 else c


def compute_metrics(market: MarketDataView | None, cfg: RiskConfig, until_ms: int) -> RegimeMetrics:
    """The regime signals from closes with open time ``<= until_ms`` (see module docstring).

    Unknown symbols or short histories give ``None`` signals, never an error.
    """
    if market is None:
        return RegimeMetrics()
    stride, sample_ms = _sampling(market.timeframe_ms())
    ret_n = max(1, round(cfg.regime_return_hours * HOUR_MS / sample_ms))
    short_n = max(2, round(cfg.regime_vol_short_hours * HOUR_MS / sample_ms))
    long_n = max(short_n + 1, round(cfg.regime_vol_long_hours * HOUR_MS / sample_ms))

    btc_ret = None
    vol_ratio = None
    # one read serves both the return and the volatility signals of the regime symbol
    long_c = _samples(market, cfg.regime_symbol, until_ms, long_n + 1, stride)
    if long_c is not None:
        lr = np.diff(np.log(long_c))
        base = float(np.std(lr))
        if base > 0.0:
            vol_ratio = float(np.std(lr[-short_n:])) / base
        btc_ret = (float(long_c[-1]) / float(long_c[-1 - ret_n]) - 1.0) * 100.0
    else:
        c = _samples(market, cfg.regime_symbol, until_ms, ret_n + 1, stride)
        if c is not None:
            btc_ret = (float(c[-1]) / float(c[0]) - 1.0) * 100.0

    rets = []
    for sym in cfg.regime_universe:
        if sym == cfg.regime_symbol and btc_ret is not None:
            rets.append(btc_ret)
            continue
        c = _samples(market, sym, until_ms, ret_n + 1, stride)
        if c is not None:
            rets.append((float(c[-1]) / float(c[0]) - 1.0) * 100.0)
    market_ret = math.fsum(rets) / len(rets) if len(rets) >= cfg.regime_min_universe else None
    return RegimeMetrics(btc_ret, market_ret, len(rets), vol_ratio)


def classify(m: RegimeMetrics, cfg: RiskConfig) -> str:
    """The regime for the given signals (rules in the module docstring)."""
    b, mk, v = m.btc_return_pct, m.market_return_pct, m.vol_ratio
    if (
        (b is not None and b <= cfg.panic_btc_return_pct)
        or (mk is not None and mk <= cfg.panic_market_return_pct)
        or (v is not None and b is not None and v >= cfg.panic_vol_ratio and b <= cfg.caution_btc_return_pct)
    ):
        return Regime.PANIC
    if (b is not None and b >= cfg.euphoria_btc_return_pct) or (
        mk is not None and mk >= cfg.euphoria_market_return_pct
    ):
        return Regime.EUPHORIA
    if (
        (b is not None and b <= cfg.caution_btc_return_pct)
        or (mk is not None and mk <= cfg.caution_market_return_pct)
        or (v is not None and v >= cfg.caution_vol_ratio)
    ):
        return Regime.CAUTION
    return Regime.NORMAL


def next_regime(current: str, since_ms: int | None, candidate: str, time_ms: int, min_hold_hours: float) -> str:
    """Hysteresis: a more severe ``candidate`` replaces ``current`` at once; a less severe one
    only after ``current`` has lasted ``min_hold_hours`` since ``since_ms``."""
    if candidate == current:
        return current
    if SEVERITY[candidate] > SEVERITY[current] or since_ms is None:
        return candidate
    if time_ms - since_ms >= min_hold_hours * HOUR_MS:
        return candidate
    return current
