"""``GET /api/v1/bots/{id}/events/``: one clock per list, as the bot page — the decision log
(market time, default) or the bot activity (wall time) — with 400s that name the bad parameter,
owner scoping, and the parameters in the OpenAPI schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, BotEvent

pytestmark = pytest.mark.django_db

W0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)  # wall-clock time of the status events
MIN = timedelta(minutes=1)


@pytest.fixture
def logged_bot(user, market):
    """Market-time rows (January 2024) and wall-time rows (June 2025), ids in neither order."""
    bot = make_bot(user, market, status=Bot.Status.ERROR, last_candle_at=T0 + 3 * H)
    rows = [
        ("decision", T0 + 2 * H, "spend_guard", "block", "d@2"),
        ("status", W0, "start", "running", "start: bot is running"),
        ("decision", T0 + 1 * H, "confidence", "allow", "d@1"),
        ("fill", T0 + 3 * H, "base_order", "filled", "fill@3"),
        ("error", W0 + 5 * MIN, "step", "error", "step failed: boom"),
        ("status", W0 + 1 * MIN, "pause", "paused", "pause: bot is paused"),
        ("trade_closed", T0 + 3 * H, "take_profit", "closed", "closed@3"),
    ]
    for kind, time, rule, outcome, reason in rows:
        BotEvent.objects.create(
            bot=bot, time=time, kind=kind, rule=rule, outcome=outcome, reason=reason, symbol="BTC/USDT"
        )
    return bot


def _api(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _get(user, bot, query=""):
    return _api(user).get(f"/api/v1/bots/{bot.pk}/events/{query}")


def test_default_is_the_decision_log_newest_market_time_first(user, logged_bot):
    r = _get(user, logged_bot)
    assert r.status_code == 200
    rows = r.json()
    assert [(e["kind"], e["reason"], e["time"], e["clock"]) for e in rows] == [
        ("trade_closed", "closed@3", "2024-01-01T03:00:00+00:00", "market"),
        ("fill", "fill@3", "2024-01-01T03:00:00+00:00", "market"),
        ("decision", "d@2", "2024-01-01T02:00:00+00:00", "market"),
        ("decision", "d@1", "2024-01-01T01:00:00+00:00", "market"),
    ]
    assert rows[2] == {
        "bot_id": logged_bot.pk,
        "event_id": BotEvent.objects.get(reason="d@2").pk,
        "time": "2024-01-01T02:00:00+00:00",
        "clock": "market",
        "kind": "decision",
        "rule": "spend_guard",
        "outcome": "block",
        "reason": "d@2",
        "symbol": "BTC/USDT",
        "payload": {},
    }
    assert _get(user, logged_bot, "?log=decisions").json() == rows
    # empty parameters (a blank form) mean any / the default
    assert _get(user, logged_bot, "?log=&kind=&limit=").json() == rows


def test_activity_log_newest_wall_time_first(user, logged_bot):
    rows = _get(user, logged_bot, "?log=activity").json()
    assert [(e["kind"], e["reason"], e["time"], e["clock"]) for e in rows] == [
        ("error", "step failed: boom", "2025-06-01T10:05:00+00:00", "wall"),
        ("status", "pause: bot is paused", "2025-06-01T10:01:00+00:00", "wall"),
        ("status", "start: bot is running", "2025-06-01T10:00:00+00:00", "wall"),
    ]
    assert [e["reason"] for e in _get(user, logged_bot, "?log=activity&kind=error").json()] == ["step failed: boom"]
    assert [e["reason"] for e in _get(user, logged_bot, "?log=activity&limit=2").json()] == [
        "step failed: boom",
        "pause: bot is paused",
    ]


def test_decision_log_filters_and_limit(user, logged_bot):
    reasons = lambda q: [e["reason"] for e in _get(user, logged_bot, q).json()]  # noqa: E731
    assert reasons("?kind=decision") == ["d@2", "d@1"]
    assert reasons("?rule=spend_guard&outcome=block") == ["d@2"]
    assert reasons("?symbol=ETH/USDT") == []
    assert reasons("?limit=1") == ["closed@3"]
    assert reasons("?limit=1000") == ["closed@3", "fill@3", "d@2", "d@1"]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("?limit=abc", {"limit": ["A valid integer is required."]}),
        ("?limit=-5", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("?limit=0", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("?limit=1001", {"limit": ["Ensure this value is less than or equal to 1000."]}),
        ("?limit=99999999999999999999", {"limit": ["Ensure this value is less than or equal to 1000."]}),
        ("?log=bogus", {"log": ['"bogus" is not a valid choice.']}),
        ("?kind=status", {"kind": ["status rows are in log=activity, not log=decisions"]}),
        ("?log=activity&kind=fill", {"kind": ["fill rows are in log=decisions, not log=activity"]}),
        ("?log=activity&symbol=BTC/USDT", {"symbol": ["filters the decision log only (log=decisions)"]}),
    ],
)
def test_bad_parameters_are_400_with_the_reason(user, logged_bot, query, errors):
    r = _get(user, logged_bot, query)
    assert (r.status_code, r.json()) == (400, errors)


def test_owner_scoping(user, other_user, logged_bot):
    assert _get(other_user, logged_bot).status_code == 404
    assert _get(other_user, logged_bot, "?log=activity").status_code == 404
    assert _get(None, logged_bot).status_code in (401, 403)


def test_schema_documents_the_parameters(user):
    schema = _api(user).get("/api/schema/?format=json").json()
    op = schema["paths"]["/api/v1/bots/{id}/events/"]["get"]
    params = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
    assert sorted(params) == ["kind", "limit", "log", "outcome", "rule", "symbol"]
    assert params["log"]["schema"]["enum"] == ["decisions", "activity"]
    assert params["log"]["schema"]["default"] == "decisions"
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 1000)
    item = op["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"]
    assert item.endswith("/BotEvent")
