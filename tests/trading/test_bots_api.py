"""REST API of bots: owner / other user / anonymous / viewer, exact responses."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.trading.conftest import make_replay_bot, step_at
from trading.models import Bot

pytestmark = pytest.mark.django_db


def _client(user=None):
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def test_owner_other_and_anonymous_access(user, other_user, candles, no_kick):
    bot = make_replay_bot(user)
    step_at(bot, 30.5)
    owner, other, anon = _client(user), _client(other_user), _client()
    r = owner.get("/api/v1/bots/")
    assert r.status_code == 200 and [b["id"] for b in r.json()["results"]] == [bot.pk]
    row = r.json()["results"][0]
    assert (row["status"], row["markets"], row["open_trades"], row["allowed_actions"]) == (
        "running",
        ["BTC/USDT", "ETH/USDT"],
        2,
        ["pause", "stop"],
    )
    assert other.get("/api/v1/bots/").json()["results"] == []
    assert anon.get("/api/v1/bots/").status_code in (401, 403)
    for path in ("", "performance/", "active_trades/", "events/", "equity/"):
        assert owner.get(f"/api/v1/bots/{bot.pk}/{path}").status_code == 200
        assert other.get(f"/api/v1/bots/{bot.pk}/{path}").status_code == 404
        assert anon.get(f"/api/v1/bots/{bot.pk}/{path}").status_code in (401, 403)
    assert len(owner.get(f"/api/v1/bots/{bot.pk}/active_trades/").json()) == 2
    assert other.get("/api/v1/bot-trades/").json()["results"] == []
    assert len(owner.get(f"/api/v1/bot-trades/?bot={bot.pk}&status=open").json()["results"]) == 2
    # another user cannot operate it: 404, nothing changes
    assert other.post(f"/api/v1/bots/{bot.pk}/pause/").status_code == 404
    assert other.post(f"/api/v1/bots/{bot.pk}/close_all/").status_code == 404
    assert other.delete(f"/api/v1/bots/{bot.pk}/").status_code == 404
    bot.refresh_from_db()
    assert (bot.status, bot.commands) == ("running", [])
    # the owner can
    r = owner.post(f"/api/v1/bots/{bot.pk}/pause/")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    r = owner.post(f"/api/v1/bots/{bot.pk}/pause/")
    assert r.status_code == 409 and r.json() == {"detail": "cannot pause a bot that is paused (allowed from: running)"}


def test_viewer_cannot_create_or_operate(viewer, candles, no_kick):
    from trading.services import bots as svc

    bot = svc.bot_create(
        user=svc.SYSTEM, owner=viewer, name="v", strategy="smart_dca", markets=["BTC/USDT"], capital="100"
    )
    c = _client(viewer)
    r = c.post(f"/api/v1/bots/{bot.pk}/start/")
    assert r.status_code == 403 and r.json() == {"detail": "your role cannot start bots (needs trading.operate_bot)"}
    r = c.post(
        "/api/v1/bots/", {"name": "x", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "10"}, format="json"
    )
    assert r.status_code == 403
    assert Bot.objects.get().status == "created" and Bot.objects.count() == 1


def test_create_returns_field_errors(user, candles):
    c = _client(user)
    r = c.post(
        "/api/v1/bots/",
        {
            "name": "api",
            "strategy": "smart_dca",
            "markets": ["BTC/USDT"],
            "capital": "100",
            "params": {"take_profit": -1},
        },
        format="json",
    )
    assert r.status_code == 400 and r.json() == {"params.take_profit": ["must be >= 0.01%"]}
    assert Bot.objects.count() == 0
    r = c.post(
        "/api/v1/bots/",
        {"name": "api", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "100"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["status"] == "created" and r.json()["params"]["take_profit"] == 1.5
    assert Bot.objects.get().owner == user
