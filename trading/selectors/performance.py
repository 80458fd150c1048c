"""Read-side of a bot's results for the bot page: the P&L / equity curve, the profit calendar
(daily, weekly, monthly P&L as FreqUI shows it) and the performance per pair.

All three are computed from the bot's deals (:class:`trading.models.Trade`), read through the
ownership gate (``Trade.objects.for_user(user)``: another user's bot yields no deals) in **one
query each** whatever the number of deals. Money is ``Decimal`` in the bot's quote currency
(``bot.quote``) except the chart series, whose values are floats for the chart library. Times
are market time (UTC): a deal's P&L counts on the day, week or month its ``closed_at`` falls in.

A win is a closed deal with ``realized_pnl > 0`` (the rule of
:func:`trading.selectors.bots.bot_performance`); win rates are percent (62.5 = 62.5 %); profit
factor is gross profit / gross loss (None without a losing deal).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from trading.models import Bot, Trade

ZERO = Decimal("0")

#: Calendar periods and how many of them the calendar shows by default.
PERIODS: dict[str, int] = {"day": 31, "week": 12, "month": 12}


def _plain(value: Decimal) -> str:
    """Decimal -> JSON-safe string without exponent or trailing zeros (``"12.5"``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _closed_deals(user, bot: Bot, since: datetime | None = None):
    qs = Trade.objects.for_user(user).filter(bot=bot, status=Trade.Status.CLOSED, closed_at__isnull=False)
    if since is not None:
        qs = qs.filter(closed_at__gte=since)
    return qs.order_by("closed_at", "id")


# --- the P&L / equity curve -----------------------------------------------------------------


def bot_pnl_series(*, user, bot: Bot) -> dict[str, Any]:
    """The bot's P&L curve: realized P&L cumulated over its closed deals (at each deal's
    ``closed_at``) plus, at the bot's market time (``last_candle_at``), the current unrealized
    P&L of its open deals (``bot.unrealized_pnl``).

    Returns ``{"currency": "USDT", "capital": "1000", "realized": "12.5", "unrealized": "-2.41",
    "series": [{"time": epoch s, "pnl": float, "equity": float}]}`` — oldest first, strictly
    increasing times (deals closed in the same second are one point), starting at 0 P&L at the
    first deal's open time; ``equity`` is ``capital + pnl``; money in quote currency. Empty
    ``series`` for a bot without deals and without a step. One query.
    """
    rows = list(
        Trade.objects.for_user(user)
        .filter(bot=bot)
        .order_by()
        .values_list("status", "opened_at", "closed_at", "realized_pnl")
    )
    points: dict[int, Decimal] = {}
    if rows:
        points[int(min(r[1] for r in rows).timestamp())] = ZERO
    realized = ZERO
    closed = sorted((r for r in rows if r[0] == Trade.Status.CLOSED and r[2] is not None), key=lambda r: r[2])
    for _, _, closed_at, pnl in closed:
        realized += pnl or ZERO
        points[int(closed_at.timestamp())] = realized
    unrealized = bot.unrealized_pnl or ZERO
    if bot.last_candle_at is not None:
        now = int(bot.last_candle_at.timestamp())
        if not points or now >= max(points):
            points[now] = realized + unrealized
    capital = bot.capital
    return {
        "currency": bot.quote,
        "capital": _plain(capital),
        "realized": _plain(realized),
        "unrealized": _plain(unrealized),
        "series": [{"time": t, "pnl": float(v), "equity": float(capital + v)} for t, v in sorted(points.items())],
    }


# --- the profit calendar --------------------------------------------------------------------


def period_start(dt: datetime, period: str) -> datetime:
    """Start (UTC midnight) of the day, ISO week (Monday) or month holding ``dt``."""
    dt = dt.astimezone(UTC)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")


def period_next(start: datetime, period: str) -> datetime:
    """Start of the period after the one starting at ``start``."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (
            start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        )
    raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")


def _period_prev(start: datetime, period: str) -> datetime:
    if period == "month":
        return (
            start.replace(year=start.year - 1, month=12) if start.month == 1 else start.replace(month=start.month - 1)
        )
    return start - timedelta(days=1 if period == "day" else 7)


def bot_profit_calendar(*, user, bot: Bot, period: str = "day", count: int | None = None) -> dict[str, Any]:
    """Realized P&L of the bot's closed deals per day, ISO week or month (UTC, by ``closed_at``).

    ``period``: ``"day"`` | ``"week"`` | ``"month"`` (``ValueError`` otherwise). ``count``
    consecutive periods are shown (default :data:`PERIODS`), ending with the one holding the
    bot's market time (``last_candle_at``; wall time before its first step),
    periods without deals included. Returns::

        {"period": "week", "currency": "USDT",
         "rows": [{"start": datetime, "end": datetime (exclusive), "pnl": Decimal,
                   "pnl_pct": Decimal (of capital) | None, "trades": int, "wins": int,
                   "win_rate_pct": float | None, "heat": int 0..100}, ...],   # oldest first
         "total": {"pnl": Decimal, "trades": int, "wins": int, "win_rate_pct": float | None}}

    ``heat`` is ``|pnl|`` in percent of the largest ``|pnl|`` shown (for the colour of a cell).
    One query.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    count = PERIODS[period] if count is None else int(count)
    if count < 1:
        raise ValueError("count must be at least 1")
    anchor = bot.last_candle_at or timezone.now()
    newest = period_start(anchor, period)
    starts = [newest]
    for _ in range(count - 1):
        starts.append(_period_prev(starts[-1], period))
    starts.reverse()
    # Deals close at candle times up to the bot's market time, so none falls after ``newest``.
    end = period_next(newest, period)
    deals = list(
        _closed_deals(user, bot, since=starts[0]).filter(closed_at__lt=end).values_list("closed_at", "realized_pnl")
    )
    buckets = {s: {"pnl": ZERO, "trades": 0, "wins": 0} for s in starts}
    for closed_at, pnl in deals:
        b = buckets[period_start(closed_at, period)]
        b["pnl"] += pnl or ZERO
        b["trades"] += 1
        b["wins"] += 1 if (pnl or ZERO) > 0 else 0
    top = max((abs(b["pnl"]) for b in buckets.values()), default=ZERO)
    rows = []
    for s in starts:
        b = buckets[s]
        rows.append(
            {
                "start": s,
                "end": period_next(s, period),
                "pnl": b["pnl"],
                "pnl_pct": (b["pnl"] / bot.capital * 100) if bot.capital else None,
                "trades": b["trades"],
                "wins": b["wins"],
                "win_rate_pct": (b["wins"] / b["trades"] * 100.0) if b["trades"] else None,
                "heat": int(round(abs(b["pnl"]) / top * 100)) if top else 0,
            }
        )
    trades = sum(r["trades"] for r in rows)
    wins = sum(r["wins"] for r in rows)
    return {
        "period": period,
        "currency": bot.quote,
        "rows": rows,
        "total": {
            "pnl": sum((r["pnl"] for r in rows), ZERO),
            "trades": trades,
            "wins": wins,
            "win_rate_pct": (wins / trades * 100.0) if trades else None,
        },
    }


# --- performance per pair -------------------------------------------------------------------


def bot_pair_performance(*, user, bot: Bot) -> list[dict[str, Any]]:
    """Closed-deal statistics of the bot per market, best P&L first (then symbol).

    Each row: ``{"symbol", "trades" (closed), "open" (open deals), "wins", "losses",
    "win_rate_pct": float | None, "pnl": Decimal, "avg_pnl": Decimal | None,
    "profit_factor": float | None, "avg_duration_s": float | None}``; markets of the bot
    without deals are listed with zeros. ``avg_duration_s``: mean of ``closed_at - opened_at``
    (seconds of market time). One query (plus the bot's markets unless prefetched).
    """
    rows = (
        Trade.objects.for_user(user)
        .filter(bot=bot)
        .order_by()
        .values_list("market__symbol", "status", "realized_pnl", "opened_at", "closed_at")
    )
    stats: dict[str, dict[str, Any]] = {}

    def row(symbol: str) -> dict[str, Any]:
        return stats.setdefault(
            symbol, {"trades": 0, "open": 0, "wins": 0, "gross_win": ZERO, "gross_loss": ZERO, "pnl": ZERO, "dur": 0.0}
        )

    for symbol, status, pnl, opened_at, closed_at in rows:
        s = row(symbol)
        if status != Trade.Status.CLOSED or closed_at is None:
            s["open"] += 1
            continue
        pnl = pnl or ZERO
        s["trades"] += 1
        s["pnl"] += pnl
        if pnl > 0:
            s["wins"] += 1
            s["gross_win"] += pnl
        elif pnl < 0:
            s["gross_loss"] -= pnl
        s["dur"] += (closed_at - opened_at).total_seconds()
    if bot.owner_id == getattr(user, "pk", None):  # another user sees no rows at all
        for market in bot.markets.all():
            row(market.symbol)
    out = []
    for symbol, s in stats.items():
        n = s["trades"]
        out.append(
            {
                "symbol": symbol,
                "trades": n,
                "open": s["open"],
                "wins": s["wins"],
                "losses": n - s["wins"],
                "win_rate_pct": (s["wins"] / n * 100.0) if n else None,
                "pnl": s["pnl"],
                "avg_pnl": (s["pnl"] / n) if n else None,
                "profit_factor": float(s["gross_win"] / s["gross_loss"]) if s["gross_loss"] else None,
                "avg_duration_s": (s["dur"] / n) if n else None,
            }
        )
    out.sort(key=lambda r: (-r["pnl"], r["symbol"]))
    return out


__all__ = ["PERIODS", "bot_pair_performance", "bot_pnl_series", "bot_profit_calendar", "period_next", "period_start"]


# --- per strategy (strategy manager) --------------------------------------------------------


def bot_strategy_performance(*, user, bot: Bot) -> list[dict[str, Any]]:
    """Per-strategy performance of a strategy-manager bot (``strategy == "manager"``) from its
    closed deals, each tagged ``strategy:<name>`` by the manager: the backtest page's table,
    computed by the same function (``strategies.library.manager.strategy_report``) over the
    bot's deals with ``pnl`` = net realized P&L and ``cost`` = quote spent on entries (floats,
    quote currency) and the bot's ``capital``.

    Returns ``[{"name", "allocation_pct", "trades", "wins", "win_rate_pct", "pnl" (quote),
    "pnl_pct" (of the strategy's capital share), "sharpe" (per trade, not annualised; None with
    fewer than 2 deals), "max_drawdown_pct"}]`` by name, one row per allocated strategy; ``[]``
    for any other strategy. One query.
    """
    if bot.strategy != "manager":
        return []
    from types import SimpleNamespace

    from strategies.library.manager import strategy_report

    deals = [
        SimpleNamespace(
            tags=list(t.tags or []),
            closed_at=t.closed_at,
            deal_id=t.deal_id,
            pnl=float(t.realized_pnl or 0),
            cost=float(t.cost),
        )  # fmt: skip
        for t in _closed_deals(user, bot).only("tags", "closed_at", "deal_id", "realized_pnl", "cost")
    ]
    report = strategy_report(deals, dict(bot.params or {}), float(bot.capital))
    return [{"name": name, **row} for name, row in sorted(report.items())]
