"""Read-side of a bot's log, split by time axis: the decision log (market time) and the bot
activity (wall time).

``BotEvent.time`` means two different clocks depending on the kind (see
:class:`trading.models.BotEvent`): engine rows — decisions, orders, fills, deals opened and
closed — are stamped with the **market time** of the candle the engine decided on, while status
changes (start, stop, manual close requests) and step errors are stamped with the **wall-clock**
time of the server. For a replay bot the two clocks are months apart, so one list ordered by
``time`` interleaves them meaninglessly. Each list here holds one kind of row on one axis:

- :func:`bot_events_page` / :func:`bot_event_facets` — the decision log: market-time rows only,
  newest market time first (then newest id: rows of one candle newest-written first);
- :func:`bot_activity` — status events and errors, newest wall time first.

Every function takes the requesting ``user`` and reads through the ownership gate
(``BotEvent.objects.for_user``): another user's bot yields nothing.
"""

from __future__ import annotations

from django.db.models import QuerySet

from trading.models import Bot, BotEvent

#: Kinds stamped with the market time of a candle (the decision log).
MARKET_TIME_KINDS: tuple[str, ...] = (
    BotEvent.Kind.DECISION,
    BotEvent.Kind.ORDER,
    BotEvent.Kind.FILL,
    BotEvent.Kind.TRADE_OPENED,
    BotEvent.Kind.TRADE_CLOSED,
)
#: Kinds stamped with the server's wall-clock time (the bot activity).
WALL_TIME_KINDS: tuple[str, ...] = (BotEvent.Kind.STATUS, BotEvent.Kind.ERROR)

#: ``[(value, label)]`` of the decision log's kind filter.
DECISION_LOG_KINDS: list[tuple[str, str]] = [(k, BotEvent.Kind(k).label) for k in MARKET_TIME_KINDS]


def _decision_log(user, bot: Bot) -> QuerySet[BotEvent]:
    return BotEvent.objects.for_user(user).filter(bot=bot, kind__in=MARKET_TIME_KINDS)


def bot_events_page(
    *, user, bot: Bot, kind: str = "", rule: str = "", outcome: str = "", symbol: str = "", limit: int = 100
) -> tuple[list[BotEvent], int]:
    """The bot's decision log — market-time rows only (:data:`MARKET_TIME_KINDS`) — filtered by
    ``kind``/``rule``/``outcome``/``symbol`` (exact match; empty means any):
    ``(newest limit events by market time, then id; total number matching)``. A wall-time
    ``kind`` (status, error) matches nothing here: those rows are in :func:`bot_activity`.
    Two queries."""
    qs = _decision_log(user, bot)
    for field, value in (("kind", kind), ("rule", rule), ("outcome", outcome), ("symbol", symbol)):
        if value:
            qs = qs.filter(**{field: value})
    qs = qs.order_by("-time", "-id")
    return list(qs[:limit]), qs.count()


def bot_event_facets(*, user, bot: Bot) -> tuple[list[str], list[str]]:
    """``(rules, outcomes)``: the distinct non-empty rule names and outcomes in the bot's
    decision log (market-time rows), each sorted (the filter choices). Two queries."""
    base = _decision_log(user, bot).order_by()
    rules = sorted(r for r in base.exclude(rule="").values_list("rule", flat=True).distinct() if r)
    outcomes = sorted(o for o in base.exclude(outcome="").values_list("outcome", flat=True).distinct() if o)
    return rules, outcomes


def bot_activity(*, user, bot: Bot, kind: str = "", limit: int = 50) -> list[BotEvent]:
    """The bot's status events (start, pause, stop, manual close requests ...) and step errors,
    newest **wall-clock** time first (then newest id); at most ``limit``. ``kind`` (``status``
    or ``error``; empty means both) narrows it; a market-time kind matches nothing. One query."""
    qs = BotEvent.objects.for_user(user).filter(bot=bot, kind__in=WALL_TIME_KINDS)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("-time", "-id")[:limit])


__all__ = [
    "DECISION_LOG_KINDS",
    "MARKET_TIME_KINDS",
    "WALL_TIME_KINDS",
    "bot_activity",
    "bot_event_facets",
    "bot_events_page",
]
