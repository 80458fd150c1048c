"""Chart data of a stored backtest run, built from its saved report (pure; no Django).

The backtest pages draw these with lightweight-charts (``static/js/backtests.js``):

- :func:`curves` — equity and drawdown points (epoch seconds) from ``report["equity_curve"]``;
- :func:`axis_precision` — decimals for a price axis so its labels differ across the data range
  (a drawdown of 0.2–1.6 % needs 1–2 decimals; "0 % / −0 %" otherwise);
- :func:`trade_markers` — entry / safety order / exit markers of closed and open deals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["epoch_s", "curves", "axis_precision", "trade_markers"]

UP, DOWN, SO = "#16c784", "#ea3943", "#f0b90b"


def epoch_s(value: Any) -> int | None:
    """Epoch seconds from epoch ms / s (numbers) or an ISO 8601 string; ``None`` if unreadable."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value / 1000) if value > 1e11 else int(value)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def curves(equity_curve: Iterable[Any]) -> tuple[list[dict], list[dict]]:
    """Equity ``[{time: epoch s, value: quote}]`` and drawdown ``[{time, value: % below the
    running peak, ≤ 0, 4 decimals}]`` from report rows ``{"time", "equity"}`` (or ``[time,
    equity]`` pairs). One point per time (the last one wins); non-finite values are skipped."""
    points: dict[int, float] = {}
    for row in equity_curve or []:
        if isinstance(row, Mapping):
            t, v = epoch_s(row.get("time")), row.get("equity")
        else:
            t, v = epoch_s(row[0]), row[1]
        if t is None or v is None or not math.isfinite(float(v)):
            continue
        points[t] = float(v)
    equity = [{"time": t, "value": v} for t, v in sorted(points.items())]
    drawdown, peak = [], -math.inf
    for p in equity:
        peak = max(peak, p["value"])
        drawdown.append({"time": p["time"], "value": round((p["value"] / peak - 1) * 100, 4) if peak > 0 else 0.0})
    return equity, drawdown


def axis_precision(values: Iterable[float], *, min_decimals: int = 0, max_decimals: int = 8) -> int:
    """Decimals for an axis showing ``values`` so that ticks about a fifth of the range apart
    print differently: ``ceil(-log10(range / 5))`` clamped to ``min_decimals..max_decimals``.

    A flat series uses its magnitude as the range (1 when it is all zeros). Examples:
    ``[0, -1.6]`` -> 1, ``[0, -0.2]`` -> 2, ``[10000, 10400]`` -> 0 (``min_decimals=2`` -> 2).
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return max(min_decimals, min(2, max_decimals))
    lo, hi = min(finite), max(finite)
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
    decimals = math.ceil(-math.log10(span / 5) - 1e-9)
    return max(min_decimals, min(max_decimals, decimals))


def trade_markers(
    trades: Iterable[Mapping[str, Any]], open_deals: Iterable[Mapping[str, Any]] = (), *, bar_s: int = 0
) -> list[dict]:
    """lightweight-charts series markers for the fills of ``trades`` (report trade dicts with
    ``orders: [{time, side, tag, price, amount}]``) and of ``open_deals`` (same ``orders``), in
    time order: the first buy of a deal is the entry (``arrowUp`` below the bar), later buys are
    safety orders (``circle``), sells are exits (``arrowDown`` above, text = the exit tag).
    Mirrored for shorts. Times are epoch seconds, floored to the open of the ``bar_s``-second
    candle the fill happened in (so a marker sits on its bar)."""
    out = []
    for deal in [*trades, *open_deals]:
        entry_side = "sell" if deal.get("side") == "short" else "buy"
        entered = False
        for o in deal.get("orders") or []:
            t = epoch_s(o.get("time"))
            if t is None:
                continue
            if bar_s > 0:
                t -= t % bar_s
            tag = str(o.get("tag") or "")
            if o.get("side") == entry_side and not entered:
                entered = True
                marker = {"shape": "arrowUp" if entry_side == "buy" else "arrowDown", "color": UP, "text": "entry"}
            elif o.get("side") == entry_side:
                marker = {"shape": "circle", "color": SO, "text": "SO"}
            else:
                marker = {
                    "shape": "arrowDown" if entry_side == "buy" else "arrowUp",
                    "color": DOWN,
                    "text": tag or "exit",
                }
            marker["position"] = "belowBar" if marker["shape"] == "arrowUp" else "aboveBar"
            marker["time"] = t
            marker["price"] = o.get("price")
            out.append(marker)
    out.sort(key=lambda m: m["time"])
    return out
