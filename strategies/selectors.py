"""Read-side queries and display rows of stored backtest runs (HackSoft: selectors read).

Everything here reads what a run saved (``BacktestRun.report``, ``BacktestTrade`` rows, and the
candles of its markets for the price chart); nothing writes. Runs are always reached through
``BacktestRun.objects.for_user(user)`` — the one ownership gate — so another user's run is a
:class:`~django.http.Http404`, never a leak.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.http import Http404

from market7.formatting import format_money, format_number, format_pct, human_label
from strategies.models import BacktestRun

__all__ = [
    "run_for_user",
    "metric_rows",
    "param_rows",
    "run_chart",
    "pair_rows",
    "trades_page",
    "TRADE_CSV_COLUMNS",
    "trades_csv_rows",
]

# Metrics shown first (when present), in this order; the rest follow in the report's order.
METRIC_ORDER = (
    "total_return_pct",
    "final_equity",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "open_deals",
    "open_pnl",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "cagr_pct",
    "exposure_pct",
    "fees_paid",
)
MONEY_METRICS = {"final_equity", "fees_paid", "open_pnl", "net_profit"}
COUNT_METRICS = {"trades", "open_deals"}
SIGNED_METRICS = {"total_return_pct", "cagr_pct", "open_pnl", "net_profit", "sharpe", "sortino", "avg_trade_pct"}


def run_for_user(user, pk: int) -> BacktestRun:
    """The run ``pk`` if ``user`` owns it (or may see it); else :class:`Http404`."""
    try:
        return BacktestRun.objects.for_user(user).get(pk=pk)
    except (BacktestRun.DoesNotExist, ValueError, TypeError):
        raise Http404("no such backtest") from None


def format_metric(key: str, value: Any, quote: str) -> str:
    """One metric value as text: percents ``"3.25 %"``, money ``"1,032.50 USDT"``, counts ``"12"``,
    ratios with 2 decimals; ``None`` -> ``"—"``."""
    if value is None:
        return "—"
    if key.endswith("_pct"):
        return format_pct(value)
    if key in MONEY_METRICS:
        return format_money(value, quote)
    if key in COUNT_METRICS:
        return format_number(value, 0)
    return format_number(value, 2)


def metric_rows(metrics: dict[str, Any], quote: str = "") -> list[dict[str, Any]]:
    """``[{key, label, value, text, sign}]`` for the metrics panel: known metrics first
    (:data:`METRIC_ORDER`), proper labels (``cagr_pct`` -> ``CAGR``), units in ``text``,
    ``sign`` -1/0/1 for colour, set only for gains/losses (:data:`SIGNED_METRICS`)."""
    keys = [k for k in METRIC_ORDER if k in metrics]
    keys += [k for k in metrics if k not in keys]
    rows = []
    for key in keys:
        value = metrics[key]
        if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
            continue
        sign = (value > 0) - (value < 0) if value is not None and key in SIGNED_METRICS else 0
        rows.append(
            {
                "key": key,
                "label": human_label(key),
                "value": value,
                "text": format_metric(key, value, quote),
                "sign": sign,
            }
        )
    return rows


def param_rows(params: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The run's parameters as ``[{key, label, value}]`` in name order; a nested section
    (``risk``) is flattened to ``risk.max_positions`` labelled ``Risk · Max positions``; lists
    are joined with ", ". Booleans stay booleans (the template shows them with ``onoff``)."""
    rows = []
    for key in sorted(params):
        value = params[key]
        name = f"{prefix}{key}"
        label = human_label(key)
        if isinstance(value, dict):
            for row in param_rows(value, prefix=f"{name}."):
                rows.append({**row, "label": f"{label} · {row['label']}"})
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        rows.append({"key": name, "label": label, "value": value})
    return rows


def run_chart(run: BacktestRun, symbol: str | None = None) -> dict[str, Any]:
    """The price chart of one market of a finished run: its candles over the run's period and
    the trades' fills as markers (from the stored report, closed and still-open deals).

    Returns ``{"symbol", "symbols", "timeframe", "precision": price decimals, "candles":
    [{time: epoch s (open), open, high, low, close, volume}], "markers": [...]}`` (markers as
    :func:`strategies.charts.trade_markers`). ``symbol`` defaults to the run's first; a symbol
    the run did not trade raises :class:`ValueError`.
    """
    from market7.formatting import price_decimals
    from market7.timeframes import timeframe_ms
    from strategies.charts import trade_markers
    from trading.models import Market
    from trading.selectors.candles import candles_arrays

    symbols = list(run.symbols or [])
    symbol = symbol or (symbols[0] if symbols else "")
    if symbol not in symbols:
        raise ValueError(f"{symbol!r} is not a market of backtest #{run.pk} ({', '.join(symbols)})")
    tf_ms = timeframe_ms(run.timeframe)
    market = Market.objects.filter(exchange__code=run.exchange, symbol=symbol).first()
    candles: list[dict[str, Any]] = []
    if market is not None:
        a = candles_arrays(
            market=market, timeframe=run.timeframe, start=run.start, end=run.end + timedelta(milliseconds=tf_ms)
        )
        candles = [
            {
                "time": int(t) // 1000,
                "open": float(o),
                "high": float(h),
                "low": float(lo),
                "close": float(c),
                "volume": float(v),
            }
            for t, o, h, lo, c, v in zip(
                a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"], strict=True
            )
        ]
    report = run.report or {}
    trades = [t for t in report.get("trades", []) if t.get("symbol") == symbol]
    open_deals = [d for d in report.get("open_deals", []) if d.get("symbol") == symbol]
    last = candles[-1]["close"] if candles else None
    return {
        "symbol": symbol,
        "symbols": symbols,
        "timeframe": run.timeframe,
        "precision": price_decimals(last, market.precision if market else None),
        "candles": candles,
        "markers": trade_markers(trades, open_deals, bar_s=tf_ms // 1000),
    }


def pair_rows(run: BacktestRun) -> list[dict[str, Any]]:
    """Per-market breakdown ``[{symbol, trades, wins, win_rate_pct, pnl, fees, profit_factor,
    avg_pnl_pct}]`` from ``report["pairs"]`` (rebuilt from the report's trades for runs saved
    before it existed — same function, :func:`strategies.backtest.pairs_build`)."""
    from strategies.backtest import pairs_build

    report = run.report or {}
    pairs = report.get("pairs")
    if pairs is None:
        pairs = pairs_build(report.get("trades", []), run.symbols or [])
    return [{"symbol": symbol, **row} for symbol, row in pairs.items()]


TRADES_PAGE_SIZE = 50
TRADE_CSV_COLUMNS = (
    "symbol",
    "side",
    "opened_at",
    "closed_at",
    "entry_price",
    "exit_price",
    "amount",
    "cost",
    "fees",
    "pnl",
    "pnl_pct",
    "exit_reason",
    "safety_orders_filled",
)


def trades_page(run: BacktestRun, *, page: Any = 1, symbol: str = "", per_page: int = TRADES_PAGE_SIZE):
    """One page (Django :class:`~django.core.paginator.Page`) of the run's closed deals in
    opening order, optionally of one ``symbol``; a page number out of range gives the last page."""
    from django.core.paginator import Paginator

    qs = run.trades.order_by("opened_at", "id")
    if symbol:
        qs = qs.filter(symbol=symbol)
    return Paginator(qs, per_page).get_page(page)


def trades_csv_rows(run: BacktestRun):
    """Rows for ``trades.csv``: :data:`TRADE_CSV_COLUMNS` then one row per closed deal, in
    opening order. Times ISO 8601 UTC; prices, money (quote) and amounts as exact decimals."""
    yield list(TRADE_CSV_COLUMNS)
    for t in run.trades.order_by("opened_at", "id").iterator():
        row = []
        for col in TRADE_CSV_COLUMNS:
            v = getattr(t, col)
            if hasattr(v, "isoformat"):
                v = v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif isinstance(v, Decimal):
                v = format(v.normalize(), "f")
            row.append(v)
        yield row


DECISIONS_PAGE_SIZE = 50


def decision_log_page(
    run: BacktestRun,
    *,
    page: Any = 1,
    rule: str = "",
    outcome: str = "",
    symbol: str = "",
    per_page: int = DECISIONS_PAGE_SIZE,
):
    """One page of the run's stored decision log (``report["decision_log"]``, time order),
    filtered by exact ``rule`` / ``outcome`` / ``symbol`` when given. Returns ``(page, facets)``:
    a Django ``Page`` of ``{time: aware datetime UTC, rule, outcome, reason, symbol}`` and
    ``{"rules": [...], "outcomes": [...], "dropped": int}`` (the choices in the whole log, and
    how many decisions the run did not keep)."""
    from django.core.paginator import Paginator

    from strategies.charts import epoch_s

    report = run.report or {}
    log = report.get("decision_log") or []
    rows = [
        r
        for r in log
        if (not rule or r.get("rule") == rule)
        and (not outcome or r.get("outcome") == outcome)
        and (not symbol or r.get("symbol") == symbol)
    ]
    pg = Paginator(rows, per_page).get_page(page)
    pg.object_list = [
        {**r, "time": datetime.fromtimestamp(epoch_s(r.get("time")) or 0, tz=UTC)} for r in pg.object_list
    ]
    facets = {
        "rules": sorted({r.get("rule", "") for r in log}),
        "outcomes": sorted({r.get("outcome", "") for r in log}),
        "dropped": int(report.get("decision_log_dropped") or 0),
    }
    return pg, facets


def open_deal_rows(run: BacktestRun) -> tuple[list[dict[str, Any]], float]:
    """The deals still open at the end (``report["open_deals"]`` with ``opened_at_dt`` an aware
    datetime) and their summed unrealized P&L (quote; ``metrics["open_pnl"]``, else the sum)."""
    from strategies.charts import epoch_s

    report = run.report or {}
    rows = [
        {**d, "opened_at_dt": datetime.fromtimestamp(epoch_s(d.get("opened_at")) or 0, tz=UTC)}
        for d in report.get("open_deals") or []
    ]
    total = (run.metrics or {}).get("open_pnl")
    if total is None:
        total = sum(float(d.get("unrealized_pnl") or 0.0) for d in rows)
    return rows, float(total)


COMPARE_MAX = 8
COMPARE_COLORS = ("#4c8dff", "#f0b90b", "#16c784", "#ea3943", "#a66cff", "#00c2d1", "#ff8a3d", "#9aa5b1")


def runs_for_compare(user, ids: list[Any]) -> list[BacktestRun]:
    """The runs ``ids`` (in the order given, duplicates dropped) if ``user`` may see every one.

    Raises :class:`ValueError` for a non-integer id, fewer than 2 or more than
    :data:`COMPARE_MAX` runs; :class:`Http404` when any run is missing or another user's."""
    try:
        pks = list(dict.fromkeys(int(i) for i in ids))
    except (TypeError, ValueError):
        raise ValueError("run ids must be integers") from None
    if not 2 <= len(pks) <= COMPARE_MAX:
        raise ValueError(f"select 2 to {COMPARE_MAX} runs to compare (got {len(pks)})")
    found = BacktestRun.objects.for_user(user).in_bulk(pks)
    if len(found) != len(pks):
        raise Http404("no such backtest")
    return [found[pk] for pk in pks]


def compare_rows(runs: list[BacktestRun]) -> dict[str, Any]:
    """Side-by-side view of ``runs``: ``{"metrics": [{key, label, cells: [{text, sign}]}],
    "series": [{label, color, points: [{time: epoch s, value: quote}]}], "precision": int}`` —
    metrics in :data:`METRIC_ORDER` then any other key a run has; equity curves from each
    run's stored report; ``precision`` fits every curve (:func:`strategies.charts.axis_precision`)."""
    from strategies.charts import axis_precision, curves

    keys: list[str] = [k for k in METRIC_ORDER if any(k in (r.metrics or {}) for r in runs)]
    for r in runs:
        keys += [k for k in (r.metrics or {}) if k not in keys and isinstance(r.metrics[k], int | float | None)]
    metrics = []
    for key in keys:
        cells = []
        for r in runs:
            value = (r.metrics or {}).get(key)
            sign = (value > 0) - (value < 0) if value is not None and key in SIGNED_METRICS else 0
            cells.append({"text": format_metric(key, value, r.quote), "sign": sign})
        metrics.append({"key": key, "label": human_label(key), "cells": cells})
    series, values = [], []
    for i, r in enumerate(runs):
        equity, _ = curves(r.equity_curve)
        values += [p["value"] for p in equity]
        label = f"#{r.pk}" + (f" {r.name}" if r.name else "")
        series.append({"label": label, "color": COMPARE_COLORS[i % len(COMPARE_COLORS)], "points": equity})
    return {"metrics": metrics, "series": series, "precision": axis_precision(values, min_decimals=2)}
