"""Labels from outcomes (pure core, no Django): triple-barrier labels and labels read from the
deals that the ONE engine simulated.

* :func:`triple_barrier` — López de Prado, *Advances in Financial Machine Learning* (AFML),
  ch. 3.4 "The triple-barrier method": for each candle ``i`` an entry at ``close[i]``, an upper
  barrier (take profit, ``+tp_pct`` %), a lower barrier (stop loss, ``−sl_pct`` %) and a vertical
  barrier (``horizon`` candles), evaluated on candles ``i+1 .. i+horizon``; mirrored for shorts.
* :func:`simulate` runs a registered strategy through :func:`strategies.backtest.run_backtest`
  (what ``manage.py backtest`` calls) — no second copy of trading logic — and
  :func:`smart_dca_labels` / :func:`detector_labels` turn its deals (``RunResult.trades`` and
  ``RunResult.fills``) into decision-point labels. The path of a deal between its open and its
  close is read from the candles and the deal's own fills.

Every labelling function returns :class:`LabelSet` objects: one row per decision point with the
symbol, the decision candle's open time (epoch ms UTC — the candle whose **close** is the last
information the decision may use, so it joins a causal feature row keyed the same way) and
``horizon_ms``: the label depends on candles with open time in ``[time, time + horizon_ms]``
(what purged walk-forward validation purges on, AFML ch. 7.4).

Units: prices in quote currency, moves and returns in **percent**, hold times in candles or hours
as named, times epoch **milliseconds** UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "HOUR_MS",
    "TP_TAGS",
    "LabelSet",
    "TripleBarrier",
    "triple_barrier",
    "triple_barrier_labelset",
    "simulate",
    "smart_dca_labels",
    "deal_state_at",
    "detector_labels",
    "size_multiplier_target",
]

HOUR_MS = 3_600_000
TP_TAGS = frozenset({"take_profit", "trailing_take_profit"})  # exit tags that mean "TP reached"
SIZE_MULT_MIN, SIZE_MULT_MAX = 0.5, 1.5


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Labels of ``n`` decision points.

    Attributes:
        symbol: ``(n,)`` object array of ccxt symbols.
        time: ``(n,)`` int64, open time of the decision candle, epoch ms UTC.
        horizon_ms: ``(n,)`` int64 >= 0; the label uses candles opened in ``[time, time + horizon_ms]``.
        labels: ``{name: (n,) float64}``; targets (e.g. ``"confidence"`` 1/0) and their context
            columns (e.g. ``"drawdown_pct"``). NaN where a label does not apply.
    """

    symbol: np.ndarray
    time: np.ndarray
    horizon_ms: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.time)
        if len(self.symbol) != n or len(self.horizon_ms) != n:
            raise ValueError(f"LabelSet: symbol {len(self.symbol)}, time {n}, horizon_ms {len(self.horizon_ms)} rows")
        for k, v in self.labels.items():
            if len(v) != n:
                raise ValueError(f"LabelSet: label {k!r} has {len(v)} rows, time has {n}")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], names: Iterable[str]) -> LabelSet:
        """From dicts with ``symbol``, ``time``, ``horizon_ms`` and one value per name."""
        names = list(names)
        return cls(
            np.array([r["symbol"] for r in rows], dtype=object),
            np.array([r["time"] for r in rows], dtype=np.int64),
            np.array([r["horizon_ms"] for r in rows], dtype=np.int64),
            {k: np.array([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in names},
        )

    @classmethod
    def concat(cls, sets: Iterable[LabelSet]) -> LabelSet:
        """Rows of several label sets (same label names) one after the other."""
        sets = list(sets)
        if not sets:
            return cls(np.array([], dtype=object), np.array([], np.int64), np.array([], np.int64), {})
        names = list(sets[0].labels)
        for s in sets[1:]:
            if list(s.labels) != names:
                raise ValueError(f"LabelSet.concat: label names {list(s.labels)} != {names}")
        return cls(
            np.concatenate([s.symbol for s in sets]).astype(object),
            np.concatenate([s.time for s in sets]).astype(np.int64),
            np.concatenate([s.horizon_ms for s in sets]).astype(np.int64),
            {k: np.concatenate([s.labels[k] for s in sets]) for k in names},
        )


# -- triple barrier ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TripleBarrier:
    """Per-candle triple-barrier outcome (all arrays ``(n,)``, ``n`` = number of candles).

    ``label`` int8: 1 take profit touched first, 0 stop loss first or time-out, −1 unknown (the
    data ends before the time limit and no barrier was touched). ``barrier`` int8: 1 TP, −1 SL,
    0 time-out, −2 unknown. ``ret_pct``: the outcome return in percent for the side (TP:
    ``+tp_pct``, SL: ``−sl_pct``, time-out: close-to-close at candle ``i + horizon``; NaN when
    unknown). ``hold``: candles from entry to the exit candle (−1 unknown). ``mfe_pct`` /
    ``mae_pct``: best favourable / worst adverse move over candles ``i+1 .. exit`` from the highs
    and lows, percent of the entry, both >= 0 magnitudes (NaN unknown).
    """

    label: np.ndarray
    barrier: np.ndarray
    ret_pct: np.ndarray
    hold: np.ndarray
    mfe_pct: np.ndarray
    mae_pct: np.ndarray


def triple_barrier(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    tp_pct: float,
    sl_pct: float,
    horizon: int,
    side: str = "long",
) -> TripleBarrier:
    """Triple-barrier labels (AFML ch. 3.4) with an entry at ``close[i]`` of every candle.

    Long: TP at ``close[i]·(1 + tp_pct/100)`` touched when ``high >= TP``; SL at
    ``close[i]·(1 − sl_pct/100)`` touched when ``low <= SL``. Short: TP at ``·(1 − tp_pct/100)``
    touched when ``low <= TP``, SL at ``·(1 + sl_pct/100)`` when ``high >= SL``. Candles
    ``i+1 .. i+horizon`` are scanned in order; the first candle touching a barrier decides.
    A candle touching **both** counts as the stop loss (conservative: OHLC cannot tell which
    came first). No touch within ``horizon`` candles: time-out, label 0.

    Args: float64 ``(n,)`` arrays in quote; ``tp_pct``, ``sl_pct`` > 0 percent; ``horizon`` >= 1
    candles; ``side`` ``"long"``/``"short"``. Raises ``ValueError`` otherwise.
    """
    h = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    if len(h) != n or len(lo) != n:
        raise ValueError(f"high/low/close lengths differ: {len(h)}, {len(lo)}, {n}")
    if not (tp_pct > 0 and sl_pct > 0):
        raise ValueError(f"tp_pct and sl_pct must be > 0, got {tp_pct!r}, {sl_pct!r}")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1 candle, got {horizon!r}")
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    horizon = int(horizon)
    sign = 1.0 if side == "long" else -1.0
    tp = c * (1.0 + sign * tp_pct / 100.0)
    sl = c * (1.0 - sign * sl_pct / 100.0)
    barrier = np.full(n, -2, dtype=np.int8)
    hold = np.full(n, -1, dtype=np.int64)
    best = np.full(n, -np.inf)  # favourable extreme so far, percent
    worst = np.full(n, -np.inf)  # adverse extreme so far, percent (magnitude)
    mfe = np.full(n, np.nan)
    mae = np.full(n, np.nan)
    open_ = np.ones(n, dtype=bool)
    idx = np.arange(n)
    for k in range(1, horizon + 1):
        live = open_ & (idx + k < n)
        if not live.any():
            break
        j = np.where(live, idx + k, 0)
        fav = (h[j] / c - 1.0) * 100.0 if side == "long" else (1.0 - lo[j] / c) * 100.0
        adv = (1.0 - lo[j] / c) * 100.0 if side == "long" else (h[j] / c - 1.0) * 100.0
        best = np.where(live, np.maximum(best, fav), best)
        worst = np.where(live, np.maximum(worst, adv), worst)
        hit_tp = live & ((h[j] >= tp) if side == "long" else (lo[j] <= tp))
        hit_sl = live & ((lo[j] <= sl) if side == "long" else (h[j] >= sl))
        timeout = live & ~hit_tp & ~hit_sl & (k == horizon)
        for mask, code in ((hit_sl, -1), (hit_tp & ~hit_sl, 1), (timeout, 0)):
            barrier[mask] = code
            hold[mask] = k
            mfe[mask] = best[mask]
            mae[mask] = worst[mask]
            open_ &= ~mask
    ret = np.full(n, np.nan)
    ret[barrier == 1] = tp_pct
    ret[barrier == -1] = -sl_pct
    to = np.flatnonzero(barrier == 0)
    ret[to] = sign * (c[to + horizon] / c[to] - 1.0) * 100.0
    label = np.where(barrier == 1, 1, np.where(barrier == -2, -1, 0)).astype(np.int8)
    return TripleBarrier(label, barrier, ret, hold, np.maximum(mfe, 0.0), np.maximum(mae, 0.0))


def triple_barrier_labelset(
    symbol: str, candles, *, tp_pct: float, sl_pct: float, horizon: int, side: str = "long"
) -> LabelSet:
    """:func:`triple_barrier` on a :class:`~strategies.engine.Candles` as a :class:`LabelSet`,
    unknown rows dropped. Labels: ``success`` (1/0), ``ret_pct``, ``hold_candles``,
    ``mfe_pct``, ``mae_pct``; ``horizon_ms`` = open time of the exit candle − the row's time."""
    tb = triple_barrier(
        candles.high, candles.low, candles.close, tp_pct=tp_pct, sl_pct=sl_pct, horizon=horizon, side=side
    )
    keep = np.flatnonzero(tb.label >= 0)
    t = np.asarray(candles.time, dtype=np.int64)
    return LabelSet(
        np.full(len(keep), symbol, dtype=object),
        t[keep],
        t[keep + tb.hold[keep]] - t[keep],
        {
            "success": tb.label[keep].astype(np.float64),
            "ret_pct": tb.ret_pct[keep],
            "hold_candles": tb.hold[keep].astype(np.float64),
            "mfe_pct": tb.mfe_pct[keep],
            "mae_pct": tb.mae_pct[keep],
        },
    )


# -- deals simulated by the one engine -------------------------------------------------------
def simulate(
    strategy: str,
    params: Mapping[str, Any],
    feed,
    symbols: Iterable[str],
    *,
    start_ms: int,
    end_ms: int,
    capital: float = 10_000.0,
    fee_bps: float | None = 10.0,
    slippage_bps: float = 5.0,
    risk: dict[str, Any] | None = None,
):
    """Run ``strategy`` over ``feed`` with :func:`strategies.backtest.run_backtest` — the function
    ``manage.py backtest`` calls — on Binance-like markets; returns the engine's ``RunResult``.

    Raises :class:`strategies.backtest.BacktestInputError` for bad params or an empty range.
    """
    from strategies.backtest import BacktestConfig, run_backtest
    from strategies.engine import MarketSpec

    symbols = tuple(symbols)
    config = BacktestConfig(
        strategy,
        dict(params),
        symbols,
        feed.timeframe,
        int(start_ms),
        int(end_ms),
        float(capital),
        fee_bps,
        slippage_bps,
        risk,
    )
    markets = [MarketSpec.binance_like(s, float(feed.candles(s).close[0])) for s in symbols]
    result, _ = run_backtest(config, feed, markets, decision_log_cap=0)
    return result


def _deal_path(trade, fills: list, candles) -> dict[str, np.ndarray | int]:
    """The deal's running totals after each candle ``a .. b`` (``a``: candle of the first fill,
    ``b``: candle of the closing fill), from its own fills — read, not re-simulated.

    Returns ``a``, ``b`` and arrays over candles ``a..b``: ``amount`` (base held, >= 0),
    ``bought`` (base bought, long; sold, short), ``cost`` (entry notional, quote), ``exit_value`` (quote received from reducing fills),
    ``fees`` (quote), ``so`` (safety-order fills, count), ``base_cost`` (the base order's
    notional, quote) — each after the fills that happened in that candle — and ``entry_fill``
    (bool: an entry fill happened in that candle).
    """
    t = candles.time
    a, b = _candle_index(t, trade.opened_at), _candle_index(t, trade.closed_at)
    m = b - a + 1
    entry_side = "buy" if trade.side == "long" else "sell"
    amount, bought, cost, exit_value, fees, so, base_cost = (np.zeros(m) for _ in range(7))
    for f in fills:
        k = _candle_index(t, f.time) - a
        if f.side == entry_side:
            amount[k] += f.amount
            bought[k] += f.amount
            cost[k] += f.price * f.amount
            so[k] += f.tag == "safety_order"
            if f.tag == "base_order":
                base_cost[k] += f.price * f.amount
        else:
            amount[k] -= f.amount
            exit_value[k] += f.price * f.amount
        fees[k] += f.fee
    return {
        "a": a,
        "b": b,
        "amount": np.cumsum(amount),
        "bought": np.cumsum(bought),
        "cost": np.cumsum(cost),
        "exit_value": np.cumsum(exit_value),
        "fees": np.cumsum(fees),
        "so": np.cumsum(so),
        "base_cost": np.cumsum(base_cost),
        "entry_fill": bought > 0,
    }


def _candle_index(times: np.ndarray, ms: int) -> int:
    """Index of the stepping candle containing ``ms`` (a fill's time may be a lower-timeframe
    candle's open inside it)."""
    return int(np.searchsorted(times, ms, side="right")) - 1


def _fills_by_deal(result) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for f in result.fills:
        out[f.deal_id].append(f)
    return out


def smart_dca_labels(
    result,
    feed,
    params: Mapping[str, Any],
    *,
    drawdown_pct: float = 3.0,
    recovery_hours: float = 24.0,
) -> dict[str, LabelSet]:
    """Decision-point labels of the closed deals of a Smart DCA run (``result``: the engine's
    ``RunResult`` over ``feed``; ``params``: the strategy params it ran with). Deals still open
    at the end are censored (left out): their outcome is unknown; so are deals whose first fill
    is on the feed's first candle (no decision candle before it).

    Returns ``{kind: LabelSet}``:

    * ``"confidence"`` — one row per deal at the candle whose close decided the base order (the
      candle before the first fill): 1 if the deal closed by take profit (tag ``take_profit`` or
      ``trailing_take_profit``), else 0. Horizon: to the closing candle.
    * ``"dca_spend"`` — one row per candle ``i`` (``a <= i < b``) with an entry fill (the base
      order's candle and every safety-order fill's candle: the closes at which the ladder places
      the next safety orders, where the spend guard asks): the entry cost the deal spent by its
      close (quote, fills at their prices) ÷ its maximum spend ``base_order_size + Σ
      so_sizes(safety_order_size, volume_scale, max_safety_orders)`` (3Commas ladder); a
      fraction, can exceed 1 slightly through slippage. Horizon: to the closing candle. A deal
      closed in its base order's candle has no row.
    * ``"recovery_odds"`` — one row per candle ``i`` (``a <= i < b``) at whose close the deal is
      in drawdown ``(close/avg − 1)·100 <= −drawdown_pct`` (short mirrored; ``avg`` = average entry
      after the fills so far): 1 if within the next ``recovery_hours`` (candles ``i+1 ..
      min(i+N, b)``) a candle's high (short: low) reached the break-even price — the average
      entry in force before that candle — else 0. Horizon: to ``min(i+N, b)``.
    * ``"safu_exit"`` — same rows: 1 if exiting at ``close[i]`` (net P&L of the held amount,
      fees so far, no exit fee — :func:`strategies.backtest.unrealized_pnl`) beat holding to the
      deal's actual close (its ``pnl``), else 0. Horizon: to the closing candle.

    Context columns: ``pnl_pct`` (confidence and dca_spend rows); ``drawdown_pct`` (<= 0),
    ``pnl_now`` and ``pnl_hold`` (quote) on the drawdown rows; and on every ``dca_spend``,
    ``recovery_odds`` and ``safu_exit`` row the deal-state features
    :data:`mlops.core.deal_features.DEAL_FEATURE_NAMES` at the close of candle ``i`` (see
    :func:`deal_state_at`) — the deal models' inputs besides the candle features. Raises
    ``ValueError`` for ``drawdown_pct`` <= 0 or ``recovery_hours`` <= 0.
    """
    from strategies.backtest import unrealized_pnl
    from strategies.library.smart_dca import so_sizes

    from .deal_features import DEAL_FEATURE_NAMES

    if not (drawdown_pct > 0 and recovery_hours > 0):
        raise ValueError(f"drawdown_pct and recovery_hours must be > 0, got {drawdown_pct!r}, {recovery_hours!r}")
    max_spend = float(params["base_order_size"]) + sum(
        so_sizes(float(params["safety_order_size"]), float(params["volume_scale"]), int(params["max_safety_orders"]))
    )
    n_ahead = max(1, int(round(recovery_hours * HOUR_MS / feed.tf_ms)))
    fills = _fills_by_deal(result)
    entries, spends, dds = [], [], []
    for tr in result.trades:
        c = feed.candles(tr.symbol)
        p = _deal_path(tr, fills[tr.deal_id], c)
        a, b = p["a"], p["b"]
        if a < 1:
            continue  # no candle before the entry to decide on
        t0 = int(c.time[a - 1])
        tp = 1.0 if tr.exit_reason in TP_TAGS else 0.0
        entries.append(
            {
                "symbol": tr.symbol,
                "time": t0,
                "horizon_ms": int(c.time[b]) - t0,
                "confidence": tp,
                "pnl_pct": tr.pnl_pct,
            }
        )
        sign = 1.0 if tr.side == "long" else -1.0
        for i in range(a, b):
            k = i - a
            held = p["amount"][k]
            if held <= 0:
                continue
            avg = _avg_entry(p, k)
            dd = sign * (c.close[i] / avg - 1.0) * 100.0
            spend_row = bool(p["entry_fill"][k])
            if dd > -drawdown_pct and not spend_row:
                continue
            state = deal_state_at(tr, p, c, i, params, max_spend=max_spend, tf_ms=feed.tf_ms)
            if spend_row:
                spends.append(
                    {
                        "symbol": tr.symbol,
                        "time": int(c.time[i]),
                        "horizon_ms": int(c.time[b] - c.time[i]),
                        "dca_spend": tr.cost / max_spend,
                        "pnl_pct": tr.pnl_pct,
                        **state,
                    }
                )
            if dd > -drawdown_pct:
                continue
            end = min(i + n_ahead, b)
            rec = 0.0
            for j in range(i + 1, end + 1):
                be = _avg_entry(p, j - 1 - a)
                if (c.high[j] >= be) if sign > 0 else (c.low[j] <= be):
                    rec = 1.0
                    break
            deal = {"side": tr.side, "entry_cost": p["cost"][k], "exit_value": p["exit_value"][k], "fees": p["fees"][k]}
            pnl_now = unrealized_pnl(deal, held, float(c.close[i]))
            dds.append(
                {
                    "symbol": tr.symbol,
                    "time": int(c.time[i]),
                    "h_rec": int(c.time[end] - c.time[i]),
                    "h_close": int(c.time[b] - c.time[i]),
                    "recovery_odds": rec,
                    "safu_exit": 1.0 if pnl_now > tr.pnl else 0.0,
                    "drawdown_pct": dd,
                    "pnl_now": pnl_now,
                    "pnl_hold": tr.pnl,
                    **state,
                }
            )
    dd_names = ("drawdown_pct", "pnl_now", "pnl_hold", *DEAL_FEATURE_NAMES)
    return {
        "confidence": _sorted(LabelSet.from_rows(entries, ("confidence", "pnl_pct"))),
        "dca_spend": _sorted(LabelSet.from_rows(spends, ("dca_spend", "pnl_pct", *DEAL_FEATURE_NAMES))),
        "recovery_odds": _sorted(
            LabelSet.from_rows([dict(r, horizon_ms=r["h_rec"]) for r in dds], ("recovery_odds", *dd_names))
        ),
        "safu_exit": _sorted(
            LabelSet.from_rows([dict(r, horizon_ms=r["h_close"]) for r in dds], ("safu_exit", *dd_names))
        ),
    }


def deal_state_at(trade, path: dict, candles, i: int, params: Mapping[str, Any], *, max_spend: float, tf_ms: int):
    """``{name: value}`` of :data:`~mlops.core.deal_features.DEAL_FEATURE_NAMES` for the deal at
    the close of candle ``i`` (``path``: :func:`_deal_path`, after candle ``i``'s fills) — what
    Smart DCA's ML scorers see there (:class:`~strategies.library.confidence.DealSnapshot`):
    average entry and entry cost (quote) from the fills so far, safety orders filled (fills
    tagged ``safety_order``) of ``max_safety_orders``, the deal's open time (its first fill,
    ms) to the candle's close time ``time[i] + tf_ms``, and the take-profit price of
    :func:`strategies.library.smart_dca.formulas.deal_take_profit_price` (unrounded; the bot's
    TP order is rounded to the market's tick — a difference below one tick)."""
    from strategies.library.smart_dca.formulas import deal_take_profit_price

    from .deal_features import DEAL_FEATURE_NAMES, deal_features

    k = i - path["a"]
    avg = _avg_entry(path, k)
    held = float(path["amount"][k])
    tp = deal_take_profit_price(
        float(params["take_profit"]),
        trade.side,
        tp_type=str(params.get("tp_type", "total")),
        avg_entry=avg,
        entry_cost=float(path["cost"][k]),
        base_cost=float(path["base_cost"][k]),
        amount=held,
    )
    row = deal_features(
        side=trade.side,
        avg_entry=avg,
        close=float(candles.close[i]),
        safety_orders_filled=int(path["so"][k]),
        safety_orders_max=int(params["max_safety_orders"]),
        spent_quote=float(path["cost"][k]),
        max_spend_quote=max_spend,
        opened_at_ms=int(trade.opened_at),
        now_ms=int(candles.time[i]) + int(tf_ms),
        take_profit_price=tp,
    )
    return dict(zip(DEAL_FEATURE_NAMES, row.tolist(), strict=True))


def _avg_entry(path: dict, k: int) -> float:
    """Average entry price (quote) after candle ``a + k``: entry cost ÷ base bought so far."""
    return float(path["cost"][k] / path["bought"][k])


def size_multiplier_target(pnl_pct: np.ndarray, mae_pct: np.ndarray, *, min_risk_pct: float = 0.5) -> np.ndarray:
    """The ``size_multiplier`` regression target of a deal: ``clip(1 + R/2, 0.5, 1.5)`` with
    ``R = pnl_pct / max(mae_pct, min_risk_pct)`` the realised reward-to-risk multiple (the deal's
    net return over its worst adverse move, percent over percent; the floor keeps R finite).
    A stop loss at its full adverse move (R = −1) → 0.5, break-even → 1.0, a win as large as
    its worst adverse move (R = 1) or better → 1.5."""
    r = np.asarray(pnl_pct, dtype=np.float64) / np.maximum(np.asarray(mae_pct, dtype=np.float64), min_risk_pct)
    return np.clip(1.0 + r / 2.0, SIZE_MULT_MIN, SIZE_MULT_MAX)


def detector_labels(result, feed) -> LabelSet:
    """Labels of the closed deals of a detector strategy run (``fork_score``, ``scalping``,
    ``dca_detector``, ``swing``, ``channel`` — :mod:`strategies.library.signal_strategy`).

    One row per closed deal at the candle before its first fill (for a market entry: the signal
    candle; a deal whose first fill is on the feed's first candle is left out). Labels: ``success`` 1 if it exited by ``take_profit`` (before its stop), else 0;
    ``take_profit`` = best favourable move (MFE, percent of the average entry) and
    ``stop_loss`` = worst adverse move (MAE, percent, >= 0) over the candles from the entry
    fill's candle to the exit fill's candle inclusive (highs/lows); ``hold_hours`` =
    ``(closed_at − opened_at) / 3.6e6``; ``size_multiplier`` = :func:`size_multiplier_target`;
    ``pnl_pct`` the deal's net return (percent). Horizon: to the exit candle.
    """
    rows = []
    for tr in result.trades:
        c = feed.candles(tr.symbol)
        a, b = _candle_index(c.time, tr.opened_at), _candle_index(c.time, tr.closed_at)
        if a < 1:
            continue  # no candle before the entry to decide on
        hi, lo = float(c.high[a : b + 1].max()), float(c.low[a : b + 1].min())
        e = tr.entry_price
        if tr.side == "long":
            mfe, mae = (hi / e - 1.0) * 100.0, (1.0 - lo / e) * 100.0
        else:
            mfe, mae = (1.0 - lo / e) * 100.0, (hi / e - 1.0) * 100.0
        t0 = int(c.time[a - 1])
        rows.append(
            {
                "symbol": tr.symbol,
                "time": t0,
                "horizon_ms": int(c.time[b]) - t0,
                "success": 1.0 if tr.exit_reason in TP_TAGS else 0.0,
                "take_profit": max(mfe, 0.0),
                "stop_loss": max(mae, 0.0),
                "hold_hours": (tr.closed_at - tr.opened_at) / HOUR_MS,
                "pnl_pct": tr.pnl_pct,
            }
        )
    ls = LabelSet.from_rows(rows, ("success", "take_profit", "stop_loss", "hold_hours", "pnl_pct"))
    ls.labels["size_multiplier"] = size_multiplier_target(ls.labels["pnl_pct"], ls.labels["stop_loss"])
    return _sorted(ls)


def _sorted(ls: LabelSet) -> LabelSet:
    """Rows in (time, symbol) order (stable)."""
    if len(ls) == 0:
        return ls
    o = np.lexsort((ls.symbol.astype(str), ls.time))
    return LabelSet(ls.symbol[o], ls.time[o], ls.horizon_ms[o], {k: v[o] for k, v in ls.labels.items()})
