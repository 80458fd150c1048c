"""Read selectors for market pages and the market API: the markets overview, one market's
summary, and its candles for the chart.

The overview is two queries however many markets there are (DESIGN.md: no query per row):

1. the markets, each annotated in SQL with its *stats timeframe* and the 24 h figures below
   (correlated subqueries that seek the ``(market, timeframe, open_time)`` unique index, so
   sorting by price, change or volume happens in the database);
2. per ``(market, timeframe)`` of those markets: candle count, first and last open time.

Definitions (all from closed candles, prices in quote currency, times UTC):

- **stats timeframe**: ``1h`` when the market has 1h candles, else the first present of
  :data:`STATS_TIMEFRAME_PREFERENCE`.
- **last close**: close of the latest candle of the stats timeframe.
- **24 h** means the 24 hours that end at the close of that latest candle (data may be
  historical, so "now" would often be empty). With ``last_open`` the latest open time:
  the window is the candles with ``open_time > last_open - 24h`` (24 candles of 1h).
- **24 h change %** = ``(last_close / ref_close - 1) * 100`` where ``ref_close`` is the close
  of the candle that opened at ``last_open - 24h`` (its close is the price 24 h before the last
  close); when that candle is missing (a gap), the earliest candle at or after that time.
- **24 h quote volume** = ``sum(close * volume)`` over the window (volume is in base units, so
  this approximates the traded quote amount).
- **24 h high / low** = max(high) / min(low) over the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import NullIf

from market7.formatting import price_decimals
from market7.timeframes import TIMEFRAME_MS
from trading.models.market import Candle, Market

STATS_TIMEFRAME_PREFERENCE = ["1h", "30m", "15m", "4h", "5m", "1m", "1d"]
DAY = timedelta(hours=24)

# sort key in the URL -> ORM ordering (descending with "-" prefix; NULLs always last).
SORT_FIELDS = {
    "symbol": "symbol",
    "exchange": "exchange__code",
    "type": "type",
    "last": "last_close",
    "change": "change_24h_pct",
    "volume": "quote_volume_24h",
    "updated": "last_open",
}
DEFAULT_SORT = "-volume"


@dataclass(frozen=True)
class TimeframeStats:
    """Candles stored for one market and timeframe."""

    timeframe: str
    count: int
    first_open: datetime
    last_open: datetime


# --- slugs ----------------------------------------------------------------------------------


def market_slug(symbol: str) -> str:
    """URL slug of a ccxt unified symbol: ``BTC/USDT`` -> ``BTC-USDT``, ``BTC/USDT:USDT`` ->
    ``BTC-USDT-USDT``. Reversed by :func:`symbol_from_slug` (base, quote and settle codes never
    contain ``-`` for spot and linear swap markets)."""
    return symbol.replace("/", "-").replace(":", "-")


def symbol_from_slug(slug: str) -> str | None:
    """``BTC-USDT`` -> ``BTC/USDT``; ``BTC-USDT-USDT`` -> ``BTC/USDT:USDT``; anything else -> None."""
    parts = slug.split("-")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return f"{parts[0]}/{parts[1]}:{parts[2]}"
    return None


def price_format(value: float | None, precision: dict | None = None) -> str:
    """``floatformat`` argument for a price (``"2g"``: decimals from
    :func:`market7.formatting.price_decimals`; ``g`` adds thousands separators)."""
    return f"{price_decimals(value, precision)}g"


# --- overview -------------------------------------------------------------------------------


def _stats_timeframe() -> Case:
    return Case(
        *[
            When(Exists(Candle.objects.filter(market=OuterRef("pk"), timeframe=tf)), then=Value(tf))
            for tf in STATS_TIMEFRAME_PREFERENCE
        ],
        default=Value(None),
    )


def markets_with_stats(queryset: QuerySet[Market] | None = None) -> QuerySet[Market]:
    """``queryset`` (default all markets) annotated with ``stats_timeframe``, ``last_open``,
    ``last_close``, ``ref_close``, ``change_24h_pct`` (percent), ``quote_volume_24h``,
    ``high_24h`` and ``low_24h`` as defined in the module docstring. NULL when no candles."""
    qs = (queryset if queryset is not None else Market.objects.all()).select_related("exchange")
    qs = qs.annotate(stats_timeframe=_stats_timeframe())
    same = {"market": OuterRef("pk"), "timeframe": OuterRef("stats_timeframe")}
    latest = Candle.objects.filter(**same).order_by("-open_time")
    qs = qs.annotate(
        last_open=Subquery(latest.values("open_time")[:1]),
        last_close=Subquery(latest.values("close")[:1]),
    )
    day_ago = ExpressionWrapper(OuterRef("last_open") - DAY, output_field=DateTimeField())
    ref = Candle.objects.filter(**same, open_time__gte=day_ago).order_by("open_time")
    window = Candle.objects.filter(**same, open_time__gt=day_ago).order_by().values("market")
    qs = qs.annotate(
        ref_close=Subquery(ref.values("close")[:1]),
        quote_volume_24h=Subquery(window.annotate(v=Sum(F("close") * F("volume"))).values("v")),
        high_24h=Subquery(window.annotate(v=Max("high")).values("v")),
        low_24h=Subquery(window.annotate(v=Min("low")).values("v")),
    )
    return qs.annotate(
        change_24h_pct=ExpressionWrapper(
            (F("last_close") / NullIf(F("ref_close"), 0.0) - 1.0) * 100.0, output_field=FloatField()
        )
    )


def markets_filter(
    *, search: str = "", quote: str = "", type: str = "", exchange: str = "", sort: str = DEFAULT_SORT
) -> QuerySet[Market]:
    """Markets with stats (see :func:`markets_with_stats`), filtered and sorted.

    ``search`` matches the symbol or base case-insensitively (``btc``, ``BTC/US``); ``quote``,
    ``type`` and ``exchange`` (ccxt id) are exact. ``sort`` is a key of :data:`SORT_FIELDS`,
    ``-`` prefixed for descending; unknown keys fall back to :data:`DEFAULT_SORT`. Ties break
    by exchange then symbol.
    """
    qs = Market.objects.all()
    if search:
        qs = qs.filter(Q(symbol__icontains=search) | Q(base__icontains=search))
    if quote:
        qs = qs.filter(quote=quote)
    if type:
        qs = qs.filter(type=type)
    if exchange:
        qs = qs.filter(exchange__code=exchange)
    key, descending = sort_parse(sort)
    field = F(SORT_FIELDS[key])
    order = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
    return markets_with_stats(qs).order_by(order, "exchange__code", "symbol")


def sort_parse(sort: str) -> tuple[str, bool]:
    """``"-volume"`` -> ``("volume", True)``; unknown -> the default sort."""
    key = (sort or "").lstrip("-")
    if key not in SORT_FIELDS:
        return sort_parse(DEFAULT_SORT)
    return key, sort.startswith("-")


def timeframe_stats(market_ids: list[int]) -> dict[int, list[TimeframeStats]]:
    """``{market_id: [TimeframeStats, ...]}`` shortest timeframe first — one query."""
    rows = (
        Candle.objects.filter(market_id__in=market_ids)
        .order_by()
        .values("market_id", "timeframe")
        .annotate(n=Count("id"), first=Min("open_time"), last=Max("open_time"))
    )
    out: dict[int, list[TimeframeStats]] = {}
    for row in rows:
        out.setdefault(row["market_id"], []).append(
            TimeframeStats(row["timeframe"], row["n"], row["first"], row["last"])
        )
    for stats in out.values():
        stats.sort(key=lambda s: TIMEFRAME_MS.get(s.timeframe, 0))
    return out


def markets_decorate(markets) -> list[Market]:
    """Attach ``slug``, ``price_fmt`` and ``timeframes`` (list of TimeframeStats) to each market
    of an evaluated page — one query for all of them."""
    markets = list(markets)
    stats = timeframe_stats([m.pk for m in markets])
    for m in markets:
        m.slug = market_slug(m.symbol)
        m.price_fmt = price_format(m.last_close, m.precision)
        m.timeframes = stats.get(m.pk, [])
    return markets


def quote_choices() -> list[str]:
    """Distinct quote currencies of all markets, sorted."""
    return sorted(set(Market.objects.order_by().values_list("quote", flat=True).distinct()))


def exchange_choices() -> list[str]:
    return list(Market.objects.order_by("exchange__code").values_list("exchange__code", flat=True).distinct())


# --- one market -----------------------------------------------------------------------------


def market_get(*, exchange: str, slug: str) -> Market:
    """The market ``slug`` (see :func:`market_slug`) on exchange ``exchange`` (ccxt id), with
    stats annotations and ``timeframes``. Raises ``Market.DoesNotExist``."""
    symbol = symbol_from_slug(slug)
    if symbol is None:
        raise Market.DoesNotExist(f"bad market slug {slug!r}")
    market = markets_with_stats(Market.objects.filter(exchange__code=exchange, symbol=symbol)).get()
    return markets_decorate([market])[0]


def market_candles(*, market: Market, timeframe: str, limit: int = 1000, end: datetime | None = None) -> list[dict]:
    """The last ``limit`` candles (oldest first) of ``market`` in ``timeframe`` opening before
    ``end`` (default: all), as chart points: ``{"time": epoch seconds (open, UTC), "open",
    "high", "low", "close", "volume"}`` — floats, volume in base units. One query."""
    qs = Candle.objects.filter(market=market, timeframe=timeframe)
    if end is not None:
        qs = qs.filter(open_time__lt=end)
    rows = qs.order_by("-open_time").values_list("open_time", "open", "high", "low", "close", "volume")[:limit]
    return [
        {"time": int(t.timestamp()), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in reversed(list(rows))
    ]


def market_candles_around(
    *, market: Market, timeframe: str, at: datetime, before: int = 200, after: int = 50
) -> list[dict]:
    """The candles of ``market`` in ``timeframe`` around the candle opening at ``at`` (UTC):
    the last ``before`` candles opening before ``at``, the candle at ``at`` (when stored) and
    up to ``after`` candles opening after it — fewer where the stored data ends. Oldest first,
    as chart points like :func:`market_candles`. Two queries."""
    rows = market_candles(market=market, timeframe=timeframe, limit=before, end=at) if before > 0 else []
    later = list(
        Candle.objects.filter(market=market, timeframe=timeframe, open_time__gte=at)
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume")[: after + 1]
    )
    if later and later[0][0] != at:  # no candle at ``at``: only ``after`` later ones
        later = later[:after]
    return rows + [
        {"time": int(t.timestamp()), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in later
    ]
