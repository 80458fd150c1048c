"""``GET /api/v1/bots/{id}/events/``: a bot's log on one clock at a time, as the bot page.

``BotEvent.time`` is the **market time** of a candle for engine rows (decisions, orders, fills,
deals opened/closed) and the server's **wall-clock** time for status events and step errors
(:mod:`trading.selectors.events`). One list ordered by ``time`` would interleave two clocks
months apart for a replay bot, so the endpoint serves one log per request:

- ``?log=decisions`` (default) — the decision log: market-time rows, newest market time first
  (then newest id), filterable by ``kind``/``rule``/``outcome``/``symbol`` (exact match);
- ``?log=activity`` — status events and errors, newest wall-clock time first, ``kind`` =
  ``status`` or ``error``.

``limit`` is 1..1000 (default 100); an empty parameter means the default. Anything else — an unknown ``log``, a kind of the other
clock, a non-numeric or out-of-range ``limit`` — is a 400 naming the parameter and the reason.
Each row is :func:`trading.selectors.bots.event_data` plus ``clock`` (``"market"``/``"wall"``).
Kept apart from ``trading/api/bots.py`` so the action there stays three lines.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from trading.models import Bot
from trading.selectors.bots import event_data
from trading.selectors.events import MARKET_TIME_KINDS, WALL_TIME_KINDS, bot_activity, bot_events_page

#: ``log`` value -> (kinds on that clock, clock name).
LOGS: dict[str, tuple[tuple[str, ...], str]] = {
    "decisions": (MARKET_TIME_KINDS, "market"),
    "activity": (WALL_TIME_KINDS, "wall"),
}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class BotEventsQuery(serializers.Serializer):
    """Query parameters of the events action (also its OpenAPI parameters)."""

    log = serializers.ChoiceField(
        choices=list(LOGS),
        default="decisions",
        help_text="decisions: market-time rows (decisions, orders, fills, deals), newest market time first; "
        "activity: status events and errors, newest wall-clock time first",
    )
    kind = serializers.ChoiceField(
        choices=[*MARKET_TIME_KINDS, *WALL_TIME_KINDS],
        required=False,
        help_text="decisions: decision|order|fill|trade_opened|trade_closed; activity: status|error",
    )
    rule = serializers.CharField(required=False, help_text="decision log only: exact rule name, e.g. spend_guard")
    outcome = serializers.CharField(required=False, help_text="decision log only: exact outcome, e.g. block")
    symbol = serializers.CharField(required=False, help_text="decision log only: ccxt symbol, e.g. BTC/USDT")
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text="rows, 1..1000 (default 100)"
    )

    def validate(self, attrs):
        kinds, _ = LOGS[attrs["log"]]
        kind = attrs.get("kind")
        if kind and kind not in kinds:
            other = next(name for name, (ks, _) in LOGS.items() if kind in ks)
            raise ValidationError({"kind": [f"{kind} rows are in log={other}, not log={attrs['log']}"]})
        if attrs["log"] == "activity":
            given = [f for f in ("rule", "outcome", "symbol") if attrs.get(f)]
            if given:
                raise ValidationError({f: ["filters the decision log only (log=decisions)"] for f in given})
        return attrs


class BotEventSerializer(serializers.Serializer):
    """One log row (documentation of the response; rows come from ``event_data``)."""

    bot_id = serializers.IntegerField()
    event_id = serializers.IntegerField()
    time = serializers.DateTimeField(help_text="market time (clock=market) or wall-clock time (clock=wall), UTC")
    clock = serializers.ChoiceField(choices=["market", "wall"])
    kind = serializers.CharField()
    rule = serializers.CharField()
    outcome = serializers.CharField()
    reason = serializers.CharField()
    symbol = serializers.CharField()
    payload = serializers.JSONField()


def bot_events_response(*, user, bot: Bot, query_params) -> list[dict[str, Any]]:
    """The rows for the query (``ValidationError`` -> 400 on bad parameters). One or two queries."""
    # An empty parameter (``?kind=``, what a blank form field sends) means "any"/the default.
    query = BotEventsQuery(data={k: v for k, v in query_params.items() if v != ""})
    query.is_valid(raise_exception=True)
    q = query.validated_data
    _, clock = LOGS[q["log"]]
    if q["log"] == "decisions":
        events, _total = bot_events_page(
            user=user,
            bot=bot,
            kind=q.get("kind", ""),
            rule=q.get("rule", ""),
            outcome=q.get("outcome", ""),
            symbol=q.get("symbol", ""),
            limit=q["limit"],
        )
    else:
        events = bot_activity(user=user, bot=bot, kind=q.get("kind", ""), limit=q["limit"])
    return [{**event_data(e), "clock": clock} for e in events]
