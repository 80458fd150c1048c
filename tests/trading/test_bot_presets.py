"""Clone a bot and parameter presets: pages, API, validation, owner / other user / anonymous."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from strategies.risk import RiskConfig
from tests.trading.conftest import make_replay_bot
from trading.models import Bot, BotPreset
from trading.services import presets as presets_svc

pytestmark = pytest.mark.django_db

PARAMS = {"max_active_deals": 2, "take_profit": 1.0, "stop_loss": 4.0, "max_safety_orders": 4}
RISK = {"daily_loss_limit_pct": 3.0, "max_positions": 2}


def _api(user=None):
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def test_clone_button_makes_a_new_paper_bot_with_the_same_settings(client, user, other_user, candles, no_kick):
    bot = make_replay_bot(user, name="Alpha", params=PARAMS, risk=RISK, capital="1500")
    client.force_login(user)
    page = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    assert 'data-action="clone"' in page and 'data-action="save-preset"' in page
    r = client.post(reverse("trading:bot-clone", args=[bot.pk]), follow=True)
    clone = Bot.objects.exclude(pk=bot.pk).get(owner=user)
    assert r.redirect_chain[-1][0] == reverse("trading:bot", args=[clone.pk])
    assert (clone.name, clone.status, clone.mode, clone.strategy) == ("Alpha (copy)", "created", "paper", "smart_dca")
    assert (clone.params, clone.risk, clone.capital, clone.timeframe) == (bot.params, bot.risk, Decimal("1500"), "1h")
    assert [m.symbol for m in clone.markets.order_by("symbol")] == ["BTC/USDT", "ETH/USDT"]
    assert (clone.state, clone.steps, clone.last_candle_at) == ({}, 0, None)
    # API
    r = _api(user).post(f"/api/v1/bots/{bot.pk}/clone/")
    assert r.status_code == 201 and r.json()["name"] == "Alpha (copy)" and r.json()["risk"] == bot.risk
    # another user: 404 and nothing created; anonymous: login / 401-403
    n = Bot.objects.count()
    client.force_login(other_user)
    assert client.post(reverse("trading:bot-clone", args=[bot.pk])).status_code == 404
    assert _api(other_user).post(f"/api/v1/bots/{bot.pk}/clone/").status_code == 404
    assert _api().post(f"/api/v1/bots/{bot.pk}/clone/").status_code in (401, 403)
    assert Bot.objects.count() == n


def test_save_preset_then_load_it_in_the_new_bot_form_and_delete(client, user, other_user, candles, no_kick):
    bot = make_replay_bot(user, name="Alpha", params=PARAMS, risk=RISK)
    client.force_login(user)
    r = client.post(reverse("trading:bot-save-preset", args=[bot.pk]), {"name": "tight dca"}, follow=True)
    assert "Preset “tight dca” saved." in r.content.decode()
    preset = BotPreset.objects.get(owner=user)
    assert (preset.strategy, preset.params, preset.risk) == ("smart_dca", bot.params, bot.risk)
    # the same name twice: a message, nothing saved
    r = client.post(reverse("trading:bot-save-preset", args=[bot.pk]), {"name": "tight dca"}, follow=True)
    assert "Preset not saved: name: you already have a preset called &#x27;tight dca&#x27;" in r.content.decode()
    assert BotPreset.objects.count() == 1
    # load: the form is filled from the preset
    page = client.get(reverse("trading:bot-create"), {"preset": preset.pk}).content.decode()
    assert f'<option value="{preset.pk}" selected>tight dca · Smart DCA</option>' in page
    assert 'name="p_stop_loss" value="4.0"' in page and 'name="r_daily_loss_limit_pct" value="3.0"' in page
    assert 'name="r_max_positions" value="2"' in page
    listing = client.get(reverse("trading:bot-presets")).content.decode()
    assert "tight dca" in listing
    # another user's preset: 404 to load, list and delete
    client.force_login(other_user)
    assert client.get(reverse("trading:bot-create"), {"preset": preset.pk}).status_code == 404
    assert "tight dca" not in client.get(reverse("trading:bot-presets")).content.decode()
    assert client.post(reverse("trading:bot-preset-delete", args=[preset.pk])).status_code == 404
    assert client.post(reverse("trading:bot-save-preset", args=[bot.pk]), {"name": "x"}).status_code == 404
    assert BotPreset.objects.count() == 1
    client.logout()
    assert client.get(reverse("trading:bot-presets")).status_code == 302
    client.force_login(user)
    r = client.post(reverse("trading:bot-preset-delete", args=[preset.pk]), follow=True)
    assert "Preset “tight dca” deleted." in r.content.decode() and not BotPreset.objects.exists()


def test_presets_api_is_owner_scoped_and_validated(user, other_user, candles):
    api = _api(user)
    r = api.post(
        "/api/v1/bot-presets/", {"name": "p1", "strategy": "smart_dca", "params": PARAMS, "risk": RISK}, format="json"
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["name"], body["strategy"], body["risk"]) == ("p1", "smart_dca", RiskConfig(**RISK).to_dict())
    assert body["params"]["max_safety_orders"] == 4
    r = api.post(
        "/api/v1/bot-presets/", {"name": "p2", "strategy": "smart_dca", "risk": {"max_positions": -1}}, format="json"
    )
    assert (r.status_code, r.json()) == (400, {"risk.max_positions": ["must be >= 0, got -1"]})
    r = api.post("/api/v1/bot-presets/", {"name": "p3", "strategy": "nope"}, format="json")
    assert r.status_code == 400 and list(r.json()) == ["strategy"]
    pk = body["id"]
    other = _api(other_user)
    assert other.get("/api/v1/bot-presets/").json()["results"] == []
    assert other.get(f"/api/v1/bot-presets/{pk}/").status_code == 404
    assert other.delete(f"/api/v1/bot-presets/{pk}/").status_code == 404
    assert _api().get("/api/v1/bot-presets/").status_code in (401, 403)
    assert [p["name"] for p in api.get("/api/v1/bot-presets/").json()["results"]] == ["p1"]
    assert api.delete(f"/api/v1/bot-presets/{pk}/").status_code == 204
    assert not BotPreset.objects.exists()
    assert presets_svc.presets_for_user(user).count() == 0
