"""Read-side of bots for pages, API, websocket snapshots and commands (HackSoft selectors).

Every entry point takes the requesting ``user`` and goes through the one ownership gate
(``Bot.objects.for_user(user)``): another user's bot is ``Bot.DoesNotExist`` (use
``get_object_or_404(bots_for_user(user), pk=...)`` or :func:`bot_get` in views), an anonymous
user sees nothing. Functions that take a ``bot`` assume it came through the gate.

Units: money values are ``Decimal`` in quote currency (the bot's ``quote``) unless the name says
``_pct`` (percent, 1.5 = 1.5 %); ``*_data`` functions return JSON-safe dicts (Decimals as
strings, times as ISO 8601 UTC strings plus ``*_ms`` epoch milliseconds) — exactly the
``data`` of the websocket events documented in ``docs/bots.md``.

"Today" for a bot is its **market day**: the UTC day of its last processed candle (for a live
bot that is today; for a replay bot, the replayed day), and today's P&L is the equity change
since the bot's last equity snapshot before that day began (or since its capital).

Main functions for pages:

- :func:`bots_for_user` — queryset with ``open_trades``/``closed_trades`` annotations
- :func:`dashboard_summary` — balance, today's P&L, active trades, volume, bots per status
- :func:`bot_performance` — win rate, avg P&L, profit factor, Sharpe, max drawdown
- :func:`bot_active_trades` — open deals with current price, unrealized P&L, DCA status
- :func:`bot_recent_events` — the decision log
- :func:`bot_equity_series` — ``[{"time_ms", "equity"}]`` for charts
- :func:`bot_card_data` / :func:`live_snapshot` — per-bot summary and the websocket snapshot

Reads of the HTMX bot pages (``trading.views.bots``; model instances, not ``*_data`` dicts):

- :func:`bots_with_markets` — the user's bots, markets prefetched (list, the 404 gate)
- :func:`open_deal_counts`, :func:`bots_active`, :func:`bots_by_name`, :func:`user_has_bots`
- :func:`bot_events_page` / :func:`bot_event_facets` — the filtered decision log (market-time
  rows only; defined in :mod:`trading.selectors.events`, with the wall-clock bot activity)
- :func:`bot_closed_trades`, :func:`bot_chart` — detail page deals, chart candles and fills
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, DateTimeField, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from market7.timeframes import TIMEFRAME_MS, dt_to_ms
from trading.models import Bot, BotEvent, Candle, EquitySnapshot, Fill, Market, Order, PaperBalance, Trade
from trading.selectors.events import bot_event_facets, bot_events_page  # the decision log (market time)

ZERO = Decimal("0")
MONEY_Q = Decimal("0.01")
#: The bot's JSON columns a listing of deals or events never shows (the engine state alone is
#: kilobytes per bot): ``.defer(*(f"bot__{f}" for f in BOT_BIG_FIELDS))`` where the bot is joined.
BOT_BIG_FIELDS = ("params", "risk", "state", "commands")


def _s(value: Decimal | float | None) -> str | None:
    """Decimal -> plain string without exponent (JSON-safe money)."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


# --- bots -----------------------------------------------------------------------------------


def bots_for_user(user, *, status: str | list[str] | None = None) -> QuerySet[Bot]:
    """The user's bots, newest first, with ``open_trades`` and ``closed_trades`` counts and
    markets prefetched. ``status``: one status or a list."""
    qs = Bot.objects.for_user(user)
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else status)
    return qs.annotate(
        open_trades=Count("trades", filter=Q(trades__status=Trade.Status.OPEN), distinct=True),
        closed_trades=Count("trades", filter=Q(trades__status=Trade.Status.CLOSED), distinct=True),
    ).prefetch_related("markets")


def bot_get(*, user, pk: int) -> Bot:
    """One of the user's bots; ``Bot.DoesNotExist`` otherwise (404)."""
    return bots_for_user(user).get(pk=pk)


def bot_symbols(bot: Bot) -> list[str]:
    """The bot's ccxt symbols, sorted (the engine's market order)."""
    return sorted(m.symbol for m in bot.markets.all())


def last_prices(bot: Bot, at: datetime | None = None) -> dict[str, tuple[datetime, float]]:
    """``{symbol: (open_time, close)}`` of the last stored candle of each market of the bot at
    or before ``at`` (default: the bot's last processed candle, or the newest)."""
    at = at or bot.last_candle_at
    out = {}
    for market in bot.markets.all():
        qs = Candle.objects.filter(market=market, timeframe=bot.timeframe)
        if at is not None:
            qs = qs.filter(open_time__lte=at)
        row = qs.order_by("-open_time").values_list("open_time", "close").first()
        if row:
            out[market.symbol] = row
    return out


def bot_market_day_start(bot: Bot) -> datetime:
    ref = bot.last_candle_at or timezone.now()
    return ref.replace(hour=0, minute=0, second=0, microsecond=0)


def bot_today_pnl(bot: Bot) -> Decimal:
    """Equity change over the bot's market day (quote): equity now minus the last snapshot
    before the day started (or the capital)."""
    if bot.equity is None:
        return ZERO
    day = bot_market_day_start(bot)
    before = (
        EquitySnapshot.objects.filter(bot=bot, time__lt=day).order_by("-time").values_list("equity", flat=True).first()
    )
    return bot.equity - (before if before is not None else bot.capital)


def bot_card_data(bot: Bot) -> dict[str, Any]:
    """A JSON-safe summary of one bot (lists, cards, the websocket snapshot)."""
    equity = bot.equity if bot.equity is not None else bot.capital
    total_pnl = equity - bot.capital
    return {
        "bot_id": bot.pk,
        "name": bot.name,
        "strategy": bot.strategy,
        "markets": bot_symbols(bot),
        "timeframe": bot.timeframe,
        "mode": bot.mode,
        "feed": bot.feed,
        "status": bot.status,
        "status_message": bot.status_message,
        "capital": _s(bot.capital),
        "equity": _s(equity),
        "realized": _s(bot.realized_pnl),
        "unrealized": _s(bot.unrealized_pnl),
        "total_pnl": _s(total_pnl),
        "total_pnl_pct": _s((total_pnl / bot.capital * 100).quantize(MONEY_Q)) if bot.capital else "0",
        "today": _s(bot_today_pnl(bot)),
        "currency": bot.quote,
        "open_trades": getattr(bot, "open_trades", None)
        if hasattr(bot, "open_trades")
        else bot.trades.filter(status=Trade.Status.OPEN).count(),
        "closed_trades": getattr(bot, "closed_trades", None)
        if hasattr(bot, "closed_trades")
        else bot.trades.filter(status=Trade.Status.CLOSED).count(),
        "last_candle_at": _iso(bot.last_candle_at),
        "market_time_ms": bot.last_candle_ms,
        "replay_clock": _iso(bot.replay_now(timezone.now())) if bot.feed == Bot.FeedKind.REPLAY else None,
    }


# --- dashboard ------------------------------------------------------------------------------


def bots_with_day_figures(user) -> QuerySet[Bot]:
    """The user's bots (JSON columns deferred) annotated with their market day's figures, in one
    query whatever the number of bots: ``market_day`` (UTC midnight of ``last_candle_at``, or of
    now before the first step — :func:`bot_market_day_start`), ``equity_before_day`` (Decimal
    quote, the last equity snapshot before that day, None without one: :func:`bot_today_pnl`
    falls back to the capital) and ``volume_day`` (Decimal quote, notional of the fills since
    that day began, None without fills)."""
    day = TruncDay(Coalesce("last_candle_at", Value(timezone.now(), output_field=DateTimeField())), tzinfo=UTC)
    before = EquitySnapshot.objects.filter(bot=OuterRef("pk"), time__lt=OuterRef("market_day")).order_by("-time")
    volume = (
        Fill.objects.filter(order__bot=OuterRef("pk"), time__gte=OuterRef("market_day"))
        .order_by()
        .values("order__bot")
        .annotate(v=Sum(F("price") * F("amount")))
        .values("v")
    )
    return (
        Bot.objects.for_user(user)
        .defer(*BOT_BIG_FIELDS)
        .annotate(market_day=day)
        .annotate(
            equity_before_day=Subquery(before.values("equity")[:1], output_field=DecimalField()),
            volume_day=Subquery(volume, output_field=DecimalField()),
        )
    )


def dashboard_summary(*, user) -> dict[str, Any]:
    """Totals over the user's bots (quote currency; assumes one quote, USDT by default).

    Returns ``{"balance", "capital", "realized", "unrealized", "total_pnl", "today_pnl",
    "active_trades", "closed_trades", "volume", "volume_today", "bots": {status: n},
    "bots_total", "currency"}`` — Decimals (money) and ints. ``volume`` is the notional of all
    fills; ``volume_today`` of fills in each bot's market day.
    """
    bots = list(bots_with_day_figures(user))
    balance = capital = realized = unrealized = today = ZERO
    counts: dict[str, int] = {s: 0 for s in Bot.Status.values}
    volume_today = ZERO
    for bot in bots:
        counts[bot.status] += 1
        balance += bot.equity if bot.equity is not None else bot.capital
        capital += bot.capital
        realized += bot.realized_pnl
        unrealized += bot.unrealized_pnl
        if bot.equity is not None:  # bot_today_pnl, from the annotation
            today += bot.equity - (bot.equity_before_day if bot.equity_before_day is not None else bot.capital)
        volume_today += bot.volume_day or ZERO
    volume = Fill.objects.for_user(user).aggregate(v=Sum(F("price") * F("amount")))["v"] or ZERO
    trades = Trade.objects.for_user(user).aggregate(
        open=Count("id", filter=Q(status=Trade.Status.OPEN)), closed=Count("id", filter=Q(status=Trade.Status.CLOSED))
    )
    return {
        "balance": balance,
        "capital": capital,
        "realized": realized,
        "unrealized": unrealized,
        "total_pnl": balance - capital,
        "today_pnl": today,
        "active_trades": trades["open"],
        "closed_trades": trades["closed"],
        "volume": volume,
        "volume_today": volume_today,
        "bots": counts,
        "bots_total": len(bots),
        "currency": bots[0].quote if bots else getattr(user, "display_currency", "USDT"),
    }


# --- performance ----------------------------------------------------------------------------


def max_drawdown_pct(equity: list[float]) -> float:
    """Largest peak-to-trough fall of an equity series, percent of the peak (5.2 = -5.2 %)."""
    peak, worst = -math.inf, 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak * 100.0)
    return worst


def sharpe_ratio(equity: list[float], periods_per_year: float) -> float | None:
    """Annualised Sharpe of per-period simple returns of ``equity`` (risk-free 0):
    ``mean / stdev(ddof=1) * sqrt(periods_per_year)``; None with < 3 points or zero stdev."""
    if len(equity) < 3:
        return None
    rets = [(b - a) / a for a, b in zip(equity, equity[1:], strict=False) if a]
    if len(rets) < 2:
        return None
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods_per_year)


def bot_performance(*, bot: Bot) -> dict[str, Any]:
    """Closed-deal and equity statistics of one bot.

    ``trades`` (closed), ``wins``, ``losses``, ``win_rate_pct`` (None without trades),
    ``avg_pnl``/``total_pnl``/``best``/``worst`` (Decimal quote), ``avg_pnl_pct``,
    ``profit_factor`` (gross win / gross loss, None without losses), ``sharpe`` (annualised
    from the equity snapshots, one per candle), ``max_drawdown_pct`` (from the snapshots),
    ``avg_duration_s``, ``equity``, ``return_pct``.
    """
    closed = list(
        Trade.objects.filter(bot=bot, status=Trade.Status.CLOSED).values(
            "realized_pnl", "cost", "opened_at", "closed_at"
        )
    )
    pnls = [t["realized_pnl"] or ZERO for t in closed]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    gross_win = sum(wins, ZERO)
    gross_loss = -sum((p for p in losses if p < 0), ZERO)
    equity = [
        float(e) for e in EquitySnapshot.objects.filter(bot=bot).order_by("time").values_list("equity", flat=True)
    ]
    equity_now = bot.equity if bot.equity is not None else bot.capital
    periods = 365 * 24 * 3600 * 1000 / TIMEFRAME_MS[bot.timeframe]
    durations = [(t["closed_at"] - t["opened_at"]).total_seconds() for t in closed if t["closed_at"]]
    sharpe = sharpe_ratio([float(bot.capital), *equity], periods)
    return {
        "trades": len(closed),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate_pct": (len(wins) / len(closed) * 100.0) if closed else None,
        "total_pnl": sum(pnls, ZERO),
        "avg_pnl": (sum(pnls, ZERO) / len(pnls)) if pnls else None,
        "avg_pnl_pct": (
            sum(float(t["realized_pnl"] or 0) / float(t["cost"]) * 100 for t in closed if t["cost"]) / len(closed)
        )
        if closed
        else None,
        "best": max(pnls) if pnls else None,
        "worst": min(pnls) if pnls else None,
        "profit_factor": float(gross_win / gross_loss) if gross_loss else None,
        "sharpe": None if sharpe is None else round(sharpe, 4),
        "max_drawdown_pct": round(max_drawdown_pct([float(bot.capital), *equity]), 4),
        "avg_duration_s": (sum(durations) / len(durations)) if durations else None,
        "equity": equity_now,
        "return_pct": float((equity_now - bot.capital) / bot.capital * 100) if bot.capital else 0.0,
    }


# --- trades, orders, events -----------------------------------------------------------------


def bot_trades(*, bot: Bot, status: str | None = None) -> QuerySet[Trade]:
    """Deals of ``bot``, newest first, market joined. ``status``: open | closed | None."""
    qs = Trade.objects.filter(bot=bot).select_related("market")
    if status:
        qs = qs.filter(status=status)
    return qs


def bot_orders(*, bot: Bot, status: str | None = None) -> QuerySet[Order]:
    """Orders of ``bot``, newest first, market joined."""
    qs = Order.objects.filter(bot=bot).select_related("market")
    return qs.filter(status=status) if status else qs


def trade_data(trade: Trade, price: float | None = None) -> dict[str, Any]:
    """JSON-safe deal (``trade_opened``/``trade_closed`` event data; an active-trade row when
    ``price`` — the current price — is given: adds ``price``, ``unrealized_pnl``, ``pnl_pct``)."""
    data = {
        "bot_id": trade.bot_id,
        "trade_id": trade.pk,
        "deal_id": trade.deal_id,
        "symbol": trade.market.symbol,
        "side": trade.side,
        "status": trade.status,
        "opened_at": _iso(trade.opened_at),
        "closed_at": _iso(trade.closed_at),
        "avg_entry": _s(trade.avg_entry),
        "amount": _s(trade.amount),
        "cost": _s(trade.cost),
        "fees": _s(trade.fees),
        "take_profit_price": _s(trade.take_profit_price),
        "stop_loss_price": _s(trade.stop_loss_price),
        "safety_orders_filled": trade.safety_orders_filled,
        "safety_orders_max": trade.safety_orders_max,
        "tags": list(trade.tags or []),
        "exit_price": _s(trade.exit_price),
        "exit_reason": trade.exit_reason,
        "realized_pnl": _s(trade.realized_pnl),
        "pnl_pct": _s(trade.pnl_pct.quantize(MONEY_Q)) if trade.pnl_pct is not None else None,
    }
    if price is not None and trade.status == Trade.Status.OPEN:
        p = Decimal(str(price))
        sign = 1 if trade.side == Trade.Side.LONG else -1
        unreal = sign * (p - trade.avg_entry) * trade.amount - trade.fees
        data.update(
            {
                "price": _s(p),
                "unrealized_pnl": _s(unreal.quantize(Decimal("1e-8"))),
                "pnl_pct": _s((unreal / trade.cost * 100).quantize(MONEY_Q)) if trade.cost else None,
            }
        )
    return data


def bot_active_trades(*, bot: Bot) -> list[dict[str, Any]]:
    """Open deals with the current price (last close at the bot's market time), unrealized
    P&L (net of entry fees), P&L %, and DCA status: ``safety_orders_filled``/``_max``,
    ``take_profit_price``, ``next_safety_price`` and ``ladder`` (from the engine's deal info)."""
    prices = {s: close for s, (_, close) in last_prices(bot).items()}
    out = []
    for trade in bot_trades(bot=bot, status=Trade.Status.OPEN):
        row = trade_data(trade, prices.get(trade.market.symbol))
        info = trade.info or {}
        row["ladder"] = info.get("ladder", [])
        row["next_safety_price"] = info.get("next_safety_price")
        row["dca"] = f"{trade.safety_orders_filled}/{trade.safety_orders_max}"
        out.append(row)
    return out


def event_data(event: BotEvent) -> dict[str, Any]:
    return {
        "bot_id": event.bot_id,
        "event_id": event.pk,
        "time": _iso(event.time),
        "kind": event.kind,
        "rule": event.rule,
        "outcome": event.outcome,
        "reason": event.reason,
        "symbol": event.symbol,
        "payload": event.payload,
    }


def bot_recent_events(
    *, bot: Bot, limit: int = 50, kinds: list[str] | None = None, hide_allow: bool = True
) -> list[BotEvent]:
    """The newest ``limit`` log entries (decisions with their reasons, orders, fills, status).
    ``hide_allow`` drops routine ``allow`` decisions."""
    qs = BotEvent.objects.filter(bot=bot)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    if hide_allow:
        qs = qs.exclude(kind=BotEvent.Kind.DECISION, outcome="allow")
    return list(qs.order_by("-time", "-id")[:limit])


def bot_equity_series(*, bot: Bot, max_points: int = 1000) -> list[dict[str, Any]]:
    """Equity snapshots oldest first as ``[{"time_ms": int, "equity": float, "realized":
    float, "unrealized": float}]``, evenly thinned to at most ``max_points`` (last kept)."""
    rows = list(
        EquitySnapshot.objects.filter(bot=bot)
        .order_by("time")
        .values_list("time", "equity", "realized_pnl", "unrealized_pnl")
    )
    if len(rows) > max_points:
        step = len(rows) / max_points
        idx = sorted({int(i * step) for i in range(max_points)} | {len(rows) - 1})
        rows = [rows[i] for i in idx]
    return [
        {"time_ms": dt_to_ms(t), "equity": float(e), "realized": float(r), "unrealized": float(u)}
        for t, e, r, u in rows
    ]


def bot_balances(*, bot: Bot) -> list[PaperBalance]:
    return list(PaperBalance.objects.filter(bot=bot).order_by("asset"))


def bot_volume(*, bot: Bot, since: datetime | None = None) -> Decimal:
    qs = Fill.objects.filter(order__bot=bot)
    if since:
        qs = qs.filter(time__gte=since)
    return qs.aggregate(v=Sum(F("price") * F("amount")))["v"] or ZERO


# --- pages ----------------------------------------------------------------------------------
# The HTMX pages' reads: model instances (the templates format them), every query through the
# ownership gate. Candles are market data (not owned): :func:`bot_chart` reaches them through a
# bot that came through the gate.


def bots_with_markets(user) -> QuerySet[Bot]:
    """The user's bots, newest first, markets prefetched, no annotations (two queries when
    evaluated). The bot pages' 404 gate: ``get_object_or_404(bots_with_markets(user), pk=pk)``."""
    return Bot.objects.for_user(user).prefetch_related("markets")


def bots_by_name(user) -> QuerySet[Bot]:
    """The user's bots ordered by name (filter choices), markets not loaded."""
    return Bot.objects.for_user(user).order_by("name")


def bots_active(user) -> list[Bot]:
    """The user's running or paused bots, newest first (what an emergency stop would stop)."""
    return list(Bot.objects.for_user(user).filter(status__in=[Bot.Status.RUNNING, Bot.Status.PAUSED]))


def live_open_order_count(*, user) -> int:
    """How many open orders the user's live bots have (what an emergency stop cancels at the
    exchange, besides stray orders it finds there)."""
    return Order.objects.for_user(user).filter(bot__mode=Bot.Mode.LIVE, status=Order.Status.OPEN).count()


def user_has_bots(user) -> bool:
    """Whether the user owns at least one bot."""
    return Bot.objects.for_user(user).exists()


def open_deal_counts(*, user, bots: list[Bot]) -> dict[int, int]:
    """``{bot_id: number of open deals}`` of the user's ``bots``, one query; a bot without open
    deals is absent (read it with ``.get(pk, 0)``). No query when ``bots`` is empty."""
    rows = (
        Trade.objects.for_user(user)
        .filter(bot__in=bots, status=Trade.Status.OPEN)
        .values_list("bot")
        .annotate(n=Count("id"))
        .values_list("bot", "n")
    )
    return dict(rows)


def bot_closed_trades(*, user, bot: Bot, limit: int = 50) -> list[Trade]:
    """The newest ``limit`` closed deals of ``bot`` (by open time, newest first), market and bot
    joined. Money fields are Decimal, quote currency."""
    qs = Trade.objects.for_user(user).filter(bot=bot, status=Trade.Status.CLOSED).select_related("market")
    trades = list(qs[:limit])
    for trade in trades:  # the bot is the one given: no join of its row (and its state) per deal
        trade.bot = bot
    return trades


def bot_chart(*, user, bot: Bot, market: Market, limit: int = 600) -> tuple[list[dict[str, Any]], list[Fill]]:
    """The candlestick chart of one of the bot's markets: ``(candles, fills)``.

    ``candles``: the last ``limit`` candles of the bot's timeframe up to its market time (its
    last processed candle; for a replay bot that has not stepped, its replay start), oldest
    first, as ``[{"time": epoch s, "open", "high", "low", "close": float quote, "volume": float
    base}]``. ``fills``: the bot's fills on ``market`` from the first shown candle on (all of them
    when there are no candles), oldest first, with ``order``, ``order.market`` and
    ``order.trade`` joined. Two queries.
    """
    qs = Candle.objects.filter(market=market, timeframe=bot.timeframe)
    if bot.last_candle_at is not None:
        qs = qs.filter(open_time__lte=bot.last_candle_at)
    elif bot.feed == Bot.FeedKind.REPLAY and bot.replay_start:
        qs = qs.filter(open_time__lte=bot.replay_start)
    rows = list(qs.order_by("-open_time").values_list("open_time", "open", "high", "low", "close", "volume")[:limit])
    candles = [
        {"time": int(t.timestamp()), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in reversed(rows)
    ]
    fills = (
        Fill.objects.for_user(user)
        .filter(order__bot=bot, order__market=market)
        .select_related("order", "order__market", "order__trade")
        .order_by("time", "id")
    )
    if rows:
        fills = fills.filter(time__gte=rows[-1][0])
    return candles, list(fills)


# --- runner reads ---------------------------------------------------------------------------


def markets_last_open(market_ids: list[int], timeframe: str) -> dict[int, datetime]:
    """``{market_id: newest stored candle open time}`` for one timeframe (markets without
    candles are left out). One query; each market's newest candle is a correlated ``ORDER BY
    open_time DESC LIMIT 1``, a single probe of the unique (market, timeframe, open_time)
    index, where a ``GROUP BY`` over all the markets' candles would scan them all on every
    replay step."""
    newest = Candle.objects.filter(market=OuterRef("pk"), timeframe=timeframe).order_by("-open_time")
    rows = Market.objects.filter(pk__in=market_ids).order_by().annotate(last=Subquery(newest.values("open_time")[:1]))
    return {market_id: last for market_id, last in rows.values_list("pk", "last") if last is not None}


def bots_running() -> QuerySet[Bot]:
    return Bot.objects.filter(status=Bot.Status.RUNNING).order_by("pk")


# --- websocket snapshot ---------------------------------------------------------------------


def live_snapshot(*, user) -> dict[str, Any]:
    """The ``snapshot`` event sent when a websocket connects: the user's bots (as
    :func:`bot_card_data`), the dashboard summary (money as strings) and the watched prices."""
    bots = list(bots_for_user(user))
    summary = dashboard_summary(user=user)
    prices = []
    for bot in bots:
        for symbol, (t, close) in last_prices(bot).items():
            prices.append(
                {"bot_id": bot.pk, "symbol": symbol, "price": _s(close), "time": _iso(t), "time_ms": dt_to_ms(t)}
            )
    return {
        "bots": [bot_card_data(b) for b in bots],
        "summary": {k: (_s(v) if isinstance(v, Decimal) else v) for k, v in summary.items()},
        "prices": prices,
        "time": timezone.now().isoformat(),
    }


def market_symbols(ids: list[int]) -> dict[int, str]:
    return dict(Market.objects.filter(pk__in=ids).values_list("pk", "symbol"))


__all__ = [
    "bot_active_trades",
    "bot_balances",
    "bot_card_data",
    "bot_chart",
    "bot_closed_trades",
    "bot_equity_series",
    "bot_event_facets",
    "bot_events_page",
    "bot_get",
    "bot_orders",
    "bot_performance",
    "bot_recent_events",
    "bot_symbols",
    "bot_today_pnl",
    "bot_trades",
    "bot_volume",
    "bots_active",
    "bots_by_name",
    "bots_for_user",
    "bots_with_markets",
    "dashboard_summary",
    "event_data",
    "last_prices",
    "live_snapshot",
    "open_deal_counts",
    "trade_data",
    "user_has_bots",
]
