"""Run a backtest on a :class:`~strategies.engine.Feed` and build its JSON report (pure core).

No Django here: the ``backtest`` management command, the Celery task and the backtest pages
all call :func:`run_backtest` through ``strategies.services.backtests``, so the same inputs give
byte-identical reports wherever they run (``json.dumps(report, sort_keys=True)``).

Report shape (``report_build``)::

    {
      "metrics": {total_return_pct, cagr_pct, sharpe, sortino, max_drawdown_pct, win_rate_pct,
                  profit_factor, trades (closed), exposure_pct, fees_paid, final_equity,
                  open_deals (count at the end), open_pnl (their unrealized P&L, quote)},
      "trades": [{symbol, side, opened_at, closed_at (ISO 8601 UTC), entry_price (average),
                  exit_price, amount, cost, fees, pnl, pnl_pct, exit_reason,
                  safety_orders_filled, tags, orders: [{time, side, type, tag, price, amount, fee}]}],
      "equity_curve": [{"time": ISO 8601 UTC of the candle close, "equity": quote}],
      "pairs": {symbol: {trades, wins, win_rate_pct, pnl, fees, profit_factor, avg_pnl_pct}},
      "decisions": {"rule:outcome": count, ...},            # every decision, counted
      "decision_log": [{time, rule, outcome, reason, symbol}],  # the first DECISION_LOG_CAP, in time order
      "decision_log_dropped": int,                           # decisions beyond the cap
      "open_deals": [{symbol, side, opened_at, entry_price, amount, cost, fees, safety_orders_filled,
                      mark_price (last close), unrealized_pnl (quote, no exit fee), unrealized_pnl_pct,
                      orders: [...]}],          # deals still open at the end (marked to market in equity)
      "run": {strategy, params, symbols, timeframe, start, end, capital, fee_bps, slippage_bps,
              candles, candle_steps},
      "strategies": {name: {allocation_pct, trades, wins, win_rate_pct, pnl, pnl_pct, sharpe,
                     max_drawdown_pct}}   # only for the "manager" (strategies.library.manager)
    }

Perpetual runs (``config.perpetual`` set; spot reports are unchanged) add to every trade
``leverage`` (x), ``margin`` (initial margin = cost ÷ leverage, quote), ``liquidation_price``
(the last one computed before the close, quote), ``min_liquidation_distance_pct`` (the
smallest distance of the adverse mark extreme from it over the deal, %) and ``funding_paid``
(quote, signed: > 0 paid); to every open deal ``leverage``, ``margin``, ``liquidation_price``
and ``funding_paid``; to the metrics ``funding_paid`` (closed + open deals, quote, signed) and
``liquidations`` (deals closed with exit reason ``liquidation``); and to ``run`` a
``perpetual`` section (``{"leverage", "margin_mode", "liquidation_buffer_pct"}``).

Units: prices and money in quote currency (floats rounded to 10 decimals in the report),
``*_pct`` in percent, times ISO 8601 UTC strings (``2024-03-01T05:00:00Z``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from strategies.engine import Engine, Feed, MarketSpec, RunResult, SimulatedBroker
from strategies.metrics import compute_metrics, profit_factor, win_rate_pct
from strategies.registry import create_strategy

MONEY_DECIMALS = 10
METRIC_DECIMALS = 4
DECISION_LOG_CAP = 5000  # decisions kept with their reasons in a report; the rest are counted


class BacktestInputError(ValueError):
    """A backtest's inputs are unusable (unknown symbol, empty range, bad parameters)."""


@dataclass(frozen=True)
class BacktestConfig:
    """What to run. Times are epoch ms UTC (open times of the first and last candle included)."""

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    timeframe: str
    start_ms: int
    end_ms: int
    capital: float
    fee_bps: float | None = 10.0
    slippage_bps: float = 5.0
    risk: dict[str, Any] | None = None
    # perpetual (swap) runs: {"leverage", "margin_mode", "liquidation_buffer_pct"}; None = spot
    perpetual: dict[str, Any] | None = None


def iso(ms: int) -> str:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _m(x: float | None) -> float | None:
    return None if x is None else round(float(x), MONEY_DECIMALS)


def _risk_manager(config: dict[str, Any] | None, markets=()):
    """A RiskManager from a config dict (``strategies.risk.risk_manager_from_config``, the one
    the bot runner uses too), or None when no risk section is given."""
    from strategies.risk import risk_manager_from_config

    try:
        return risk_manager_from_config(config, markets=markets)
    except (TypeError, ValueError) as exc:
        raise BacktestInputError(f"invalid risk config: {exc}") from None


def run_backtest(
    config: BacktestConfig,
    feed: Feed,
    markets: Iterable[MarketSpec],
    *,
    progress: Callable[[int, int], None] | None = None,
    skip: bool = True,
    decision_log_cap: int = DECISION_LOG_CAP,
    confidence_provider=None,
    exit_scorer=None,
    spend_model=None,
) -> tuple[RunResult, dict[str, Any]]:
    """Run ``config`` over ``feed`` and return ``(result, report)``.

    ``feed`` may hold warm-up candles before ``config.start_ms`` (indicators use them; no
    trade happens before the start) and extra symbols such as BTC/USDT for market filters.
    ``markets`` are the traded markets; with ``config.fee_bps`` set their maker and taker fees
    are overridden; the report keeps the first ``decision_log_cap`` decisions with their
    reasons. ``confidence_provider`` (a ``ConfidenceProvider``, e.g. an ML model's) replaces the
    strategy's rule-based confidence, ``exit_scorer`` / ``spend_model`` Smart DCA's SAFU exit
    score and spend-guard model (:func:`strategies.registry.create_strategy`). Raises
    :class:`BacktestInputError` for bad parameters, a provider the strategy does not take, or
    an empty range.
    """
    from strategies.base import ParamError

    try:
        strategy = create_strategy(
            config.strategy,
            config.params,
            confidence_provider=confidence_provider,
            exit_scorer=exit_scorer,
            spend_model=spend_model,
        )
    except TypeError as exc:
        raise BacktestInputError(str(exc)) from None
    except ParamError as exc:
        errors = getattr(exc, "errors", None) or {}
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or str(exc)
        raise BacktestInputError(f"invalid params: {detail}") from None
    except KeyError as exc:
        raise BacktestInputError(str(exc.args[0] if exc.args else exc)) from None
    specs = list(markets)
    if config.fee_bps is not None:
        specs = [replace(m, maker_fee_bps=float(config.fee_bps), taker_fee_bps=float(config.fee_bps)) for m in specs]
    engine = Engine(
        strategy,
        specs,
        SimulatedBroker(slippage_bps=config.slippage_bps),
        risk=_risk_manager(config.risk, specs),
        capital=config.capital,
        order_prefix="bt",
        skip=skip,
    )
    result = engine.run(feed, start_ms=config.start_ms, end_ms=config.end_ms, progress=progress)
    if len(result.equity) == 0:
        raise BacktestInputError(f"no candles between {iso(config.start_ms)} and {iso(config.end_ms)}")
    marks = {}
    for sym in config.symbols:
        c = feed.candles(sym)
        i = int(np.searchsorted(c.time, config.end_ms, side="right")) - 1
        if i >= 0:
            marks[sym] = float(c.close[i])
    return result, report_build(result, config, timeframe_ms=feed.tf_ms, decision_log_cap=decision_log_cap, marks=marks)


def _exposure_mask(result: RunResult, timeframe_ms: int) -> np.ndarray:
    """True for each equity point (candle close) at which a position was open.

    A deal open from ``opened_at`` (epoch ms of the fill) to ``closed_at`` is exposed at the
    closes ``t`` with ``opened_at < t <= closed_at``; a deal still open at the end is exposed
    to the last close.
    """
    times = result.equity_time
    delta = np.zeros(len(times) + 1, dtype=np.int64)
    spans = [(t.opened_at, t.closed_at) for t in result.trades]
    end = int(times[-1]) if len(times) else 0
    spans += [(int(d["opened_at"]), end) for d in result.open_deals]
    for opened, closed in spans:
        i = int(np.searchsorted(times, opened, side="right"))
        j = int(np.searchsorted(times, closed, side="right"))
        if j > i:
            delta[i] += 1
            delta[j] -= 1
    return np.cumsum(delta[:-1]) > 0


def pairs_build(trades: list[dict[str, Any]], symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per-market breakdown of the report's closed ``trades`` (report trade dicts), one entry per
    traded symbol (in ``symbols`` order, then any other symbol met, sorted)::

        {symbol: {"trades": int, "wins": int, "win_rate_pct": float|None, "pnl": quote,
                  "fees": quote, "profit_factor": float|None, "avg_pnl_pct": float|None}}

    Win rate and profit factor are the run metrics' formulas (:mod:`strategies.metrics`)
    applied to that symbol's trades; ``avg_pnl_pct`` is the mean of the trades' ``pnl_pct``.
    """
    symbols = list(symbols)
    by: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
    for t in trades:
        by.setdefault(t["symbol"], []).append(t)
    out = {}
    for sym in [*symbols, *sorted(set(by) - set(symbols))]:
        rows = by.get(sym, [])
        pnls = [float(t["pnl"]) for t in rows]
        pf = profit_factor(pnls)
        wr = win_rate_pct(pnls)
        out[sym] = {
            "trades": len(rows),
            "wins": sum(1 for p in pnls if p > 0),
            "win_rate_pct": None if wr is None else round(wr, METRIC_DECIMALS),
            "pnl": _m(math.fsum(pnls)),
            "fees": _m(math.fsum(float(t["fees"]) for t in rows)),
            "profit_factor": None if pf is None else round(pf, METRIC_DECIMALS),
            "avg_pnl_pct": round(sum(t["pnl_pct"] for t in rows) / len(rows), METRIC_DECIMALS) if rows else None,
        }
    return out


def unrealized_pnl(deal: dict[str, Any], amount: float, mark: float) -> float:
    """Net P&L of an open deal if it were closed at ``mark`` with no exit fee (quote):
    long ``exit_value + |amount|·mark − entry_cost − fees``, short mirrored — the closed-deal
    formula of :class:`~strategies.engine.orders.ClosedTrade` on the still-held ``amount``
    (perpetuals: minus the deal's ``funding`` paid, as there).
    ``deal`` is the portfolio's deal dict (``entry_cost, exit_value, fees, side``)."""
    held = abs(float(amount)) * float(mark)
    exit_value = float(deal.get("exit_value", 0.0))
    cost, fees = float(deal.get("entry_cost", 0.0)), float(deal.get("fees", 0.0))
    fees += float(deal.get("funding", 0.0))  # perpetuals: funding paid (0 on spot), as in a closed deal
    if deal.get("side") == "short":
        return cost - exit_value - held - fees
    return exit_value + held - cost - fees


def report_build(
    result: RunResult,
    config: BacktestConfig,
    *,
    timeframe_ms: int,
    decision_log_cap: int = DECISION_LOG_CAP,
    marks: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The JSON-safe report of ``result`` (shape in the module docstring); ``decision_log``
    keeps the first ``decision_log_cap`` (≥ 0) decisions, ``decision_log_dropped`` counts the
    rest. ``marks`` (``{symbol: last close, quote}``) value the deals still open: their
    ``unrealized_pnl`` and the metrics ``open_deals`` / ``open_pnl``; without a mark a deal's
    unrealized P&L is ``None`` (and left out of ``open_pnl``)."""
    if decision_log_cap < 0:
        raise ValueError(f"decision_log_cap must be >= 0, got {decision_log_cap}")
    fees_paid = float(sum(f.fee for f in result.fills))
    metrics = compute_metrics(
        equity_times_ms=result.equity_time,
        equity=result.equity,
        trades=result.trades,
        initial_capital=config.capital,
        timeframe_ms=timeframe_ms,
        exposure_mask=_exposure_mask(result, timeframe_ms),
        fees_paid=fees_paid,
    )
    metrics = {k: (round(v, METRIC_DECIMALS) if isinstance(v, float) else v) for k, v in metrics.items()}

    orders = {o.client_order_id: o for o in result.orders}
    fills_by_order: dict[str, list] = {}
    for f in result.fills:
        fills_by_order.setdefault(f.client_order_id, []).append(f)

    def order_rows(ids: list[str]) -> list[dict[str, Any]]:
        rows = []
        for oid in ids:
            o = orders.get(oid)
            for f in fills_by_order.get(oid, []):
                rows.append(
                    {
                        "id": oid,
                        "time": iso(f.time),
                        "side": f.side,
                        "type": o.type if o else "",
                        "tag": o.tag if o else "",
                        "price": _m(f.price),
                        "amount": _m(f.amount),
                        "fee": _m(f.fee),
                    }
                )
        return rows

    marks = marks or {}
    pf_deals = (result.state.portfolio or {}).get("deals", {})
    open_deals = []
    for d in result.open_deals:
        deal = pf_deals.get(d.get("deal_id"), {})
        mark = marks.get(d["symbol"])
        upnl = None if mark is None else unrealized_pnl(deal or d, d.get("amount", 0.0), mark)
        cost = float(d.get("cost") or 0.0)
        open_deals.append(
            {
                "symbol": d["symbol"],
                "side": d["side"],
                "opened_at": iso(int(d["opened_at"])),
                "entry_price": _m(d.get("entry_price")),
                "amount": _m(d.get("amount")),
                "cost": _m(cost),
                "fees": _m(d.get("fees")),
                "safety_orders_filled": int(d.get("safety_orders_filled", 0)),
                "mark_price": _m(mark),
                "unrealized_pnl": _m(upnl),
                "unrealized_pnl_pct": None if upnl is None or not cost else round(upnl / cost * 100, METRIC_DECIMALS),
                "orders": order_rows(list(deal.get("orders", []))),
            }
        )
    metrics["open_deals"] = len(open_deals)
    metrics["open_pnl"] = round(
        math.fsum(o["unrealized_pnl"] for o in open_deals if o["unrealized_pnl"] is not None), METRIC_DECIMALS
    )

    trades = [
        {
            "symbol": t.symbol,
            "side": t.side,
            "opened_at": iso(t.opened_at),
            "closed_at": iso(t.closed_at),
            "entry_price": _m(t.entry_price),
            "exit_price": _m(t.exit_price),
            "amount": _m(t.amount),
            "cost": _m(t.cost),
            "fees": _m(t.fees),
            "pnl": _m(t.pnl),
            "pnl_pct": round(float(t.pnl_pct), METRIC_DECIMALS),
            "exit_reason": t.exit_reason,
            "safety_orders_filled": int(t.safety_orders_filled),
            "tags": list(t.tags),
            "orders": order_rows(list(t.orders)),
        }
        for t in result.trades
    ]
    if config.perpetual is not None:
        _perpetual_fields(result, config, trades, open_deals, pf_deals, metrics)
    report = {
        "metrics": metrics,
        "trades": trades,
        "equity_curve": [
            {"time": iso(int(t)), "equity": _m(e)} for t, e in zip(result.equity_time, result.equity, strict=True)
        ],
        "pairs": pairs_build(trades, config.symbols),
        "decisions": dict(sorted(Counter(d.key for d in result.decisions).items())),
        "decision_log": [
            {"time": iso(d.time), "rule": d.rule, "outcome": d.outcome, "reason": d.reason, "symbol": d.symbol}
            for d in result.decisions[:decision_log_cap]
        ],
        "decision_log_dropped": max(0, len(result.decisions) - decision_log_cap),
        "open_deals": open_deals,
        "run": {
            "strategy": config.strategy,
            "params": config.params,
            "symbols": list(config.symbols),
            "timeframe": config.timeframe,
            "start": iso(config.start_ms),
            "end": iso(config.end_ms),
            "capital": config.capital,
            "fee_bps": config.fee_bps,
            "slippage_bps": config.slippage_bps,
            "candles": int(result.candles_processed),
            "candle_steps": int(result.candle_steps),
        },
    }
    if config.perpetual is not None:
        report["run"]["perpetual"] = dict(config.perpetual)
    if config.strategy == "manager":  # per-strategy performance of the managed strategies
        from strategies.library.manager import strategy_report

        report["strategies"] = strategy_report(result.trades, config.params, config.capital)
    return report


def _perpetual_fields(result, config, trades, open_deals, pf_deals, metrics) -> None:
    """Add the perpetual keys (module docstring) to the report's ``trades``, ``open_deals``
    and ``metrics`` in place."""
    lev = float(config.perpetual["leverage"])
    for row, t in zip(trades, result.trades, strict=True):
        row["leverage"] = float(t.leverage)
        row["margin"] = _m(t.margin)
        row["liquidation_price"] = _m(t.liquidation_price)
        row["min_liquidation_distance_pct"] = round(float(t.min_liquidation_distance_pct), METRIC_DECIMALS)
        row["funding_paid"] = _m(t.funding)
    open_funding = []
    for row, d in zip(open_deals, result.open_deals, strict=True):
        deal = pf_deals.get(d.get("deal_id"), {})
        funding = float(deal.get("funding", 0.0))
        open_funding.append(funding)
        row["leverage"] = lev
        row["margin"] = _m(float(deal.get("entry_cost", 0.0)) / lev)
        row["liquidation_price"] = _m(deal.get("liquidation_price", 0.0))
        row["funding_paid"] = _m(funding)
    metrics["funding_paid"] = _m(math.fsum([*(t.funding for t in result.trades), *open_funding]))
    metrics["liquidations"] = sum(1 for t in result.trades if t.exit_reason == "liquidation")
