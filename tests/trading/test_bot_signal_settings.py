"""A bot's signal starts (``signal_strategies`` / ``signal_min_score``): validated by the bot
service, editable in the bot form (any status) and the API, shown on the bot page; and the
strategy manager's per-strategy table on a manager bot's page, from its closed deals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from strategies.models import MarketScan, ScanSignal, SignalStart
from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot, Trade
from trading.services import bots as svc
from trading.services.presets import bot_clone

pytestmark = pytest.mark.django_db


def _create(user, **kw):
    return svc.bot_create(
        user=user, name="S", strategy="smart_dca", markets=["BTC/USDT"], capital="1000", params={}, **kw
    )


def test_service_validates_and_stores(user, market):
    bot = _create(user, signal_strategies=["fork_score", "swing", "fork_score"], signal_min_score=0.65)
    assert (bot.signal_strategies, bot.signal_min_score) == (["fork_score", "swing"], 0.65)
    assert (_create(user).signal_strategies, _create(user).signal_min_score) == ([], 0.0)
    with pytest.raises(svc.BotValidationError) as err:
        _create(user, signal_strategies=["fork_score", "nope"], signal_min_score=1.5)
    assert err.value.errors == {
        "signal_strategies": "unknown scan strategy nope; use channel, dca_detector, fork_score, scalping, swing",
        "signal_min_score": "must be from 0 to 1 (a signal score)",
    }
    for bad, message in (("x", "must be a number from 0 to 1"), (True, "must be a number from 0 to 1")):
        with pytest.raises(svc.BotValidationError) as err:
            _create(user, signal_min_score=bad)
        assert err.value.errors == {"signal_min_score": message}
    assert _create(user, signal_strategies="fork_score, swing").signal_strategies == ["fork_score", "swing"]
    with pytest.raises(svc.BotValidationError) as err:
        _create(user, signal_strategies=[1])
    assert err.value.errors == {"signal_strategies": 'must be a list of strategy names, e.g. ["fork_score"]'}
    assert Bot.objects.count() == 4  # nothing saved by the refused calls


def test_update_while_running_and_clone(user, market):
    bot = make_bot(user, market, status=Bot.Status.RUNNING)
    svc.bot_update(user=user, bot=bot, signal_strategies=["channel"], signal_min_score=0.4)
    bot.refresh_from_db()
    assert (bot.signal_strategies, bot.signal_min_score) == (["channel"], 0.4)
    with pytest.raises(svc.BotValidationError):
        svc.bot_update(user=user, bot=bot, signal_min_score=-0.1)
    bot.refresh_from_db()
    assert bot.signal_min_score == 0.4
    copy = bot_clone(user=user, bot=bot)
    assert (copy.signal_strategies, copy.signal_min_score) == (["channel"], 0.4)


def test_form_edit_and_page(client, user, other_user, market):
    params = svc.strategy_validate_params("smart_dca", {})  # stored complete, as the service stores them
    bot = make_bot(user, market, status=Bot.Status.RUNNING, params=params)
    client.force_login(user)
    page = client.get(reverse("trading:bot-edit", args=[bot.pk])).content.decode()
    assert 'name="signal_strategies" value="fork_score"' in page and 'name="signal_min_score"' in page
    data = {
        "name": bot.name, "strategy": "smart_dca", "markets": [market.pk], "timeframe": "1h", "mode": "paper",
        "capital": "1000", "feed": "replay", "replay_start": "2024-01-01T00:00", "replay_speed": "3600",
        "signal_strategies": ["swing", "fork_score"], "signal_min_score": "0.55",
    }  # fmt: skip
    assert client.post(reverse("trading:bot-edit", args=[bot.pk]), data).status_code == 302
    bot.refresh_from_db()
    assert (bot.signal_strategies, bot.signal_min_score) == (["swing", "fork_score"], 0.55)  # order kept
    bad = client.post(reverse("trading:bot-edit", args=[bot.pk]), data | {"signal_min_score": "2"})
    assert bad.status_code == 200 and bad.context["form"].errors["signal_min_score"] == [
        "must be from 0 to 1 (a signal score)"
    ]

    scan = MarketScan.objects.create(owner=user, at=T0, timeframe="1h", strategies=["swing"])
    sig = ScanSignal.objects.create(
        scan=scan, market=market, strategy="swing", time=T0, side="long", score=0.81, entry=1, stop_loss=0.9
    )
    SignalStart.objects.create(
        signal=sig, bot=bot, market=market, strategy="swing", time=T0, side="long", command={"score": 0.81}
    )
    html = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    assert "<strong data-signal-min-score>0.55</strong>" in html
    assert "<code>swing</code>, <code>fork_score</code>" in html
    assert f'data-signal-start="{SignalStart.objects.get().pk}"' in html
    assert 'id="bot-strategies"' not in html  # not a manager bot

    client.force_login(other_user)  # another user's bot: 404 on the page and the edit
    assert client.get(reverse("trading:bot", args=[bot.pk])).status_code == 404
    assert (
        client.post(reverse("trading:bot-edit", args=[bot.pk]), data | {"signal_min_score": "0.9"}).status_code == 404
    )
    client.logout()
    assert client.post(reverse("trading:bot-edit", args=[bot.pk]), data).status_code == 302  # to the login
    bot.refresh_from_db()
    assert bot.signal_min_score == 0.55


def test_api_create_patch_and_access(client, user, other_user, market):
    client.force_login(user)
    body = {"name": "API", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000"}
    r = client.post(
        "/api/v1/bots/", body | {"signal_strategies": ["scalping"], "signal_min_score": 0.7}, "application/json"
    )
    assert r.status_code == 201, r.content
    assert (r.json()["signal_strategies"], r.json()["signal_min_score"]) == (["scalping"], 0.7)
    pk = r.json()["id"]
    r = client.patch(f"/api/v1/bots/{pk}/", {"signal_min_score": "x"}, "application/json")
    assert r.status_code == 400 and r.json() == {"signal_min_score": ["must be a number from 0 to 1"]}
    r = client.patch(f"/api/v1/bots/{pk}/", {"signal_strategies": []}, "application/json")
    assert r.status_code == 200 and r.json()["signal_strategies"] == [] and r.json()["signal_min_score"] == 0.7

    client.force_login(other_user)
    assert client.patch(f"/api/v1/bots/{pk}/", {"signal_min_score": 0.1}, "application/json").status_code == 404
    client.logout()
    assert client.patch(f"/api/v1/bots/{pk}/", {"signal_min_score": 0.1}, "application/json").status_code in (401, 403)
    assert Bot.objects.get(pk=pk).signal_min_score == 0.7


def _deal(bot, market, n, tag, pnl, cost, hours):
    Trade.objects.create(
        bot=bot, market=market, deal_id=f"d{n}", status="closed", opened_at=T0, closed_at=T0 + hours * H,
        avg_entry=Decimal("100"), amount=Decimal("1"), cost=Decimal(cost), realized_pnl=Decimal(pnl),
        tags=[f"strategy:{tag}"],
    )  # fmt: skip


def test_manager_bot_page_shows_per_strategy_performance(client, user, other_user, market):
    params = {"alloc_dca_detector": 40.0, "alloc_swing": 30.0, "alloc_channel": 30.0}
    bot = make_bot(user, market, strategy="manager", params=params, capital=Decimal("1000"))
    # dca_detector (share 400): +20, -10, +6 -> equity 420, 410, 416: drawdown 10/420
    _deal(bot, market, 1, "dca_detector", "20", "100", 1)
    _deal(bot, market, 2, "dca_detector", "-10", "100", 2)
    _deal(bot, market, 3, "dca_detector", "6", "50", 3)
    _deal(bot, market, 4, "swing", "-3", "60", 4)  # one deal: no Sharpe
    Trade.objects.create(  # an open deal does not count
        bot=bot, market=market, deal_id="d5", status="open", opened_at=T0, avg_entry=Decimal("1"), amount=Decimal("1"),
        cost=Decimal("1"), tags=["strategy:swing"],
    )  # fmt: skip
    from trading.selectors.performance import bot_strategy_performance

    rows = {r["name"]: r for r in bot_strategy_performance(user=user, bot=bot)}
    assert sorted(rows) == ["channel", "dca_detector", "swing"]
    d = rows["dca_detector"]
    returns = [0.2, -0.1, 0.12]
    mean = sum(returns) / 3
    sd = (sum((r - mean) ** 2 for r in returns) / 2) ** 0.5
    assert (d["allocation_pct"], d["trades"], d["wins"], d["pnl"]) == (40.0, 3, 2, 16.0)
    assert d["win_rate_pct"] == pytest.approx(200 / 3, abs=1e-12)
    assert d["pnl_pct"] == pytest.approx(4.0, abs=1e-12)
    assert d["sharpe"] == pytest.approx(mean / sd, abs=1e-12)
    assert d["max_drawdown_pct"] == pytest.approx(10 / 420 * 100, abs=1e-12)
    assert rows["swing"] | {} == {
        "name": "swing", "allocation_pct": 30.0, "trades": 1, "wins": 0, "win_rate_pct": 0.0, "pnl": -3.0,
        "pnl_pct": -1.0, "sharpe": None, "max_drawdown_pct": pytest.approx(1.0, abs=1e-12),
    }  # fmt: skip
    assert rows["channel"]["trades"] == 0 and rows["channel"]["pnl"] == 0.0

    client.force_login(user)
    html = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
    assert 'id="bot-strategies"' in html and 'data-strategy="dca_detector"' in html
    assert "+16.00 USDT" in html and "+4.00 %" in html
    client.force_login(other_user)
    assert client.get(reverse("trading:bot", args=[bot.pk])).status_code == 404
    assert bot_strategy_performance(user=other_user, bot=bot)[0]["trades"] == 0  # the gate: no deals of others
    client.logout()
    assert client.get(reverse("trading:bot", args=[bot.pk])).status_code == 302
