"""Clones and presets carry a perpetual bot's leverage, margin mode and liquidation buffer:
pages, API, validation, owner / other user / anonymous."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from trading.models import Bot, BotPreset, Exchange, Market
from trading.services import bots as svc
from trading.services import presets as presets_svc
from trading.services.bot_validation import BotValidationError

pytestmark = pytest.mark.django_db

S = "BTC/USDT:USDT"
PARAMS = {"direction": "short", "base_order_size": 200, "max_safety_orders": 3}
PERP = {"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": 7.5}


def _api(user=None):
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


@pytest.fixture
def swap(db):
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    return Market.objects.create(
        exchange=ex, symbol=S, exchange_symbol="BTCUSDT", base="BTC", quote="USDT", settle="USDT", type="swap"
    )


@pytest.fixture
def perp_bot(user, swap, candles):  # candles: BTC/USDT, the default btc_symbol a clone re-validates
    return svc.bot_create(
        user=user, name="Short perp", strategy="smart_dca", markets=[S], capital="1000", params=PARAMS, feed="live",
        perpetual=PERP,
    )  # fmt: skip


def test_clone_carries_the_perpetual_settings(client, user, other_user, perp_bot):
    assert client.post(reverse("trading:bot-clone", args=[perp_bot.pk])).status_code == 302  # anonymous: login
    assert _api().post(f"/api/v1/bots/{perp_bot.pk}/clone/").status_code in (401, 403)
    client.force_login(other_user)
    assert client.post(reverse("trading:bot-clone", args=[perp_bot.pk])).status_code == 404
    assert _api(other_user).post(f"/api/v1/bots/{perp_bot.pk}/clone/").status_code == 404
    assert Bot.objects.count() == 1

    client.force_login(user)
    client.post(reverse("trading:bot-clone", args=[perp_bot.pk]))
    clone = Bot.objects.exclude(pk=perp_bot.pk).get()
    assert (clone.name, clone.status) == ("Short perp (copy)", "created")
    assert clone.perpetual == {"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": 7.5}
    assert (clone.leverage, clone.margin_mode, clone.liquidation_buffer_pct) == (10, "cross", Decimal("7.500"))
    r = _api(user).post(f"/api/v1/bots/{perp_bot.pk}/clone/")
    assert r.status_code == 201
    assert (r.json()["leverage"], r.json()["margin_mode"], r.json()["liquidation_buffer_pct"]) == (10, "cross", "7.500")


def test_clone_of_a_spot_bot_stays_spot(user, candles):
    bot = svc.bot_create(user=user, name="spot", strategy="smart_dca", markets=["BTC/USDT"], capital="1000")
    clone = presets_svc.bot_clone(user=user, bot=bot)
    assert (clone.perpetual, clone.leverage, clone.margin_mode) == (None, None, "")


def test_preset_from_a_perpetual_bot_loads_into_the_form_and_creates_the_same_bot(client, user, other_user, perp_bot):
    client.force_login(user)
    r = client.post(reverse("trading:bot-save-preset", args=[perp_bot.pk]), {"name": "short 10x"}, follow=True)
    assert "Preset “short 10x” saved." in r.content.decode()
    preset = BotPreset.objects.get(owner=user)
    assert preset.perpetual == {"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": 7.5}
    listing = client.get(reverse("trading:bot-presets")).content.decode()
    assert "<td data-preset-perpetual>10× cross · buffer 7.5%</td>" in listing
    form = client.get(reverse("trading:bot-create"), {"preset": preset.pk}).content.decode()
    assert 'name="leverage" value="10"' in form
    assert '<option value="cross" selected>cross</option>' in form
    assert 'name="liquidation_buffer_pct" value="7.5"' in form
    # the form posted as loaded makes a bot with the preset's settings
    data = {
        "name": "From preset", "strategy": "smart_dca", "markets": [perp_bot.markets.get().pk], "timeframe": "1h",
        "mode": "paper", "capital": "1000", "feed": "live", "p_base_order_size": "200", "p_direction": "short",
        "leverage": "10", "margin_mode": "cross", "liquidation_buffer_pct": "7.5",
    }  # fmt: skip
    assert client.post(reverse("trading:bot-create"), data).status_code == 302
    assert Bot.objects.get(name="From preset").perpetual == preset.perpetual

    client.force_login(other_user)  # another user's preset: 404, not loaded, not listed
    assert client.get(reverse("trading:bot-create"), {"preset": preset.pk}).status_code == 404
    assert "short 10x" not in client.get(reverse("trading:bot-presets")).content.decode()
    assert client.post(reverse("trading:bot-save-preset", args=[perp_bot.pk]), {"name": "x"}).status_code == 404
    assert BotPreset.objects.count() == 1


def test_presets_api_takes_and_validates_perpetual_settings(user, other_user, candles):
    body = {"name": "p", "strategy": "smart_dca", "params": PARAMS}
    assert _api().post("/api/v1/bot-presets/", {**body, "perpetual": PERP}, format="json").status_code in (401, 403)
    api = _api(user)
    r = api.post("/api/v1/bot-presets/", {**body, "perpetual": {"leverage": "5"}}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["perpetual"] == {"leverage": 5, "margin_mode": "isolated", "liquidation_buffer_pct": 0.0}
    pk = r.json()["id"]
    spot = api.post("/api/v1/bot-presets/", {**body, "name": "spot"}, format="json")
    assert spot.status_code == 201 and spot.json()["perpetual"] is None
    for perpetual, errors in (
        ({"leverage": 126}, {"leverage": ["leverage must be a whole number 1..125, got 126"]}),
        ({"leverage": 3, "margin_mode": "hedge"}, {"margin_mode": ["margin mode must be isolated or cross, got 'hedge'"]}),
        ({"leverage": 3, "position_mode": "hedge"}, {"position_mode": ["unknown perpetual setting"]}),
        ({"margin_mode": "cross"}, {"leverage": ["a perpetual preset needs its leverage (1..125)"]}),
    ):  # fmt: skip
        r = api.post("/api/v1/bot-presets/", {**body, "name": "bad", "perpetual": perpetual}, format="json")
        assert (r.status_code, r.json()) == (400, errors)
    assert BotPreset.objects.count() == 2
    assert _api(other_user).get(f"/api/v1/bot-presets/{pk}/").status_code == 404
    assert _api(user).get(f"/api/v1/bot-presets/{pk}/").json()["perpetual"]["leverage"] == 5


def test_preset_service_refuses_bad_settings_and_keeps_the_form_defaults_as_spot(user):
    with pytest.raises(BotValidationError) as exc:
        presets_svc.preset_create(user=user, name="x", strategy="smart_dca", perpetual={"leverage": 2.5})
    assert exc.value.errors == {"leverage": "leverage must be a whole number 1..125, got 2.5"}
    assert BotPreset.objects.count() == 0
    preset = presets_svc.preset_create(
        user=user, name="defaults", strategy="smart_dca",
        perpetual={"leverage": None, "margin_mode": "isolated", "liquidation_buffer_pct": "0"},
    )  # fmt: skip
    assert preset.perpetual is None
