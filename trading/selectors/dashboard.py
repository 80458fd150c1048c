"""Read-side of the dashboard (``/``) and its equity chart: user-wide equity and performance
over all the user's bots, one bot's equity series, and the recent decisions.

Every function goes through the ownership gate (``Model.objects.for_user(user)``): another
user's bots, deals, snapshots and events never count, an anonymous user gets empty results.
Money is in the quote currency (one quote assumed, as in
:func:`trading.selectors.bots.dashboard_summary`): ``Decimal`` from deals, ``float`` in the
chart series; times in series are epoch **seconds** UTC (what the chart library takes).
"""

from __future__ import annotations

import hashlib
import statistics
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from market7.timeframes import dt_to_ms
from trading.models import Bot, BotEvent, EquitySnapshot, Trade
from trading.selectors.bots import BOT_BIG_FIELDS, max_drawdown_pct, sharpe_ratio

ZERO = Decimal("0")


def user_equity_series(user, max_points: int = 1500) -> list[dict[str, Any]]:
    """The user's total equity over (market) time: at every snapshot time, the sum over bots of
    each bot's latest snapshot equity (its capital before its first snapshot). Oldest first,
    ``[{"time": epoch s, "equity": float, "pnl": float (equity - total capital)}]``, thinned
    evenly to ``max_points`` (the last point kept). Quote currency.

    Reading every snapshot is most of the dashboard's time (thousands of rows), so the result
    is cached (Django's cache, Redis) under a key naming what it depends on: the user's bots
    and capitals, and the count, newest id, newest time and sum of their snapshots (which are
    only ever inserted, ``step_writer``). A new snapshot, bot or capital is a new key. Two
    queries on a hit, three on a miss; a cache that is down only costs the recomputation."""
    bots = list(Bot.objects.for_user(user).order_by("pk").values_list("pk", "capital"))
    if not bots:
        return []
    version = EquitySnapshot.objects.for_user(user).aggregate(
        n=Count("id"), last=Max("id"), at=Max("time"), total=Sum("equity")
    )
    digest = hashlib.sha1(repr((bots, sorted(version.items()))).encode()).hexdigest()
    key = f"equity-series:{user.pk}:{max_points}:{digest}"
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - the cache is an optimisation: Redis down costs time only
        cached = None
    if cached is not None:
        return cached
    series = _equity_series(user, bots, max_points)
    try:
        cache.set(key, series, EQUITY_CACHE_S)
    except Exception:  # noqa: BLE001
        pass
    return series


EQUITY_CACHE_S = 3600  # seconds a computed series is kept (its key changes with every snapshot)


def _equity_series(user, bots: list[tuple[int, Decimal]], max_points: int) -> list[dict[str, Any]]:
    """:func:`user_equity_series` computed from the snapshots (one query)."""
    latest = {pk: float(capital) for pk, capital in bots}
    capital = sum(latest.values())
    total = capital
    # One pass over plain lists (no dict, no rounding per snapshot): the page and the JSON
    # read every snapshot of every bot, thousands of rows; only the kept points are built.
    secs: list[int] = []
    totals: list[float] = []
    rows = EquitySnapshot.objects.for_user(user).order_by("time", "bot_id").values_list("time", "bot_id", "equity")
    for t, bot_id, equity in rows:
        value = float(equity)
        total += value - latest[bot_id]
        latest[bot_id] = value
        sec = int(t.timestamp() * 1000) // 1000  # dt_to_ms(t) // 1000, inlined
        if secs and secs[-1] == sec:
            totals[-1] = total
        else:
            secs.append(sec)
            totals.append(total)
    idx = range(len(secs))
    if len(secs) > max_points:
        step = len(secs) / max_points
        idx = sorted({int(i * step) for i in range(max_points)} | {len(secs) - 1})
    return [{"time": secs[i], "equity": round(totals[i], 8), "pnl": round(totals[i] - capital, 8)} for i in idx]


def user_performance(user, series: list[dict] | None = None) -> dict[str, Any]:
    """Performance over all the user's bots: ``closed``, ``wins``, ``losses`` (closed deals,
    a win has P&L > 0), ``win_rate_pct`` (percent, None without deals), ``avg_pnl`` and
    ``total_realized`` (Decimal quote per closed deal / in all), ``sharpe`` (annualised, from
    per-period returns of the combined equity, period = the median spacing of ``series``; None
    with fewer than 3 points) and ``max_drawdown_pct`` (percent of peak, 5.2 = -5.2 %).

    ``series`` is :func:`user_equity_series` of the same user (computed when None)."""
    pnls = [
        p or ZERO
        for p in Trade.objects.for_user(user).filter(status=Trade.Status.CLOSED).values_list("realized_pnl", flat=True)
    ]
    wins = sum(1 for p in pnls if p > 0)
    series = user_equity_series(user) if series is None else series
    capital = float(sum(Bot.objects.for_user(user).values_list("capital", flat=True), ZERO))
    equity = [capital] + [p["equity"] for p in series]
    sharpe = None
    if len(series) >= 3:
        gaps = [b["time"] - a["time"] for a, b in zip(series, series[1:], strict=False) if b["time"] > a["time"]]
        if gaps:
            sharpe = sharpe_ratio(equity, 365 * 24 * 3600 / statistics.median(gaps))
    return {
        "closed": len(pnls),
        "wins": wins,
        "losses": len(pnls) - wins,
        "win_rate_pct": (wins / len(pnls) * 100.0) if pnls else None,
        "avg_pnl": (sum(pnls, ZERO) / len(pnls)) if pnls else None,
        "total_realized": sum(pnls, ZERO),
        "sharpe": sharpe,
        "max_drawdown_pct": max_drawdown_pct(equity) if len(equity) > 1 else 0.0,
    }


def bot_equity_pnl_series(*, user, bot: Bot, max_points: int = 1500) -> list[dict[str, Any]]:
    """One bot's equity snapshots, oldest first, the last ``max_points`` of them (not thinned):
    ``[{"time": epoch s, "equity": float, "pnl": float (equity - the bot's capital)}]``."""
    rows = EquitySnapshot.objects.for_user(user).filter(bot=bot).order_by("-time").values_list("time", "equity")
    rows = reversed(list(rows[:max_points]))  # only the newest max_points are read
    return [{"time": dt_to_ms(t) // 1000, "equity": float(e), "pnl": float(e - bot.capital)} for t, e in rows]


def recent_decisions(user, limit: int = 15) -> list[BotEvent]:
    """The user's newest ``limit`` decisions with reasons (routine ``allow`` outcomes left out)
    and deals opened/closed, over all bots, newest **market time** first (then newest id), bot
    joined. Market-time rows only: status events and step errors carry the wall-clock time and
    would interleave with market times meaninglessly for a replay bot (they are on the bot
    page's activity list, ``trading.selectors.events.bot_activity``). One query."""
    kinds = [BotEvent.Kind.DECISION, BotEvent.Kind.TRADE_OPENED, BotEvent.Kind.TRADE_CLOSED]
    qs = BotEvent.objects.for_user(user).filter(kind__in=kinds).exclude(kind=BotEvent.Kind.DECISION, outcome="allow")
    # The bot's name is shown, never its engine state (kilobytes of JSON per row).
    qs = qs.select_related("bot").defer(*(f"bot__{f}" for f in BOT_BIG_FIELDS))
    return list(qs.order_by("-time", "-id")[:limit])
