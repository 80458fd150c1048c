"""Portfolio risk on every bot: stored and validated with the backtest's schema, edited in the
form, applied by the runner, its pause surviving a restart, shown with its reason and lifted
by "Resume trading" (page and API). Owner / other user / anonymous access."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from strategies.risk import RiskConfig
from tests.trading.conftest import make_replay_bot, step_at
from trading.forms_risk import NEW_BOT_RISK
from trading.models import Bot, BotEvent
from trading.services import bots as svc

pytestmark = pytest.mark.django_db

PAUSING = {"drawdown_pause_pct": 0.5, "daily_loss_limit_pct": 0.4}
PAUSE_PARAMS = {"max_active_deals": 2, "take_profit": 1.0, "stop_loss": 2.0, "base_order_size": 100}
PAUSE_REASON = "drawdown 0.59% from peak 1005.58 reached pause level 0.50%; new entries paused until resumed"


def _api(user=None):
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def test_risk_block_is_validated_by_the_backtest_schema_and_stored_complete(user, candles):
    bot = svc.bot_create(
        user=user, name="r", strategy="smart_dca", markets=["BTC/USDT"], capital="1000", risk={"max_positions": 2}
    )
    assert bot.risk == RiskConfig(max_positions=2).to_dict()
    with pytest.raises(svc.BotValidationError) as exc:
        svc.bot_create(
            user=user, name="bad", strategy="smart_dca", markets=["BTC/USDT"], capital="1000",
            risk={"daily_loss_limit_pct": 300},
        )  # fmt: skip
    assert exc.value.errors == {"risk.daily_loss_limit_pct": "must be <= 100, got 300"}
    assert not Bot.objects.filter(name="bad").exists()
    assert svc.bot_create(user=user, name="none", strategy="smart_dca", markets=["BTC/USDT"], capital="1").risk is None


def test_api_risk_object_create_patch_and_errors(user, candles):
    api = _api(user)
    body = {"name": "api", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000"}
    r = api.post("/api/v1/bots/", {**body, "risk": {"daily_loss_limit_pct": 3}}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["risk"] == RiskConfig(daily_loss_limit_pct=3.0).to_dict()
    assert r.json()["risk_status"] == {
        "paused": False, "daily_halted": False, "blocked": False, "regime": "normal", "reasons": [],
    }  # fmt: skip
    pk = r.json()["id"]
    r = api.post("/api/v1/bots/", {**body, "name": "x", "risk": {"nope": 1}}, format="json")
    assert (r.status_code, r.json()) == (400, {"risk.nope": ["unknown RiskConfig field"]})
    r = api.patch(f"/api/v1/bots/{pk}/", {"risk": {"max_positions": 1}}, format="json")
    assert r.status_code == 200 and r.json()["risk"]["max_positions"] == 1
    assert r.json()["risk"]["daily_loss_limit_pct"] is None  # the block is replaced, not merged
    r = api.patch(f"/api/v1/bots/{pk}/", {"risk": None}, format="json")
    assert (r.json()["risk"], r.json()["risk_status"]) == (None, None)


def test_new_bot_form_has_a_fieldset_per_rule_defaults_on_and_saves_the_block(client, user, candles):
    client.force_login(user)
    page = client.get(reverse("trading:bot-create")).content.decode()
    for rule in (
        "position_sizing", "max_positions", "capital_at_risk", "daily_loss_limit", "drawdown_size",
        "drawdown_pause", "correlation_limit", "circuit_breaker",
    ):  # fmt: skip
        assert f'data-risk-rule="{rule}"' in page
    assert 'id="id_risk_enabled" checked' in page and 'id="id_p_spend_guard_enabled" checked' in page
    assert 'name="r_daily_loss_limit_pct" value="5.0"' in page and "(% of day start equity)" in page
    assert '>Daily loss limit <span class="param-unit">(% of day start equity)</span>' in page
    form = {
        "name": "formbot", "strategy": "smart_dca", "markets": [candles["BTC/USDT"].pk], "timeframe": "1h",
        "mode": "paper", "capital": "1000", "feed": "live", "risk_enabled": "on",
        "r_sizing_mode": "strategy", "r_min_quote": "0", "r_fixed_quote": "100", "r_equity_pct": "10",
        "r_risk_per_trade_pct": "1", "r_daily_loss_limit_on": "on", "r_daily_loss_limit_pct": "4",
        "r_max_positions": "3", "r_correlation_action": "shrink", "r_correlation_max": "0.7",
        "r_correlation_window": "48", "r_correlation_shrink_mult": "0.5", "r_regime_enabled": "on",
        "r_regime_symbol": "BTC/USDT", "r_drawdown_pause_on": "on", "r_drawdown_pause_pct": "15",
    }  # fmt: skip
    r = client.post(reverse("trading:bot-create"), form)
    assert r.status_code == 302, r.content.decode()[:3000]
    bot = Bot.objects.get(name="formbot")
    assert bot.risk == RiskConfig(daily_loss_limit_pct=4.0, drawdown_pause_pct=15.0).to_dict()
    # a bad value is a field error and nothing is saved
    r = client.post(reverse("trading:bot-create"), {**form, "name": "bad", "r_daily_loss_limit_pct": "150"})
    assert r.status_code == 200 and not Bot.objects.filter(name="bad").exists()
    assert "must be &lt;= 100, got 150.0" in r.content.decode()
    assert NEW_BOT_RISK["daily_loss_limit_pct"] == 5.0


def test_pause_survives_a_restart_shows_its_reason_and_resume_trading_lifts_it(client, user, candles, no_kick):
    bot = make_replay_bot(user, params=PAUSE_PARAMS, risk=PAUSING)
    step_at(bot, 72.5)
    bot.refresh_from_db()
    assert bot.state["risk"]["paused"] is True
    svc.bot_stop(user=user, bot=bot)
    svc.bot_restart(user=user, bot=bot)
    step_at(bot, 96.5)  # after the restart the pause still holds: every entry is refused
    bot.refresh_from_db()
    assert bot.state["risk"]["paused"] is True
    last = BotEvent.objects.filter(bot=bot, kind="decision", rule="drawdown_pause").order_by("-time", "-pk").first()
    assert (last.outcome, last.reason) == (
        "block",
        "new entries paused: drawdown reached 0.50% (now 0.66% from peak 1005.58); resume to lift",
    )
    client.force_login(user)
    page = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    assert "data-risk-paused" in page and PAUSE_REASON in page and "since 2025-04-03 12:00 UTC" in page
    assert 'data-action="resume-trading"' in page

    r = client.post(reverse("trading:bot-resume-trading", args=[bot.pk]), follow=True)
    expected = (
        "resumed by alice at drawdown 0.66% from peak 1005.58; pause re-arms at 0.50% below 998.97 or a later high"
    )
    assert f"Trading resumed: {expected}." in r.content.decode()
    bot.refresh_from_db()
    assert bot.state["risk"]["paused"] is False
    ev = BotEvent.objects.get(bot=bot, kind="status", rule="resume_trading")
    assert (ev.outcome, ev.reason, ev.payload) == ("resumed", expected, {"by": "alice"})
    step_at(bot, 97.5)  # the next step logs the engine's decision with the same reason
    assert BotEvent.objects.filter(bot=bot, kind="decision", rule="drawdown_pause", reason=expected).count() == 1
    # nothing to resume now: a message, and the API says 409
    r = client.post(reverse("trading:bot-resume-trading", args=[bot.pk]), follow=True)
    assert "trading is not paused: no portfolio risk rule blocks new entries" in r.content.decode()
    r = _api(user).post(f"/api/v1/bots/{bot.pk}/resume_trading/")
    assert (r.status_code, r.json()) == (
        409,
        {"detail": "trading is not paused: no portfolio risk rule blocks new entries"},
    )


def test_resume_trading_access(client, user, other_user, viewer, candles, no_kick):
    bot = make_replay_bot(user, params=PAUSE_PARAMS, risk=PAUSING)
    step_at(bot, 72.5)
    bot.refresh_from_db()
    state = dict(bot.state)
    client.force_login(other_user)
    assert client.post(reverse("trading:bot-resume-trading", args=[bot.pk])).status_code == 404
    assert _api(other_user).post(f"/api/v1/bots/{bot.pk}/resume_trading/").status_code == 404
    assert _api().post(f"/api/v1/bots/{bot.pk}/resume_trading/").status_code in (401, 403)
    client.logout()
    r = client.post(reverse("trading:bot-resume-trading", args=[bot.pk]))
    assert r.status_code == 302 and "/login" in r["Location"]
    bot.refresh_from_db()
    assert bot.state == state and not BotEvent.objects.filter(bot=bot, rule="resume_trading").exists()
    r = _api(user).post(f"/api/v1/bots/{bot.pk}/resume_trading/")
    assert r.status_code == 200 and r.json()["risk_status"]["paused"] is False
    assert Decimal(r.json()["capital"]) == Decimal("1000")
