"""Performance metrics of a backtest or bot: computed once, here, for every report.

Pure numpy (no Django). Every number a user sees on a backtest or bot page comes from
:func:`compute_metrics`; the chart helpers (:func:`drawdown_curve`) use the same definitions.
Nothing is rounded here — the report layer rounds for display.

Conventions
-----------
- **Equity curve**: ``equity[i]`` is the mark-to-market account value in quote currency
  (float64) at the *close* of the candle whose open time is ``equity_times_ms[i]`` (epoch ms
  UTC). The account holds ``initial_capital`` just before the first candle, and that value is
  treated as the curve's starting point ``E₋₁`` for returns and drawdown, so a loss on the very
  first candle counts.
- **Percent vs fraction**: names ending in ``_pct`` are percent (``12.5`` = 12.5 %); returns
  passed to :func:`sharpe` / :func:`sortino` are fractions (``0.01`` = 1 %).
- **Year**: crypto trades 24/7, so a year is 365 days = 31,536,000,000 ms, and
  ``periods_per_year(1h) = 8760``.
- **Undefined values are ``None``** (JSON ``null``): a ratio with a zero or missing
  denominator (Sharpe of a flat curve, profit factor without losing trades, win rate without
  trades, CAGR that overflows a float). ``inf``/``NaN`` never leave this module, so results
  go straight into JSON columns (Postgres ``jsonb`` rejects ``Infinity``).

Formulas (``r`` = per-candle simple returns ``r_t = E_t/E_{t−1} − 1`` with ``E₋₁`` =
initial capital, ``P`` = periods per year):

===================  =========================================================================
total_return_pct     ``100·(E_final/initial − 1)``
cagr_pct             ``100·((E_final/initial)^(365 d/span) − 1)``; span = last candle's close −
                     first candle's open; ``−100`` if ``E_final ≤ 0``
sharpe               ``mean(r)/std(r, ddof=1)·√P``, risk-free rate 0 (Sharpe 1994, "The Sharpe
                     Ratio"; annualised by √P as in Lo 2002; same as empyrical/quantstats)
sortino              ``mean(r)/DD·√P`` with downside deviation ``DD = √(mean(min(r,0)²))`` over
                     *all* periods, target 0 (Sortino & Price 1994; the "all periods"
                     denominator as in Rollinger & Hoffman 2013, empyrical ``downside_risk``
                     and quantstats ``sortino``)
max_drawdown_pct     ``max_t (1 − E_t/max_{s≤t} E_s)·100`` including ``E₋₁``; a **positive**
                     magnitude (25.0 = the account fell 25 % below its peak)
win_rate_pct         ``100·#(pnl > 0)/#closed trades``; break-even trades are not wins
profit_factor        ``Σ pnl⁺ / |Σ pnl⁻|`` over closed trades (gross profit / gross loss)
exposure_pct         ``100·#(candles with an open position)/#candles``
===================  =========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "METRIC_KEYS",
    "YEAR_MS",
    "cagr_pct",
    "compute_metrics",
    "drawdown_curve",
    "max_drawdown_pct",
    "periods_per_year",
    "profit_factor",
    "sharpe",
    "simple_returns",
    "sortino",
    "win_rate_pct",
]

YEAR_MS = 365 * 86_400_000
"""One 365-day year in milliseconds (crypto markets trade every day)."""

METRIC_KEYS = (
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "win_rate_pct",
    "profit_factor",
    "trades",
    "exposure_pct",
    "fees_paid",
    "final_equity",
)
"""The keys of :func:`compute_metrics`' result, in display order."""


def periods_per_year(timeframe_ms: int) -> float:
    """Candles per 365-day year for a timeframe in ms: ``YEAR_MS / timeframe_ms``
    (8760.0 for 1h, 525600.0 for 1m, 365.0 for 1d). Raises ``ValueError`` if ``<= 0``."""
    if isinstance(timeframe_ms, bool) or not timeframe_ms > 0:
        raise ValueError(f"timeframe_ms must be > 0, got {timeframe_ms!r}")
    return YEAR_MS / timeframe_ms


def _equity(equity: npt.ArrayLike) -> np.ndarray:
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1 or len(e) == 0:
        raise ValueError(f"equity must be a non-empty 1-D array, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("equity must be finite")
    return e


def _with_start(equity: npt.ArrayLike, initial_capital: float | None) -> np.ndarray:
    e = _equity(equity)
    if initial_capital is None:
        start = e
    else:
        if not (math.isfinite(initial_capital) and initial_capital > 0):
            raise ValueError(f"initial_capital must be finite and > 0, got {initial_capital!r}")
        start = np.concatenate(([float(initial_capital)], e))
    if start[0] <= 0:
        raise ValueError(f"the equity curve must start above 0, got {start[0]!r}")
    return start


def simple_returns(equity: npt.ArrayLike, initial_capital: float | None = None) -> np.ndarray:
    """Per-candle simple returns (fractions) ``r_t = E_t / E_{t−1} − 1``.

    With ``initial_capital`` it is used as ``E₋₁`` and the result has ``len(equity)`` elements;
    without, it has ``len(equity) − 1``. Where ``E_{t−1} ≤ 0`` (a wiped-out account) the
    return is defined as 0. Raises ``ValueError`` for an empty/non-finite curve or a start
    ``≤ 0``.
    """
    e = _with_start(equity, initial_capital)
    prev, cur = e[:-1], e[1:]
    out = np.zeros(len(cur))
    alive = prev > 0
    out[alive] = cur[alive] / prev[alive] - 1.0
    return out


def drawdown_curve(equity: npt.ArrayLike, initial_capital: float | None = None) -> np.ndarray:
    """Drawdown in percent, **≤ 0**, aligned with ``equity``: ``100·(E_t/peak_t − 1)`` with
    ``peak_t = max(initial_capital, E_0..E_t)`` (``initial_capital`` optional).

    ``0`` at a new high, ``−25.0`` when 25 % below the running peak (the "underwater" curve
    charts show). Values below ``−100`` are possible only for negative equity (leverage).
    Raises ``ValueError`` for an empty or non-finite curve or a start ``≤ 0``.
    """
    e = _with_start(equity, initial_capital)
    peak = np.maximum.accumulate(e)
    dd = (e / peak - 1.0) * 100.0
    return dd if initial_capital is None else dd[1:]


def max_drawdown_pct(equity: npt.ArrayLike, initial_capital: float | None = None) -> float:
    """Maximum drawdown as a **positive** percent magnitude: ``−min(drawdown_curve)``
    (``0.0`` for a curve that never falls below its running peak). Same arguments and errors
    as :func:`drawdown_curve`."""
    e = _with_start(equity, initial_capital)
    dd = (e / np.maximum.accumulate(e) - 1.0) * 100.0
    return float(-dd.min()) + 0.0  # + 0.0 turns -0.0 into 0.0


def _returns(returns: npt.ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    return r


def sharpe(returns: npt.ArrayLike, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio of per-period simple returns (fractions), risk-free rate 0:
    ``mean(r) / std(r, ddof=1) · √periods_per_year``.

    ``None`` when undefined: fewer than 2 returns or zero standard deviation (flat curve).
    Raises ``ValueError`` for non-finite returns or ``periods_per_year <= 0``.
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    if len(r) < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return None
    return float(np.mean(r)) / sd * math.sqrt(ppy)


def sortino(returns: npt.ArrayLike, periods_per_year: float) -> float | None:
    """Annualised Sortino ratio, target return 0: ``mean(r) / DD · √periods_per_year`` with
    downside deviation ``DD = √(mean(min(r, 0)²))`` averaged over **all** periods (not only
    the losing ones).

    ``None`` when undefined: fewer than 2 returns, or no negative return (``DD = 0``).
    Raises ``ValueError`` for non-finite returns or ``periods_per_year <= 0``.
    """
    r = _returns(returns)
    ppy = _ppy(periods_per_year)
    if len(r) < 2:
        return None
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if dd == 0.0:
        return None
    return float(np.mean(r)) / dd * math.sqrt(ppy)


def _ppy(ppy: float) -> float:
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be finite and > 0, got {ppy!r}")
    return float(ppy)


def _pnls(pnls: Iterable[float]) -> list[float]:
    out = [float(p) for p in pnls]
    if not all(math.isfinite(p) for p in out):
        raise ValueError("pnls must be finite")
    return out


def profit_factor(pnls: Iterable[float]) -> float | None:
    """Gross profit over gross loss of closed trades (P&L in quote currency):
    ``Σ max(pnl, 0) / |Σ min(pnl, 0)|`` (exact sums, :func:`math.fsum`).

    ``0.0`` when there are losses but no profits; ``None`` when there is no loss (no trades,
    or only winners/break-evens: the ratio would be infinite). Raises ``ValueError`` for a
    non-finite P&L.
    """
    p = _pnls(pnls)
    gross_loss = -math.fsum(x for x in p if x < 0)
    if gross_loss == 0.0:
        return None
    return math.fsum(x for x in p if x > 0) / gross_loss


def win_rate_pct(pnls: Iterable[float]) -> float | None:
    """Percent of closed trades with ``pnl > 0`` (break-even is not a win); ``None`` without
    trades. Raises ``ValueError`` for a non-finite P&L."""
    p = _pnls(pnls)
    if not p:
        return None
    return 100.0 * sum(1 for x in p if x > 0) / len(p)


def cagr_pct(initial_capital: float, final_equity: float, span_ms: int) -> float | None:
    """Compound annual growth rate in percent:
    ``100·((final_equity/initial_capital)^(YEAR_MS/span_ms) − 1)``.

    ``−100.0`` when ``final_equity <= 0``. ``None`` when the annualised growth overflows a
    float (very short spans with large moves — extrapolating hours to a year is meaningless
    anyway). Spans much shorter than a year extrapolate; read with care.
    Raises ``ValueError`` for ``initial_capital <= 0``, non-finite inputs or ``span_ms <= 0``.
    """
    if not (math.isfinite(initial_capital) and initial_capital > 0):
        raise ValueError(f"initial_capital must be finite and > 0, got {initial_capital!r}")
    if not math.isfinite(final_equity):
        raise ValueError(f"final_equity must be finite, got {final_equity!r}")
    if not span_ms > 0:
        raise ValueError(f"span_ms must be > 0, got {span_ms!r}")
    if final_equity <= 0:
        return -100.0
    try:
        growth = (float(final_equity) / float(initial_capital)) ** (YEAR_MS / span_ms)
    except OverflowError:
        return None
    if not math.isfinite(growth):
        return None
    return (growth - 1.0) * 100.0


def _get(trade: Any, name: str, default: Any = None) -> Any:
    if isinstance(trade, Mapping):
        return trade.get(name, default)
    return getattr(trade, name, default)


def compute_metrics(
    *,
    equity_times_ms: npt.ArrayLike,
    equity: npt.ArrayLike,
    trades: Sequence[Mapping[str, Any] | Any],
    initial_capital: float,
    timeframe_ms: int,
    exposure_mask: npt.ArrayLike | None = None,
    exposed_candles: int | None = None,
    fees_paid: float | None = None,
) -> dict[str, float | int | None]:
    """All report metrics of one run, keys exactly :data:`METRIC_KEYS`.

    Args:
        equity_times_ms: int64 candle open times, epoch ms UTC, strictly increasing, shape (N,).
        equity: float64 account value in quote currency at each candle's close, shape (N,), N ≥ 1.
        trades: the run's trades, dicts or objects with ``pnl`` (net realised P&L, quote
            currency, after fees; ``Decimal`` is accepted) and optionally ``closed_at``
            (epoch ms; ``None`` marks a still-open trade, which is left out of every trade
            statistic) and ``fees`` (quote). Other fields (``pnl_pct``, ``opened_at``,
            ``cost``) are ignored here.
        initial_capital: quote currency held before the first candle (> 0).
        timeframe_ms: candle length in ms; sets periods per year and the CAGR span.
        exposure_mask: bool array, shape (N,): ``True`` where a position was open during
            the candle. Give this **or** ``exposed_candles``.
        exposed_candles: number of candles (0..N) with an open position.
        fees_paid: total fees in quote currency; default: the sum of all trades' ``fees``
            (open trades included — those fees were paid).

    Returns:
        ``{"total_return_pct": float, "cagr_pct": float|None, "sharpe": float|None,
        "sortino": float|None, "max_drawdown_pct": float (≥ 0), "win_rate_pct": float|None,
        "profit_factor": float|None, "trades": int (closed trades), "exposure_pct": float,
        "fees_paid": float, "final_equity": float}`` — plain Python numbers, unrounded;
        formulas in the module docstring.

    Edge cases: no trades → ``trades=0``, ``win_rate_pct=None``, ``profit_factor=None``;
    flat equity → ``sharpe=None``, ``sortino=None``, ``max_drawdown_pct=0.0``; a single
    candle gives one return (E₀ vs initial capital), so Sharpe and Sortino are ``None``
    (they need 2); only winners → ``profit_factor=None``, ``sortino`` may still be set by
    mark-to-market dips.

    Raises:
        ValueError: shapes or lengths differ, N = 0, times not strictly increasing, non-finite
            equity, ``initial_capital <= 0``, ``timeframe_ms <= 0``, both or neither of
            ``exposure_mask``/``exposed_candles``, a count outside 0..N, a non-finite P&L.
    """
    e = _equity(equity)
    n = len(e)
    t = np.asarray(equity_times_ms)
    if t.shape != e.shape:
        raise ValueError(f"equity_times_ms shape {t.shape} != equity shape {e.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"equity_times_ms must be integer epoch ms, got dtype {t.dtype}")
    t = t.astype(np.int64)
    if n > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("equity_times_ms must be strictly increasing")
    ppy = periods_per_year(timeframe_ms)
    initial = float(initial_capital)
    if not (math.isfinite(initial) and initial > 0):
        raise ValueError(f"initial_capital must be finite and > 0, got {initial_capital!r}")

    if (exposure_mask is None) == (exposed_candles is None):
        raise ValueError("give exactly one of exposure_mask or exposed_candles")
    if exposure_mask is not None:
        mask = np.asarray(exposure_mask, dtype=bool)
        if mask.shape != e.shape:
            raise ValueError(f"exposure_mask shape {mask.shape} != equity shape {e.shape}")
        exposed = int(np.count_nonzero(mask))
    else:
        exposed = int(exposed_candles)
        if not 0 <= exposed <= n:
            raise ValueError(f"exposed_candles must be in 0..{n}, got {exposed_candles!r}")

    closed = [tr for tr in trades if _get(tr, "closed_at", 0) is not None]
    pnls = _pnls(_get(tr, "pnl") for tr in closed)
    if fees_paid is None:
        fees = math.fsum(float(_get(tr, "fees", 0) or 0) for tr in trades)
    else:
        fees = float(fees_paid)

    final = float(e[-1])
    r = simple_returns(e, initial)
    span_ms = int(t[-1] - t[0]) + int(timeframe_ms)
    return {
        "total_return_pct": (final / initial - 1.0) * 100.0,
        "cagr_pct": cagr_pct(initial, final, span_ms),
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "max_drawdown_pct": max_drawdown_pct(e, initial),
        "win_rate_pct": win_rate_pct(pnls),
        "profit_factor": profit_factor(pnls),
        "trades": len(pnls),
        "exposure_pct": 100.0 * exposed / n,
        "fees_paid": fees,
        "final_equity": final,
    }
